"""Leased claims on the real PostgreSQL: FOR UPDATE SKIP LOCKED, takeover after a crash."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from relay import states
from relay.store import dispatch as db
from tests.fakes import FakeTransport
from tests.helpers import Outbox
from tests.test_dispatcher import make

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]

LEASE = timedelta(minutes=2)


@pytest.fixture(name="two")
async def fixture_two(settings, postgres_url):
    """Two independent stores (two workers' connections) on one fresh PostgreSQL database."""
    first = await Outbox.open(settings, postgres_url)
    second = await Outbox.open(settings, postgres_url)
    yield first, second
    await first.close()
    await second.close()


async def test_concurrent_claimers_never_claim_the_same_row(two: Any, clock: Any) -> None:
    """Two workers claiming in small batches at the same time split the rows: no row twice."""
    first, second = two
    ids = {await first.add(clock.now) for _ in range(120)}
    await second.store.write(lambda _conn: None)  # both connections open before the race

    async def drain(box: Any, owner: str) -> list[str]:
        got: list[str] = []
        while True:
            batch = await box.store.write(db.claim(owner, clock.now, LEASE, 7))
            if not batch:
                return got
            got.extend(row.id for row in batch)

    a, b = await asyncio.gather(drain(first, "a"), drain(second, "b"))
    assert len(a) + len(b) == len(ids)
    assert set(a) | set(b) == ids
    assert not set(a) & set(b)
    assert a
    assert b


async def test_a_row_locked_by_one_claim_is_skipped_by_another(two: Any, clock: Any, postgres_url):
    """While one worker's claim transaction holds rows, another claims the others at once."""
    first, second = two
    ids = [await first.add(clock.now + timedelta(seconds=i)) for i in range(6)]
    engine = create_async_engine(postgres_url)
    try:
        async with engine.connect() as conn:
            transaction = await conn.begin()
            held = await conn.run_sync(
                db.claim("holder", clock.now + timedelta(minutes=1), LEASE, 3)
            )
            assert [row.id for row in held] == ids[:3]
            other = await asyncio.wait_for(
                second.store.write(db.claim("other", clock.now + timedelta(minutes=1), LEASE, 10)),
                timeout=5,
            )
            assert [row.id for row in other] == ids[3:]
            await transaction.commit()
    finally:
        await engine.dispose()


async def test_a_crashed_workers_row_is_taken_over_after_the_lease(two: Any, clock: Any) -> None:
    """Claimed by a worker that then died: invisible until the lease expires, then taken over
    (and flagged as possibly sent)."""
    first, second = two
    sid = await first.add(clock.now)
    [claimed] = await first.store.write(db.claim("crashed", clock.now, LEASE, 5))
    assert (claimed.id, claimed.maybe_sent) == (sid, False)
    assert await second.store.write(db.claim("survivor", clock.now, LEASE, 5)) == []
    clock.now += LEASE
    [again] = await second.store.write(db.claim("survivor", clock.now, LEASE, 5))
    assert (again.id, again.maybe_sent, again.attempts) == (sid, True, 2)
    row = await second.row(sid)
    assert (row["state"], row["lease_owner"]) == (states.SENDING, "survivor")


async def test_two_dispatchers_deliver_every_row_exactly_once(two: Any, clock: Any) -> None:
    """Two full dispatchers on one database: every row accepted, each sent once."""
    first, second = two
    ids = {await first.add(clock.now) for _ in range(60)}
    transports = [FakeTransport(), FakeTransport()]
    workers = [
        make(first, transports[0], clock, dispatch_concurrency=5),
        make(second, transports[1], clock, dispatch_concurrency=5),
    ]
    while sum(await asyncio.gather(*(w.run_once() for w in workers))):
        pass
    sent = [e.submission_id for t in transports for e in t.sent]
    assert sorted(sent) == sorted(ids)
    assert all(t.sent for t in transports)
    assert {(await first.row(s))["state"] for s in ids} == {states.ACCEPTED}


async def test_claims_take_the_oldest_due_rows_across_states(two: Any, clock: Any) -> None:
    """Queued, retrying and lease-expired rows are claimed in the order they fell due, at most
    `limit` of them, and a row not due yet stays (each state is read off its index)."""
    await oldest_due_first(two[0], clock)


async def oldest_due_first(box: Any, clock: Any) -> None:
    """The claim-order check, shared with tests/test_dispatcher.py (SQLite)."""
    now = clock.now
    retrying = await box.add(now - timedelta(minutes=8))  # failed once, due again at -6
    await box.store.write(db.claim("w", now - timedelta(minutes=8), LEASE, 1))
    attempt = db.Attempt(now - timedelta(minutes=8), db.RETRY, 500, 1, "server error")
    due_at = now - timedelta(minutes=6)
    assert await box.store.write(db.mark_retry(retrying, "w", due_at, attempt))
    expired = await box.add(now - timedelta(minutes=10))  # sending, its lease ran out at -9
    await box.store.write(db.claim("gone", now - timedelta(minutes=10), timedelta(minutes=1), 1))
    queued = await box.add(now - timedelta(minutes=7))
    later = await box.add(now - timedelta(minutes=5))
    await box.add(now + timedelta(minutes=1))  # not due yet
    first = await box.store.write(db.claim("me", now, LEASE, 3))
    assert [row.id for row in first] == [expired, queued, retrying]
    assert [row.taken_over for row in first] == [True, False, False]
    rest = await box.store.write(db.claim("me", now, LEASE, 3))
    assert [row.id for row in rest] == [later]
