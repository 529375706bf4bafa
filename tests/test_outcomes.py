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
    writer = OutcomeWriter(store)  # type: ignore[arg-type]
    async with asyncio.timeout(5):  # before the fix, the sends waited forever
        results = await asyncio.gather(
            *(writer.write(outcome(f"s{i}")) for i in range(3)), return_exceptions=True
        )
    assert results == [error, error, error]
    assert store.writes == 1
