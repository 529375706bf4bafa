"""relay.deliver.outcomes.OutcomeWriter: finished attempts written together, errors to each."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from relay.deliver.outcomes import OutcomeWriter
from relay.errors import StoreUnavailable
from relay.store import dispatch as db

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


class BrokenStore:
    """A store whose writes fail with `error` (the one place a fake store is enough: the
    writer's error handling, not SQL)."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.writes = 0

    async def write(self, _job: Any) -> Any:
        self.writes += 1
        await asyncio.sleep(0)
        raise self.error


def outcome(sid: str) -> db.Outcome:
    return db.accepted(sid, "me", f"<{sid}@mg>", db.Attempt(NOW, db.ACCEPTED, 200, 1))


@pytest.mark.parametrize("error", [StoreUnavailable("database write failed"), RuntimeError("bug")])
async def test_a_failed_write_reaches_every_waiting_send(error):
    """Whatever the write raises (the database is down, or a bug), every send waiting on that
    batch gets the error: none is left waiting forever, holding its row's lease."""
    store = BrokenStore(error)
    writer = OutcomeWriter(store, busy=lambda: True, linger=0.01)  # type: ignore[arg-type]
    async with asyncio.timeout(5):  # before the fix, the sends waited forever
        results = await asyncio.gather(
            *(writer.write(outcome(f"s{i}")) for i in range(3)), return_exceptions=True
        )
    assert results == [error, error, error]
    assert store.writes == 1


class CountingStore:
    """Runs nothing: answers every outcome as still owned and counts the writes."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    async def write(self, job: db.Finish) -> list[bool]:
        self.batches.append(len(job.outcomes))
        return [True] * len(job.outcomes)


async def test_outcomes_wait_for_the_others_in_flight_then_go_together():
    """While other sends are in flight, outcomes wait (at most `linger`) and are written in
    one batch; with nothing else in flight an outcome is written at once."""
    store = CountingStore()
    in_flight = True
    writer = OutcomeWriter(store, busy=lambda: in_flight, linger=0.05)  # type: ignore[arg-type]
    async with asyncio.timeout(5):
        assert await asyncio.gather(*(writer.write(outcome(f"s{i}")) for i in range(3))) == [
            True,
            True,
            True,
        ]
        assert store.batches == [3]
        in_flight = False
        assert await writer.write(outcome("alone"))
    assert store.batches == [3, 1]


async def test_flush_writes_what_is_pending_at_once():
    """`flush` (the dispatcher claims) writes the pending outcomes without waiting `linger`."""
    store = CountingStore()
    writer = OutcomeWriter(store, busy=lambda: True, linger=60)  # type: ignore[arg-type]
    waiting = [asyncio.create_task(writer.write(outcome(f"s{i}"))) for i in range(2)]
    await asyncio.sleep(0)
    writer.flush()
    writer.flush()  # nothing left: no empty batch
    async with asyncio.timeout(5):
        assert await asyncio.gather(*waiting) == [True, True]
    assert store.batches == [2]
