"""The group-commit writer: every write of the process goes through one connection.

Why: SQLite has one write lock, and SQLAlchemy costs about a millisecond of CPU per
transaction. Requests queue their write (a function of a connection); the writer takes
whatever is queued, up to `batch_max`, runs it in one transaction, commits once, and only then
wakes each request with its own result. Each request therefore answers after *its* row is
durable, and the cost of a commit is shared by the batch. If a batch fails, its jobs are
retried one by one so one bad job cannot fail the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay.errors import StoreUnavailable

T = TypeVar("T")
Job = Callable[[Connection], Any]
log = logging.getLogger("relay.store")
_STOP = object()


def unavailable(exc: BaseException, what: str = "write") -> StoreUnavailable:
    """Translate a database failure without its SQL or parameters (they may hold personal data)."""
    return StoreUnavailable(f"database {what} failed ({type(exc).__name__})")


def _run_all(conn: Connection, jobs: list[Job]) -> list[Any]:
    with conn.begin():
        return _apply(conn, jobs)


def _apply(conn: Connection, jobs: list[Job]) -> list[Any]:
    """Run a group's jobs in order; jobs that offer a `run_many` (accepts) run together, at the
    place of the first of them, so their statements can be executed in bulk."""
    results: list[Any] = [None] * len(jobs)
    bulk: dict[Any, list[int]] = {}
    for index, job in enumerate(jobs):
        run_many = getattr(job, "run_many", None)
        if run_many is not None:
            bulk.setdefault(run_many, []).append(index)
    done: set[int] = set()
    for index, job in enumerate(jobs):
        if index in done:
            continue
        run_many = getattr(job, "run_many", None)
        if run_many is None:
            results[index] = job(conn)
            continue
        members = bulk[run_many]
        for member, result in zip(members, run_many(conn, [jobs[i] for i in members]), strict=True):
            results[member] = result
        done.update(members)
    return results


class _ThreadConnection:
    """A synchronous connection living on one dedicated thread (the SQLite writer)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-writer")
        self._conn: Connection | None = None

    def _run(self, jobs: list[Job]) -> list[Any]:
        if self._conn is None:
            self._conn = self._engine.connect()
        try:
            return _run_all(self._conn, jobs)
        except BaseException:
            self._conn.close()
            self._conn = None
            raise

    async def run(self, jobs: list[Job]) -> list[Any]:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._run, jobs)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._engine.dispose()

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)


class GroupWriter:
    """One connection, one queue, one task: commits queued jobs in small groups.

    On SQLite the connection is a synchronous one on its own thread (`sync_engine`), so a
    whole group costs one thread hop; elsewhere it is an async connection from `engine`.
    """

    def __init__(
        self, engine: AsyncEngine, *, batch_max: int = 64, sync_engine: Engine | None = None
    ) -> None:
        self._engine = engine
        self._batch_max = batch_max
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._conn: AsyncConnection | None = None
        self._thread = _ThreadConnection(sync_engine) if sync_engine is not None else None
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.rows = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="relay-group-writer")

    async def stop(self) -> None:
        """Commit what is queued, then close the connection."""
        if self._task is None:
            return
        self._queue.put_nowait(_STOP)
        await self._task
        self._task = None
        log.info(
            "group writer stopped",
            extra={
                "batches": self.batches,
                "rows": self.rows,
                "rows_per_batch": round(self.rows / max(self.batches, 1), 1),
            },
        )
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
        if self._thread is not None:
            await self._thread.close()

    async def submit(self, job: Callable[[Connection], T]) -> T:
        """Queue `job`; return its result once its transaction has committed."""
        if self._task is None:
            msg = "the store is closed"
            raise StoreUnavailable(msg)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((job, future))
        return await future

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            stop_after = False
            while len(batch) < self._batch_max:
                try:
                    more = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if more is _STOP:
                    stop_after = True
                    break
                batch.append(more)
            await self._commit(batch)
            if stop_after:
                return

    async def _connection(self) -> AsyncConnection:
        if self._conn is None:
            self._conn = await self._engine.connect()
        return self._conn

    async def _reset(self) -> None:
        if self._conn is not None:
            try:
                await self._conn.close()
            except (SQLAlchemyError, OSError):
                log.warning("closing a failed writer connection failed too")
            self._conn = None

    async def _commit(self, batch: list[tuple[Job, asyncio.Future[Any]]]) -> None:
        jobs = [job for job, _ in batch]
        try:
            if self._thread is not None:
                results = await self._thread.run(jobs)
            else:
                conn = await self._connection()
                results = await conn.run_sync(_run_all, jobs)
        except (SQLAlchemyError, OSError) as exc:
            await self._reset()
            if len(batch) == 1:
                _settle(batch[0][1], exc=unavailable(exc))
                return
            log.warning(
                "group commit of %d jobs failed (%s); retrying one by one",
                len(batch),
                type(exc).__name__,
            )
            for item in batch:
                await self._commit([item])
            return
        except Exception as exc:  # noqa: BLE001 - a job's own error goes back to its caller
            await self._reset()
            if len(batch) == 1:
                _settle(batch[0][1], exc=exc)
                return
            for item in batch:
                await self._commit([item])
            return
        self.batches += 1
        self.rows += len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result=result)


def _settle(
    future: asyncio.Future[Any], *, result: Any = None, exc: BaseException | None = None
) -> None:
    if future.done():  # the request gave up waiting (client went away); the row is committed
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
