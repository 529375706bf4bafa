"""Store: the one object the app, the worker and the CLI receive; it owns engine and writer.

Writes go through the group-commit writer (one connection, one transaction per group);
reads run on pooled connections. Both take plain functions of a SQLAlchemy `Connection`, so
the query code in outbox.py and friends is ordinary synchronous Core, tested without servers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from relay.config import Settings
from relay.errors import ConfigError
from relay.store.db import (
    create_engine,
    create_sqlite_writer_engine,
    is_sqlite,
    require_schema,
    sqlite_path,
    upgrade,
)
from relay.store.peers import application_name
from relay.store.writer import GroupWriter, unavailable

T = TypeVar("T")


class Store:
    """The database as relay uses it: `write` commits in groups, `read` runs on the pool."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        batch_max: int = 64,
        writer_engine: Engine | None = None,
        application_name: str = "",
    ) -> None:
        self.engine = engine
        self.application_name = application_name  # PostgreSQL: how our sessions are named
        self.writer = GroupWriter(engine, batch_max=batch_max, sync_engine=writer_engine)

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        synchronous: str = "FULL",
        busy_timeout_ms: int = 5000,
        batch_max: int = 64,
        migrate: bool = False,
        connect_timeout: float = 3.0,
        statement_timeout: float | None = None,
        application_name: str = "",
    ) -> Store:
        """Connect (and, for the embedded SQLite default, bring the schema up to date).

        Migrations run without the statement timeout; the store's own engine has it.
        """
        if migrate:
            migrator = create_engine(
                url,
                synchronous=synchronous,
                busy_timeout_ms=busy_timeout_ms,
                connect_timeout=connect_timeout,
            )
            try:
                await upgrade(migrator)  # StoreUnavailable naming the database on failure
            finally:
                await migrator.dispose()
        engine = create_engine(
            url,
            synchronous=synchronous,
            busy_timeout_ms=busy_timeout_ms,
            connect_timeout=connect_timeout,
            statement_timeout=statement_timeout,
            application_name=application_name,
        )
        writer_engine = None
        if is_sqlite(url):
            writer_engine = create_sqlite_writer_engine(
                url, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms
            )
        store = cls(
            engine,
            batch_max=batch_max,
            writer_engine=writer_engine,
            application_name=application_name,
        )
        await store.writer.start()
        return store

    @classmethod
    async def from_settings(
        cls, settings: Settings, *, create: bool = False, dispatching: bool = False
    ) -> Store:
        """The store as the settings describe it; every process (serve, worker, CLI) opens it so.

        Only `create` (serve, worker, send-test) may start a new embedded SQLite database: for
        any other command a missing file means a mistyped RELAY_VAR_DIR or RELAY_DATABASE_URL,
        and an empty new database would answer "nothing here" about data that exists elsewhere.
        `dispatching`: this process runs a dispatcher (names its PostgreSQL sessions so, see
        relay.store.peers).
        """
        problem = None if create else missing_database(settings)
        if problem is not None:
            raise ConfigError(problem)
        return await cls.open(
            settings.effective_database_url,
            synchronous=settings.sqlite_synchronous,
            busy_timeout_ms=settings.db_busy_timeout_ms,
            batch_max=settings.write_batch_max,
            migrate=settings.migrates_on_start,
            connect_timeout=settings.database_connect_timeout_seconds,
            statement_timeout=settings.database_statement_timeout_seconds,
            application_name=application_name(dispatching=dispatching),
        )

    async def require_schema(self) -> None:
        """SchemaNotReady (run `relay db upgrade`) or StoreUnavailable (where, why) unless the
        database answers with this release's schema: serve and worker check it at start."""
        await require_schema(self.engine)

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(str(self.engine.url))

    async def checkpoint(self) -> bool:
        """After an erasure or a purge: SQLite copies the write-ahead log into the database and
        truncates it (`secure_delete` has already zeroed the freed space), so no erased value
        stays recoverable in the -wal file. True if the log is now empty. PostgreSQL: nothing
        to do here (docs/privacy.md: VACUUM and backups)."""
        if not self.is_sqlite:
            return True

        try:
            async with self.engine.connect() as conn:
                auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
                result = await auto.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                row = result.first()
                return row is None or not row[0]
        except (SQLAlchemyError, OSError) as exc:
            raise unavailable(exc, "checkpoint") from None

    async def close(self) -> None:
        await self.writer.stop()
        await self.engine.dispose()

    async def write(self, job: Callable[[Connection], T]) -> T:
        """Run `job` in the next group transaction; returns once it is committed."""
        return await self.writer.submit(job)

    async def read(self, query: Callable[[Connection], T]) -> T:
        """Run a read-only `query` on a pooled connection."""
        try:
            async with self.engine.connect() as conn:
                return await conn.run_sync(query)
        except (SQLAlchemyError, OSError) as exc:
            raise unavailable(exc, "read") from None


def missing_database(settings: Settings) -> str | None:
    """Why the embedded SQLite database cannot be opened without creating it, or None."""
    url = settings.effective_database_url
    path = sqlite_path(url) if is_sqlite(url) else None
    if path is None or path.exists():
        return None
    return (
        f"no database at {path}: check RELAY_VAR_DIR / RELAY_DATABASE_URL "
        "(`relay serve`, `relay worker` and `relay db upgrade` create it)"
    )


__all__ = ["Store", "missing_database"]
