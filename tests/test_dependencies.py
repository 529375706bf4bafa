"""Every dependency has a timeout and a clear failure: database and Redis URLs, hung servers,
an empty database, and `relay check` reaching what is configured (issue 14.3)."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest
from redis.exceptions import TimeoutError as RedisTimeout

from relay.config import load_settings
from relay.errors import ConfigError
from relay.ops.preflight import probe_redis
from relay.ops.redis_conn import RedisUnavailable, redis_client, redis_where
from relay.store import Store
from relay.store.db import HEAD, create_engine, require_schema, upgrade
from tests.conftest import REDIS_URL, invoke, service_missing
from tests.hanging import hanging_listener


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("RELAY_REDIS_URL", "http://nonsense", "is not a Redis URL"),
        ("RELAY_REDIS_URL", "redis://", "names no host"),
        ("RELAY_REDIS_URL", "redis://cache:port/0", "is not a Redis URL"),
        ("RELAY_REDIS_URL", "redis://cache:6379/zero", "the database must be a number"),
        ("RELAY_REDIS_URL", "unix://", "names no socket path"),
        ("RELAY_DATABASE_URL", "postgresql://relay@db/relay", "postgresql+psycopg"),
        ("RELAY_DATABASE_URL", "mysql+aiomysql://relay@db/relay", "is not supported"),
        ("RELAY_DATABASE_URL", "sqlite:///var/relay.db", "sqlite+pysqlite is not supported"),
        ("RELAY_DATABASE_URL", "nonsense", "is not a database URL"),
        ("RELAY_DATABASE_URL", "postgresql+asyncpg:///relay", "names no host"),
        ("RELAY_DATABASE_URL", "postgresql+asyncpg://db/r?timeout=soon", "?timeout= must be"),
        ("RELAY_DATABASE_URL", "postgresql+asyncpg://db/r?command_timeout=0", "?command_timeout="),
    ],
)
def test_check_refuses_urls_relay_cannot_use(cli, monkeypatch, variable, value, problem):
    """`relay check` refuses a URL serve could not use, naming the variable and the fix."""
    monkeypatch.setenv(variable, value)
    result = invoke(cli, "check", expect=1)
    assert f"settings: {variable}: Value error, " in result.output
    assert problem in result.output


@pytest.mark.parametrize(
    "url",
    [
        "redis://cache.internal:6379/0",
        "rediss://:pw@cache.internal:6380/2",
        "unix:///run/redis/redis.sock",
        "postgresql+asyncpg://relay:pw@db:5432/relay?timeout=3&command_timeout=5",
        "sqlite+aiosqlite:///var/relay.db",
    ],
)
def test_urls_relay_can_use_are_accepted(url):
    """The URL shapes the README shows pass validation."""
    field = "redis_url" if "redis" in url or url.startswith("unix") else "database_url"
    assert getattr(load_settings(**{field: url}), field) == url


def test_redis_where_hides_the_password():
    """Errors and `relay check` show Redis URLs with the password replaced."""
    assert redis_where("redis://:s3cret@cache:6379/0") == "redis://:***@cache:6379/0"
    assert redis_where("redis://cache:6379/0") == "redis://cache:6379/0"


def test_a_bad_timeout_in_the_url_is_a_config_error_at_engine_creation():
    """An engine built outside Settings still refuses a non-numeric ?timeout= clearly."""
    with pytest.raises(ConfigError, match=r"RELAY_DATABASE_URL: \?timeout= must be"):
        create_engine("postgresql+asyncpg://relay@db/relay?timeout=soon")


@pytest.mark.slow
def test_check_on_a_hanging_database_fails_within_the_connect_timeout(cli, monkeypatch):
    """A database that accepts and never answers fails `relay check` after the connect
    timeout, naming host and port but not the password, and saying what to check."""
    with hanging_listener() as port:
        monkeypatch.setenv(
            "RELAY_DATABASE_URL", f"postgresql+asyncpg://relay:s3cret@127.0.0.1:{port}/relay"
        )
        monkeypatch.setenv("RELAY_DATABASE_CONNECT_TIMEOUT_SECONDS", "0.5")
        started = time.monotonic()
        result = invoke(cli, "check", expect=1)
        elapsed = time.monotonic() - started
    assert elapsed < 5
    assert (
        f"cannot use the database at postgresql+asyncpg://relay:***@127.0.0.1:{port}/relay "
        "(no answer within RELAY_DATABASE_CONNECT_TIMEOUT_SECONDS): check RELAY_DATABASE_URL"
    ) in result.output
    assert "s3cret" not in result.output


@pytest.mark.slow
def test_serve_on_a_hanging_database_exits_1_naming_it(cli, monkeypatch):
    """`relay serve` checks the database before listening: exit 1 with where and why, no
    traceback, after the connect timeout."""
    with hanging_listener() as port:
        monkeypatch.setenv(
            "RELAY_DATABASE_URL", f"postgresql+asyncpg://relay:pw@127.0.0.1:{port}/r"
        )
        monkeypatch.setenv("RELAY_DATABASE_CONNECT_TIMEOUT_SECONDS", "0.5")
        result = invoke(cli, "serve", "--port", "0", expect=1)
    assert f"cannot use the database at postgresql+asyncpg://relay:***@127.0.0.1:{port}/r" in (
        result.output
    )
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_a_hanging_redis_costs_at_most_its_timeouts():
    """A Redis client from redis_client gives up after the configured timeouts, once (no
    retries); the probe `relay check` uses reports it with the host and the fix."""
    with hanging_listener() as port:
        settings = load_settings(
            redis_url=f"redis://:pw@127.0.0.1:{port}/0",
            redis_connect_timeout_seconds=0.3,
            redis_socket_timeout_seconds=0.3,
        )

        async def go() -> float:
            client = redis_client(settings)
            started = time.monotonic()
            try:
                with pytest.raises(RedisTimeout):
                    await client.get("relay:x")
            finally:
                await client.aclose()
            return time.monotonic() - started

        elapsed = asyncio.run(go())
        probe = asyncio.run(probe_redis(settings))
    assert elapsed < 1.5
    assert probe is not None
    assert probe.problem == (
        f"cannot use Redis at redis://:***@127.0.0.1:{port}/0 (no answer in time): check "
        "RELAY_REDIS_URL, that the server is up and reachable from this host, and "
        "RELAY_REDIS_*_TIMEOUT_SECONDS"
    )


@pytest.mark.postgres
@pytest.mark.redis
def test_check_reports_schema_revision_and_redis(cli, monkeypatch, postgres_url):
    """On an empty PostgreSQL database `relay check` says to run `relay db upgrade`; after
    it, it reports the revision against this release's, and that Redis answers."""
    monkeypatch.setenv("RELAY_DATABASE_URL", postgres_url + "?timeout=3")
    monkeypatch.setenv("RELAY_REDIS_URL", REDIS_URL)
    try:
        asyncio.run(_redis_ping())
    except OSError as exc:
        service_missing("Redis at 127.0.0.1:6379", exc)
    empty = invoke(cli, "check", expect=1)
    assert "has no relay schema yet: run `relay db upgrade` once" in empty.output
    invoke(cli, "db", "upgrade")
    ready = invoke(cli, "check")
    assert f"/{postgres_url.rsplit('/', 1)[1]}: schema {HEAD} (this relay: {HEAD})" in ready.output
    assert f"redis: {REDIS_URL}: answers" in ready.output


