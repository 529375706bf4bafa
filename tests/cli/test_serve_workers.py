"""`relay serve --workers 2` as an operator runs it: two web processes on one port beside the
delivering parent process, on SQLite and on PostgreSQL. Many concurrent clients, no 5xx,
every 2xx answer durable, each submission sent once, and a clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from relay.store.db import create_engine, upgrade
from tests.conftest import FORMS_TOML
from tests.helpers import ORIGIN, VALID
from tests.instances import Proc, json_lines, relay_env

pytestmark = pytest.mark.slow

CLIENTS = 16
EACH = 15  # submissions per client, each on a new connection (so both processes accept some)
HEADERS = {"Accept": "application/json", "Origin": ORIGIN}


async def _flood(url: str) -> tuple[list[str], list[int]]:
    """CLIENTS clients posting EACH submissions at once: the accepted ids, every status."""
    ids: list[str] = []
    statuses: list[int] = []
    no_keepalive = httpx.Limits(max_keepalive_connections=0)

    async def client() -> None:
        async with httpx.AsyncClient(timeout=30, limits=no_keepalive) as http:
            for _ in range(EACH):
                answer = await http.post(f"{url}/f/contact", json=VALID, headers=HEADERS)
                statuses.append(answer.status_code)
                if answer.is_success:
                    ids.append(answer.json()["id"])

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return ids, statuses


async def _rows(url: str, sql: str) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql))).all())
    finally:
        await engine.dispose()


def _rows_now(url: str, sql: str) -> list[Any]:
    return asyncio.run(_rows(url, sql))


def _wait_until(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def _serve_two_workers(tmp_path: Path, database_url: str) -> dict[str, Any]:
    """Run `relay serve --workers 2` on `database_url`, flood it, let the parent deliver
    everything, stop it with SIGTERM; what the checks need."""
    (tmp_path / "forms.toml").write_text(FORMS_TOML, encoding="utf-8")
    env = relay_env(
        tmp_path,
        "serve",
        database_url=database_url,
        rate_limit_client="100000/minute",
        rate_limit_form="100000/minute",
        dispatch_poll_seconds="0.2",
    )
    proc = Proc("serve", ["serve", "--port", "0", "--workers", "2"], env, tmp_path)
    try:
        url = proc.url()
        _wait_until(
            lambda: proc.output.count("Application startup complete") == 2, 60, "both workers"
        )
        ids, statuses = asyncio.run(_flood(url))
        _wait_until(
            lambda: (
                _rows_now(database_url, "SELECT count(*) FROM submissions WHERE state = 'accepted'")
                == [(len(ids),)]
            ),
            60,
            "every submission delivered by the parent",
        )
    finally:
        proc.stop()
    return {
        "proc": proc,
        "ids": ids,
        "statuses": statuses,
        "stored": {row[0] for row in _rows_now(database_url, "SELECT id FROM submissions")},
        "attempts": _rows_now(
            database_url,
            "SELECT submission_id, count(*) FROM delivery_attempts GROUP BY submission_id",
        ),
    }


def _check(run: dict[str, Any]) -> None:
    proc, ids = run["proc"], run["ids"]
    output = proc.output
    assert sorted(set(run["statuses"])) == [202]
    assert len(ids) == CLIENTS * EACH
    assert run["stored"] == set(ids)
    assert sorted(count for _, count in run["attempts"]) == [1] * len(ids)
    assert proc.popen.returncode == 0, output
    servers = set(re.findall(r"Started server process \[(\d+)\]", output))
    assert len(servers) == 2
    assert output.count("Application shutdown complete") == 2
    # the children stop first, then the parent's dispatcher: each says how much it wrote
    writers = [line for line in json_lines(output) if line["message"] == "group writer stopped"]
    assert len(writers) == 3
    assert all(line["rows"] > 0 for line in writers[:2])  # both web processes accepted
    assert "worker exited cleanly" in output
    assert "jeanne" not in output.lower()


def test_two_workers_on_sqlite_accept_everything_durably_and_stop_cleanly(tmp_path):
    """On the embedded SQLite database, two web processes accept 240 concurrent submissions
    (no 5xx, every 2xx stored), the parent sends each exactly once, and SIGTERM stops all
    three processes cleanly."""
    database = f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}"
    _check(_serve_two_workers(tmp_path, database))


@pytest.mark.postgres
def test_two_workers_on_postgresql_accept_everything_durably_and_stop_cleanly(
    tmp_path, postgres_url
):
    """On PostgreSQL (schema upgraded once beforehand), two web processes accept 240
    concurrent submissions (no 5xx, every 2xx stored), the parent sends each exactly once,
    and SIGTERM stops all three processes cleanly."""

    async def schema() -> None:
        engine = create_engine(postgres_url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(schema())
    _check(_serve_two_workers(tmp_path, postgres_url))
