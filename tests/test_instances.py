"""Several instances as an operator runs them (issue 14): two `relay serve` and two `relay
worker` processes on one PostgreSQL database and one Redis, a worker killed mid-send, the
readiness of each role, and a database that hangs behind a web instance."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from relay.store.db import create_engine, upgrade
from tests.conftest import FORMS_TOML, REDIS_URL, invoke, service_missing
from tests.hanging import FreezableProxy
from tests.helpers import ORIGIN, VALID
from tests.instances import FakeMailgunThread, Proc, relay_env

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

JSON = {"Accept": "application/json", "Origin": ORIGIN}
SUBMISSIONS = 20


@pytest.fixture(name="database")
def fixture_database(postgres_url: str, tmp_path: Path) -> str:
    """A fresh PostgreSQL database at this release's schema (`relay db upgrade`, once), and
    the forms file every process reads."""

    async def go() -> None:
        engine = create_engine(postgres_url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(go())
    (tmp_path / "forms.toml").write_text(FORMS_TOML, encoding="utf-8")
    return postgres_url


@pytest.fixture(name="redis_prefix")
def fixture_redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own on the real Redis, deleted afterwards."""
    prefix = f"relay-t{uuid.uuid4().hex[:10]}:"
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_missing("Redis at 127.0.0.1:6379", exc)
    yield prefix
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


@contextlib.contextmanager
def running(*procs: Proc) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in procs:
            proc.stop()


async def _scalar(url: str, sql: str) -> Any:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql))).scalar()
    finally:
        await engine.dispose()


def scalar(url: str, sql: str) -> Any:
    return asyncio.run(_scalar(url, sql))


