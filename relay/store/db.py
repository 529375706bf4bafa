"""The async engine (SQLite in WAL mode by default, or PostgreSQL) and schema upgrades.

SQLite gets one pragma set per connection: a busy timeout, WAL so readers never block the
writer, the chosen `synchronous` level, and foreign keys. The group writer's transactions begin
IMMEDIATE (they take the write lock first), so several processes may write one database file.
Schema changes go through Alembic only.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql.schema import Table

from relay.config import DATABASE_URL_TIMEOUTS, Settings, url_timeout
from relay.errors import ConfigError, SchemaNotReady, StoreUnavailable

if TYPE_CHECKING:
    from alembic.config import Config

#: The newest migration. Kept here so a start-up at head needs no Alembic import (it costs
#: about 7 MB of memory per process); tests/store/test_migrations.py checks it is Alembic's head.
HEAD = "0004"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for an in-memory database."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def insert_for(dialect: str) -> Callable[[Table], Any]:
    """The dialect's INSERT (with ON CONFLICT) for a connection's `dialect.name`.

    PostgreSQL's dialect module is imported only when relay runs on PostgreSQL (on SQLite it
    would cost 25 ms and a few MB at every start).
    """
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def _sqlite_pragmas(engine: Engine, synchronous: str, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")  # first: the next may wait
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # erased and purged rows are overwritten with zeros, not left in free pages
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()


def create_engine(
    url: str,
    *,
    synchronous: str = "FULL",
    busy_timeout_ms: int = 5000,
    connect_timeout: float = 3.0,
    statement_timeout: float | None = None,
    application_name: str = "",
) -> AsyncEngine:
    """An async engine; for SQLite the database's folder is created and pragmas applied.

    On PostgreSQL every connection attempt gives up after `connect_timeout` seconds and every
    statement after `statement_timeout` (None: no limit, for migrations), so a hanging server
    costs a request a bounded wait, then a 503. `?timeout=` / `?command_timeout=` in the URL
    take precedence (asyncpg would otherwise receive them as text and fail).
    """
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)
        _sqlite_pragmas(engine.sync_engine, synchronous, busy_timeout_ms)
        return engine
    parsed = make_url(url)
    connect_args: dict[str, Any] = {"timeout": connect_timeout}
    if application_name:
        connect_args["server_settings"] = {"application_name": application_name}
    if statement_timeout is not None:
        connect_args["command_timeout"] = statement_timeout
    for name in DATABASE_URL_TIMEOUTS:
        if name in parsed.query:
            try:
                connect_args[name] = url_timeout(parsed.query[name], name)
            except ValueError as exc:
                raise ConfigError(f"settings: RELAY_DATABASE_URL: {exc}") from None
    return create_async_engine(
        parsed.difference_update_query(DATABASE_URL_TIMEOUTS),
        pool_pre_ping=True,
        connect_args=connect_args,
    )


def engine_for(settings: Settings, *, statements: bool = True) -> AsyncEngine:
    """The engine the settings describe (`statements=False`: no statement timeout, to migrate)."""
    return create_engine(
        settings.effective_database_url,
        synchronous=settings.sqlite_synchronous,
        busy_timeout_ms=settings.db_busy_timeout_ms,
        connect_timeout=settings.database_connect_timeout_seconds,
        statement_timeout=settings.database_statement_timeout_seconds if statements else None,
    )


def create_sqlite_writer_engine(url: str, *, synchronous: str, busy_timeout_ms: int) -> Engine:
    """A synchronous pysqlite engine on the same file, for the group writer's own thread.

    Why: through aiosqlite every statement is a hop between the event loop and aiosqlite's
    thread; the writer instead runs a whole group of statements in one hop on its thread.

    Its transactions begin with BEGIN IMMEDIATE (SQLAlchemy's recipe for pysqlite, which
    otherwise begins only at the first INSERT/UPDATE/DELETE): a job that reads, then writes
    (a dispatcher's claim, an idempotency check) holds the write lock from its first read, so
    another process writing the same file (`relay serve --workers`, `relay worker`) cannot
    change what it read before it commits; the lock is awaited up to the busy timeout.
    """
    engine = sqlalchemy.create_engine(make_url(url).set(drivername="sqlite+pysqlite"))
    _sqlite_pragmas(engine, synchronous, busy_timeout_ms)

    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # pysqlite issues no BEGIN of its own

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def alembic_config() -> Config:
    from alembic.config import Config  # only when migrating: saves memory

    cfg = Config()
    cfg.set_main_option(
        "script_location", str(resources.files("relay.store").joinpath("migrations"))
    )
    return cfg


def _upgrade(connection: Connection, revision: str) -> None:
    from alembic import command  # only when migrating: saves memory

    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def _current(connection: Connection) -> str | None:
    """The revision in alembic_version, read with plain SQL (no Alembic import)."""
    if not sqlalchemy.inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def where(engine: AsyncEngine) -> str:
    """The database's URL as logs and errors show it: never the password."""
    return engine.url.render_as_string(hide_password=True)


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it wraps (SQLAlchemy's `orig`, the driver's own `__cause__`)."""
    chain: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(chain) < 8:
        current = todo.pop(0)
        if current is None or current in chain:
            continue
        chain.append(current)
        todo += [getattr(current, "orig", None), current.__cause__, current.__context__]
    return chain


_WORDS = {
    "InvalidPasswordError": "authentication failed",
    "InvalidAuthorizationSpecificationError": "authentication failed",
    "InvalidCatalogNameError": "no such database",
}


def _reason(exc: BaseException) -> str:
    """Why a connection failed, in words, without the server's text (it may quote SQL)."""
    chain = _causes(exc)
    for cause in chain:
        if isinstance(cause, TimeoutError):
            return "no answer within RELAY_DATABASE_CONNECT_TIMEOUT_SECONDS"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "host name not found"
        if type(cause).__name__ in _WORDS:
            return _WORDS[type(cause).__name__]
    return type(chain[-1]).__name__


def unreachable(engine: AsyncEngine, exc: BaseException) -> StoreUnavailable:
    """The error every process gives when it cannot use the database: where, why, what to do."""
    return StoreUnavailable(
        f"cannot use the database at {where(engine)} ({_reason(exc)}): check "
        "RELAY_DATABASE_URL, and that the server is up and reachable from this host"
    )


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema up to `revision` (Alembic), in one transaction where the backend can."""
    try:
        if revision == "head" and await current_revision(engine) == HEAD:
            return
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, revision)
    except (SQLAlchemyError, OSError) as exc:
        raise unreachable(engine, exc) from None


async def current_revision(engine: AsyncEngine) -> str | None:
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current)
    except (SQLAlchemyError, OSError) as exc:
        raise unreachable(engine, exc) from None


async def require_schema(engine: AsyncEngine) -> None:
    """Raise SchemaNotReady, saying what to run, unless the schema is this code's (HEAD)."""
    revision = await current_revision(engine)
    if revision == HEAD:
        return
    if revision is None:
        msg = (
            f"the database at {where(engine)} has no relay schema yet: run `relay db upgrade` "
            "once (with the same RELAY_DATABASE_URL), then start relay again"
        )
    else:
        msg = (
            f"the database at {where(engine)} is at schema revision {revision}, this relay "
            f"needs {HEAD}: run `relay db upgrade` with this release (or, if the database "
            "belongs to a newer release, run that release)"
        )
    raise SchemaNotReady(msg)


def head_revision() -> str | None:
    """Alembic's own idea of the newest revision (imports Alembic)."""
    from alembic.script import ScriptDirectory  # only when asked: saves memory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
