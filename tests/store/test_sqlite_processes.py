"""Several processes on one SQLite file (`relay serve --workers`): each has its own group
writer, and their transactions still never interleave a read and a write of another."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from relay.store import dispatch as db
from tests.helpers import Outbox

pytestmark = pytest.mark.anyio

LEASE = timedelta(minutes=2)


@pytest.fixture(name="two")
async def fixture_two(settings):
    """Two independent stores (two processes' writers and pools) on one SQLite file."""
    first = await Outbox.open(settings)
    second = await Outbox.open(settings)
    yield first, second
    await first.close()
    await second.close()


async def test_concurrent_claimers_on_one_sqlite_file_never_claim_the_same_row(two: Any, clock):
    """Two claimers with their own writers split the due rows: no row is claimed twice (the
    claim reads the due rows, then updates them, in one IMMEDIATE transaction)."""
    first, second = two
    ids = {await first.add(clock.now) for _ in range(150)}

    async def drain(box: Any, owner: str) -> list[str]:
        got: list[str] = []
        while True:
            batch = await box.store.write(db.claim(owner, clock.now, LEASE, 5))
            if not batch:
                return got
            got.extend(row.id for row in batch)

    a, b = await asyncio.gather(drain(first, "a"), drain(second, "b"))
    assert not set(a) & set(b)
    assert set(a) | set(b) == ids
    assert len(a) + len(b) == len(ids)