def wait_until(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_web_instances_and_two_workers_survive_a_worker_killed_mid_send(
    database: str, redis_prefix: str, tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Submissions spread over two web instances are all accepted and delivered; a worker
    killed (-9) with sends in flight has them taken over after the lease by the other, each
    takeover on the timeline and in the survivor's metrics; without a read key they are the
    duplicates the fake Mailgun counts, and the workers warned about it; each role is ready
    for its own job, and no IP address is in Redis."""
    mailgun = FakeMailgunThread(latency_ms=2000)
    shared = {
        "database_url": database,
        "redis_url": REDIS_URL,
        "redis_key_prefix": redis_prefix,
        "rate_limit_client": "1000/minute",
        "mailgun_api_key": "key-test-0123456789",
        "mailgun_domain": "mg.example.com",
        "mailgun_base_url": mailgun.url,
        "mailgun_timeout_seconds": "2.5",
        "dispatch_lease_seconds": "6",
        "dispatch_poll_seconds": "0.2",
    }
    web = [
        Proc(
            f"serve{i}",
            ["serve", "--port", "0"],
            relay_env(tmp_path, f"serve{i}", dispatch_in_serve="false", **shared),
            tmp_path,
        )
        for i in (1, 2)
    ]
    victim, survivor = (
        Proc(name, ["worker", "--http-port", "0"], relay_env(tmp_path, name, **shared), tmp_path)
        for name in ("worker-a", "worker-b")
    )
    try:
        with running(*web, victim, survivor):
            urls = [proc.url() for proc in web]
            victim_url, survivor_url = victim.url(), survivor.url()
            for url in urls:
                ready = httpx.get(f"{url}/readyz").json()
                assert (ready["status"], ready["checks"]["dispatch"]) == (
                    "ready",
                    "not running here",
                )
            for url in (victim_url, survivor_url):
                ready = httpx.get(f"{url}/readyz").json()
                assert (ready["status"], ready["checks"]["dispatch"]) == ("ready", "running")
            survivor.signal(signal.SIGSTOP)  # the victim claims everything
            ids = []
            for n in range(SUBMISSIONS):
                answer = httpx.post(f"{urls[n % 2]}/f/contact", json=VALID, headers=JSON)
                assert answer.status_code == 202, answer.text
                ids.append(answer.json()["id"])
            wait_until(lambda: mailgun.stats()["requests"] >= SUBMISSIONS, 20, "sends in flight")
            victim.signal(signal.SIGKILL)
            victim.popen.wait(10)
            in_flight = scalar(database, "SELECT count(*) FROM submissions WHERE state = 'sending'")
            survivor.signal(signal.SIGCONT)
            wait_until(
                lambda: (
                    scalar(database, "SELECT count(*) FROM submissions WHERE state = 'accepted'")
                    == SUBMISSIONS
                ),
                30,
                "every submission accepted",
            )
            survivor_metrics = httpx.get(f"{survivor_url}/metrics").text
            survivor_ready = httpx.get(f"{survivor_url}/readyz").json()
            web_ready = [httpx.get(f"{url}/readyz").status_code for url in urls]
    finally:
        stats = mailgun.stats()
        mailgun.close()
    takeovers = scalar(
        database, "SELECT count(*) FROM delivery_attempts WHERE outcome = 'taken_over'"
    )
    assert in_flight >= 1
    assert takeovers == in_flight
    assert stats["unique_messages"] == SUBMISSIONS
    assert stats["duplicates"] == takeovers
    assert f"relay_lease_takeovers_total {float(takeovers)}" in survivor_metrics
    assert "relay_mailgun_request_duration_seconds_count" in survivor_metrics
    assert survivor_ready["status"] == "ready"
    assert web_ready == [200, 200]
    warned = "several dispatchers run on this database without RELAY_MAILGUN_READ_KEY"
    assert warned in victim.output or warned in survivor.output
    taken = scalar(
        database,
        "SELECT submission_id FROM delivery_attempts WHERE outcome = 'taken_over' LIMIT 1",
    )
    monkeypatch.setenv("RELAY_DATABASE_URL", database)
    timeline = json.loads(invoke(cli, "deliveries", "show", taken, "--json").output)
    assert [s["what"] for s in timeline["timeline"] if s["kind"] == "attempt"] == [
        "taken_over",
        "accepted",
    ]
    assert timeline["attempts"] == 2
    keys = list(redis.Redis.from_url(REDIS_URL).scan_iter(f"{redis_prefix}*"))
    assert keys
    assert not [k for k in keys if b"127.0.0.1" in k]
    for proc in (*web, victim, survivor):
        assert "jeanne" not in proc.output.lower()


def test_a_hanging_database_gives_503_within_the_timeouts(database: str, tmp_path: Path) -> None:
    """When the database stops answering (a proxy that forwards nothing), a web instance
    answers a submission 503 with Retry-After and /readyz 503 within the connect and
    statement timeouts, and accepts again once the database answers."""
    proxy = FreezableProxy(("127.0.0.1", 5432))
    url = database.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    serve = Proc(
        "serve",
        ["serve", "--port", "0"],
        relay_env(
            tmp_path,
            "serve",
            database_url=url,
            dispatch_in_serve="false",
            database_connect_timeout_seconds="1",
            database_statement_timeout_seconds="1",
        ),
        tmp_path,
    )
    try:
        with running(serve):
            base = serve.url()
            assert httpx.post(f"{base}/f/contact", json=VALID, headers=JSON).status_code == 202
            proxy.frozen.set()
            started = time.monotonic()
            refused = httpx.post(f"{base}/f/contact", json=VALID, headers=JSON, timeout=30)
            refused_after = time.monotonic() - started
            started = time.monotonic()
            not_ready = httpx.get(f"{base}/readyz", timeout=30)
            not_ready_after = time.monotonic() - started
            proxy.frozen.clear()
            wait_until(
                lambda: httpx.get(f"{base}/readyz", timeout=30).status_code == 200,
                10,
                "ready again",
            )
            again = httpx.post(f"{base}/f/contact", json=VALID, headers=JSON, timeout=30)
    finally:
        proxy.close()
    assert (refused.status_code, refused.headers["retry-after"]) == (503, "5")
    assert refused.json()["errors"][0]["code"] == "STORE_UNAVAILABLE"
    assert refused_after < 4  # connect (1 s) + statement (1 s) timeouts; measured 2.1 s
    assert (not_ready.status_code, not_ready.json()["reasons"]) == (503, ["database unreachable"])
    assert not_ready_after < 4
    assert again.status_code == 202