async def _redis_ping() -> None:
    settings = load_settings(redis_url=REDIS_URL)
    client = redis_client(settings)
    try:
        await client.ping()
    finally:
        await client.aclose()


@pytest.mark.postgres
@pytest.mark.parametrize("command", ["worker", "serve"])
def test_serve_and_worker_on_an_empty_database_say_to_upgrade(
    cli, monkeypatch, postgres_url, command
):
    """On an empty PostgreSQL database serve and worker stop at once with exit 1 and the
    fix (`relay db upgrade`), instead of a ProgrammingError or an error every second."""
    monkeypatch.setenv("RELAY_DATABASE_URL", postgres_url)
    started = time.monotonic()
    result = invoke(cli, command, expect=1)
    assert time.monotonic() - started < 10
    assert "has no relay schema yet: run `relay db upgrade` once" in result.output
    assert "ProgrammingError" not in result.output


@pytest.mark.postgres
def test_a_timeout_in_the_url_works_and_require_schema_passes(postgres_url):
    """`?timeout=3&command_timeout=5` in the URL no longer crashes: the store opens, migrates
    and answers."""

    async def go() -> str:
        url = postgres_url + "?timeout=3&command_timeout=5"
        engine = create_engine(url)
        try:
            await upgrade(engine)
            await require_schema(engine)
        finally:
            await engine.dispose()
        store = await Store.open(url, connect_timeout=2, statement_timeout=5)
        try:
            await store.require_schema()
            return str(store.engine.url)
        finally:
            await store.close()

    assert "timeout" not in asyncio.run(go())


