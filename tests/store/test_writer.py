"""The group-commit writer: groups concurrent writes, isolates a failing one, never half-commits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from relay.errors import StoreUnavailable
from relay.store import Store
from relay.store.tables import audit_log

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def add_row(action: str, row_id: int | None = None):
    def job(conn: Connection) -> str:
        values = {"at": NOW, "actor": "test", "action": action}
        if row_id is not None:
            values["id"] = row_id
        conn.execute(insert(audit_log).values(**values))
        return action

    return job


def count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(audit_log)).scalar_one())


async def open_store(url: str) -> Store:
    return await Store.open(url, migrate=True, busy_timeout_ms=200)


def sqlite_url(tmp_path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'w.db'}"


def test_concurrent_writes_are_committed_in_groups(tmp_path):
    """Fifty concurrent writes all commit, in fewer transactions than writes."""

    async def go() -> tuple[list[str], int, int]:
        store = await open_store(sqlite_url(tmp_path))
        try:
            results = await asyncio.gather(*(store.write(add_row(f"a{i}")) for i in range(50)))
            return results, await store.read(count), store.writer.batches
        finally:
            await store.close()

    results, rows, batches = asyncio.run(go())
    assert results == [f"a{i}" for i in range(50)]
    assert rows == 50
    assert batches < 50


def _isolation(url: str) -> tuple[list[object], int]:
    async def go() -> tuple[list[object], int]:
        store = await open_store(url)
        try:
            await store.write(add_row("first", row_id=1))
            outcomes = await asyncio.gather(
                store.write(add_row("ok-1")),
                store.write(add_row("duplicate", row_id=1)),  # primary key taken: fails
                store.write(add_row("ok-2")),
                return_exceptions=True,
            )
            return list(outcomes), await store.read(count)
        finally:
            await store.close()

    return asyncio.run(go())


def test_a_failing_write_does_not_fail_its_group(tmp_path):
    """The group is retried job by job: the bad one gets StoreUnavailable, the rest commit."""
    outcomes, rows = _isolation(sqlite_url(tmp_path))
    assert outcomes[0] == "ok-1"
    assert isinstance(outcomes[1], StoreUnavailable)
    assert "IntegrityError" in str(outcomes[1])
    assert outcomes[2] == "ok-2"
    assert rows == 3


@pytest.mark.postgres
def test_a_failing_write_does_not_fail_its_group_on_postgresql(postgres_url):
    """Same on PostgreSQL, where the writer uses an async connection."""
    outcomes, rows = _isolation(postgres_url)
    assert outcomes[0] == "ok-1"
    assert isinstance(outcomes[1], StoreUnavailable)
    assert outcomes[2] == "ok-2"
    assert rows == 3


def test_a_job_error_reaches_only_its_caller(tmp_path):
    """A job's own exception (not a database error) is raised to its caller, untranslated."""

    def broken(conn: Connection) -> None:
        conn.execute(insert(audit_log).values(at=NOW, actor="t", action="rolled back"))
        raise ValueError("bug in a job")

    async def go() -> tuple[list[object], int]:
        store = await open_store(sqlite_url(tmp_path))
        try:
            outcomes = await asyncio.gather(
                store.write(broken), store.write(add_row("kept")), return_exceptions=True
            )
            return list(outcomes), await store.read(count)
        finally:
            await store.close()

    outcomes, rows = asyncio.run(go())
    assert isinstance(outcomes[0], ValueError)
    assert outcomes[1] == "kept"
    assert rows == 1


def test_writes_after_close_are_refused(tmp_path):
    """A write after the store closed is StoreUnavailable saying it is closed, not a hang."""

    async def go() -> None:
        store = await open_store(sqlite_url(tmp_path))
        await store.close()
        await store.write(add_row("late"))

    with pytest.raises(StoreUnavailable, match="closed"):
        asyncio.run(go())


def test_close_commits_what_is_queued(tmp_path):
    """Writes queued before close are committed before the store closes."""

    async def go() -> int:
        store = await open_store(sqlite_url(tmp_path))
        pending = [asyncio.ensure_future(store.write(add_row(f"q{i}"))) for i in range(10)]
        await asyncio.sleep(0)
        await store.close()
        await asyncio.gather(*pending)
        reopened = await open_store(sqlite_url(tmp_path))
        try:
            return await reopened.read(count)
        finally:
            await reopened.close()

    assert asyncio.run(go()) == 10


def test_read_failure_is_store_unavailable(tmp_path):
    """A failing read is translated to StoreUnavailable naming only the driver error's class."""

    def bad_query(conn: Connection) -> None:
        conn.exec_driver_sql("SELECT * FROM no_such_table")

    async def go() -> None:
        store = await open_store(sqlite_url(tmp_path))
        try:
            await store.read(bad_query)
        finally:
            await store.close()

    with pytest.raises(StoreUnavailable, match="OperationalError"):
        asyncio.run(go())


def test_unreachable_database_at_open(tmp_path):
    """A refused connection names the database (never its password), why, and what to check."""
    with pytest.raises(StoreUnavailable) as caught:
        asyncio.run(open_store("postgresql+asyncpg://nobody:s3cret@127.0.0.1:1/none"))
    assert str(caught.value) == (
        "cannot use the database at postgresql+asyncpg://nobody:***@127.0.0.1:1/none "
        "(connection refused): check RELAY_DATABASE_URL, and that the server is up and "
        "reachable from this host"
    )
