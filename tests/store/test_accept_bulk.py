"""A group of accepts is written in bulk, with the same result as writing them one by one."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from relay.accept.submission import Submission, validate_submission
from relay.config import load_forms
from relay.crypto import KeyRing
from relay.ids import new_submission_id
from relay.minimise.retention import CLIENT
from relay.store import Store, outbox
from relay.store import prospects as prospects_module
from relay.store.tables import consent_events, idempotency_keys, prospects, submissions
from relay.web.prospect import prospect_of
from tests.conftest import TEST_KEY
from tests.helpers import VALID

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def job_for(forms_file: Path, email: str, *, ticked: bool = False, key: str | None = None):
    keyring = KeyRing.from_text(TEST_KEY)
    form = load_forms(forms_file)["contact"]
    raw = {**VALID, "email": email, **({"newsletter": "on"} if ticked else {})}
    sub = validate_submission(raw, phone_region="FR")
    assert isinstance(sub, Submission)
    prospect = prospect_of(keyring, form, sub, raw)
    row = outbox.NewSubmission(
        id=new_submission_id(),
        form_id="contact",
        received_at=NOW,
        legal_basis="legitimate_interest",
        notice_version="2026-03-20",
        consent_given=ticked,
        consent_wording_version="v1",
        body_enc=os.urandom(64),
        subject_mac=prospect.email_mac,
    )
    idem = None
    if key is not None:
        idem = outbox.Idempotency(key, 202, '{"ok": true}', NOW - timedelta(hours=24))
    return outbox.accept(row, idem, prospect)


def count(table):
    def query(conn: Connection) -> int:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    return query


def test_a_mixed_group_of_accepts_is_written_completely(tmp_path, forms_file):
    """Simple accepts (bulk), a ticked box (consent event), an idempotency key and its replay,
    and the same person twice, all in one group: every row is there exactly once."""
    _mixed_group(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}", forms_file)


@pytest.mark.postgres
def test_a_mixed_group_of_accepts_on_postgresql(postgres_url, forms_file):
    """The same on PostgreSQL (executemany of INSERT … ON CONFLICT through asyncpg)."""
    _mixed_group(postgres_url, forms_file)


def _mixed_group(url: str, forms_file: Path) -> None:
    jobs = [
        job_for(forms_file, "a@example.fr"),
        job_for(forms_file, "b@example.fr", ticked=True),
        job_for(forms_file, "a@example.fr"),  # the same person again in the same group
        job_for(forms_file, "c@example.fr", key="k1"),
        job_for(forms_file, "c@example.fr", key="k1"),  # replay: stores nothing
        job_for(forms_file, "d@example.fr"),
    ]

    async def go() -> tuple[list[object], dict[str, int], int]:
        store = await Store.open(url, migrate=True)
        try:
            results = await asyncio.gather(*(store.write(job) for job in jobs))
            counts = {
                "submissions": await store.read(count(submissions)),
                "prospects": await store.read(count(prospects)),
                "consent_events": await store.read(count(consent_events)),
                "idempotency_keys": await store.read(count(idempotency_keys)),
            }
            return list(results), counts, store.writer.batches
        finally:
            await store.close()

    results, counts, batches = asyncio.run(go())
    assert batches == 1
    assert results[:4] == [None, None, None, None]
    assert isinstance(results[4], outbox.StoredAnswer)
    assert results[5] is None
    assert counts == {
        "submissions": 5,
        "prospects": 4,
        "consent_events": 1,
        "idempotency_keys": 1,
    }


def test_the_driver_executemany_stores_what_sqlalchemy_stores(tmp_path, forms_file):
    """relay.store.bulk hands SQLite the very values SQLAlchemy's own executemany would: the
    same submissions and prospect records, column for column, for a new person, the same
    person twice, and a client's record (the upsert's literal `client` and its own expiry)."""
    jobs = [
        job_for(forms_file, email)
        for email in ("a@example.fr", "b@example.fr", "a@example.fr", "client@example.fr")
    ]
    client_mac = jobs[3].prospect.email_mac

    def make_client(conn: Connection) -> None:
        prospects_module.upsert(conn, jobs[3].prospect, "earlier", NOW - timedelta(days=9))
        conn.execute(
            update(prospects).where(prospects.c.email_mac == client_mac).values(status=CLIENT)
        )

    def through_relay(conn: Connection) -> None:
        outbox.AcceptJob.run_many(conn, jobs)

    def through_sqlalchemy(conn: Connection) -> None:
        conn.execute(outbox._INSERT_SUBMISSION, [outbox._submission_params(j.sub) for j in jobs])
        statement = prospects_module._fast_statement("sqlite")
        params = [prospects_module._fast_params(j.prospect, j.sub.received_at) for j in jobs]
        conn.execute(statement, params)

    def everything(conn: Connection) -> list[list[tuple[object, ...]]]:
        return [
            [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key))]
            for table in (submissions, prospects)
        ]

    async def stored(name: str, write: object) -> list[list[tuple[object, ...]]]:
        store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / name}", migrate=True)
        try:
            await store.write(make_client)
            await store.write(write)  # type: ignore[arg-type]
            return await store.read(everything)
        finally:
            await store.close()

    by_relay = asyncio.run(stored("relay.db", through_relay))
    by_sqlalchemy = asyncio.run(stored("sqlalchemy.db", through_sqlalchemy))
    assert by_relay == by_sqlalchemy
    assert [len(rows) for rows in by_relay] == [4, 3]
    mac_at, status_at = (list(prospects.c.keys()).index(n) for n in ("email_mac", "status"))
    [client] = [r for r in by_relay[1] if r[mac_at] == client_mac]
    assert client[status_at] == CLIENT