@pytest.mark.anyio
async def test_a_database_outage_is_logged_once_a_minute_not_at_every_poll(settings, clock, caplog):
    """While the database cannot be written, a dispatcher polling every second logs 'cannot
    claim submissions' when it starts and once a minute after, then says when claims work."""
    from datetime import timedelta

    from tests.fakes import FakeTransport
    from tests.helpers import Outbox
    from tests.test_dispatcher import make

    box = await Outbox.open(settings)
    try:
        dispatcher = make(box, FakeTransport(), clock)
        database = settings.var_dir / "relay.db"
        with sqlite3.connect(database) as con:
            con.execute("ALTER TABLE submissions RENAME TO submissions_gone")
        for _ in range(90):
            await dispatcher.run_once()
            clock.now += timedelta(seconds=1)
        with sqlite3.connect(database) as con:
            con.execute("ALTER TABLE submissions_gone RENAME TO submissions")
        await dispatcher.run_once()
    finally:
        await box.close()
    assert caplog.text.count("cannot claim submissions") == 2
    assert "claims work again" in caplog.text


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("postgresql+asyncpg://relay@relay-db.invalid:5432/relay", "host name not found"),
        ("postgresql+asyncpg://no_such_role_x@127.0.0.1:5432/test", "authentication failed"),
        ("postgresql+asyncpg://postgres@127.0.0.1:5432/no_such_db_x", "no such database"),
        ("postgresql+asyncpg://postgres@127.0.0.1:1/test", "connection refused"),
    ],
)
def test_check_says_why_the_database_cannot_be_used(cli, monkeypatch, url, why):
    """Unknown host, unknown role, unknown database and a closed port are each named in
    words (not a driver's class name), with the URL and what to check."""
    monkeypatch.setenv("RELAY_DATABASE_URL", url)
    result = invoke(cli, "check", expect=1)
    assert f"cannot use the database at {url} ({why}): check RELAY_DATABASE_URL" in result.output


@pytest.mark.parametrize(
    ("auto_migrate", "exit_code", "says"),
    [
        ("false", 1, "is at schema revision 0000, this relay needs"),
        ("true", 0, f"schema 0000, upgraded to {HEAD} when relay serve starts"),
    ],
)
def test_check_compares_an_older_schema_with_this_release(
    cli, settings, monkeypatch, auto_migrate, exit_code, says
):
    """A database at another release's revision is reported against this release's: a
    problem to fix with `relay db upgrade`, unless relay serve upgrades it by itself."""
    invoke(cli, "db", "upgrade")
    with sqlite3.connect(settings.var_dir / "relay.db") as con:
        con.execute("UPDATE alembic_version SET version_num = '0000'")
    monkeypatch.setenv("RELAY_AUTO_MIGRATE", auto_migrate)
    result = invoke(cli, "check", expect=exit_code)
    assert says in result.output


def test_a_redis_client_needs_a_url():
    """Building a Redis client without RELAY_REDIS_URL is a clear error, not a localhost guess."""
    with pytest.raises(RedisUnavailable, match="RELAY_REDIS_URL is not set"):
        redis_client(load_settings())
