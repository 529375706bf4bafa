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
from relay.errors import StoreUnavailable
from relay.store.db import create_engine, create_sqlite_writer_engine, is_sqlite, upgrade
from relay.store.writer import GroupWriter, unavailable

T = TypeVar("T")


class Store:
    """The database as relay uses it: `write` commits in groups, `read` runs on the pool."""

    def __init__(
        self, engine: AsyncEngine, *, batch_max: int = 64, writer_engine: Engine | None = None
    ) -> None:
        self.engine = engine
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
    ) -> Store:
        """Connect (and, for the embedded SQLite default, bring the schema up to date)."""
        engine = create_engine(url, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms)
        if migrate:
            try:
                await upgrade(engine)
            except (SQLAlchemyError, OSError) as exc:
                await engine.dispose()
                msg = (
                    f"cannot migrate the database ({type(exc).__name__}: check RELAY_DATABASE_URL)"
                )
                raise StoreUnavailable(msg) from None
        writer_engine = None
        if is_sqlite(url):
            writer_engine = create_sqlite_writer_engine(
                url, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms
            )
        store = cls(engine, batch_max=batch_max, writer_engine=writer_engine)
        await store.writer.start()
        return store

    @classmethod
    async def from_settings(cls, settings: Settings) -> Store:
        """The store as the settings describe it; every process (serve, worker, CLI) opens it so."""
        return await cls.open(
            settings.effective_database_url,
            synchronous=settings.sqlite_synchronous,
            busy_timeout_ms=settings.db_busy_timeout_ms,
            batch_max=settings.write_batch_max,
            migrate=settings.migrates_on_start,
        )

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


__all__ = ["Store"]
