"""The async engine (SQLite in WAL mode by default, or PostgreSQL) and schema upgrades.

SQLite gets one pragma set per connection: WAL so readers never block the writer, the chosen
`synchronous` level, a busy timeout, and foreign keys. Schema changes go through Alembic only.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from relay.errors import StoreUnavailable

if TYPE_CHECKING:
    from alembic.config import Config

#: The newest migration. Kept here so a start-up at head needs no Alembic import (it costs
#: about 7 MB of memory per process); tests/store/test_migrations.py checks it is Alembic's head.
HEAD = "0002"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(engine: Engine, synchronous: str, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # erased and purged rows are overwritten with zeros, not left in free pages
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()


def create_engine(
    url: str, *, synchronous: str = "FULL", busy_timeout_ms: int = 5000
) -> AsyncEngine:
    """An async engine; for SQLite the database's folder is created and pragmas applied."""
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)
        _sqlite_pragmas(engine.sync_engine, synchronous, busy_timeout_ms)
        return engine
    return create_async_engine(url, pool_pre_ping=True)


def create_sqlite_writer_engine(url: str, *, synchronous: str, busy_timeout_ms: int) -> Engine:
    """A synchronous pysqlite engine on the same file, for the group writer's own thread.

    Why: through aiosqlite every statement is a hop between the event loop and aiosqlite's
    thread; the writer instead runs a whole group of statements in one hop on its thread.
    """
    engine = sqlalchemy.create_engine(make_url(url).set(drivername="sqlite+pysqlite"))
    _sqlite_pragmas(engine, synchronous, busy_timeout_ms)
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


def _unreachable(engine: AsyncEngine, exc: BaseException) -> StoreUnavailable:
    where = engine.url.render_as_string(hide_password=True)
    return StoreUnavailable(f"database {where} is unreachable or refused ({type(exc).__name__})")


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema up to `revision` (Alembic), in one transaction where the backend can."""
    try:
        if revision == "head" and await current_revision(engine) == HEAD:
            return
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, revision)
    except (SQLAlchemyError, OSError) as exc:
        raise _unreachable(engine, exc) from None


async def current_revision(engine: AsyncEngine) -> str | None:
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current)
    except (SQLAlchemyError, OSError) as exc:
        raise _unreachable(engine, exc) from None


def head_revision() -> str | None:
    """Alembic's own idea of the newest revision (imports Alembic)."""
    from alembic.script import ScriptDirectory  # only when asked: saves memory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
