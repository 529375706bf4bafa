"""relay.deliver.pacing: the dispatcher's share of a busy event loop, on a fake clock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from relay.deliver.pacing import (
    BUSY_AFTER,
    BUSY_BATCH,
    IDLE_BATCH,
    MAX_PAUSE,
    Pacer,
    Visitors,
)

pytestmark = pytest.mark.anyio


class Loop:
    """A fake clock and sleep: each `sleep(0)` lets "the others" (requests) run `others`
    seconds; a longer sleep is a pause, recorded and spent by the others."""

    def __init__(self, others: float) -> None:
        self.now = 0.0
        self.others = others
        self.pauses: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if seconds:
            self.pauses.append(seconds)
            self.now += seconds
        else:
            self.now += self.others


def pacer(loop: Loop, share: float = 0.2, visitors: Visitors | None = None) -> Pacer:
    if visitors is None:
        return Pacer(share=share, clock=loop.clock, sleep=loop.sleep)
    return Pacer(share=share, clock=loop.clock, sleep=loop.sleep, visitors=visitors.waiting)


async def test_on_an_idle_loop_everything_starts_at_once():
    """Nothing else waiting to run: no pause, however much the dispatcher has done, and the
    whole batch may start together."""
    loop = Loop(others=0.0)
    pace = pacer(loop)
    pace.spent(1.0)
    assert await pace.admit() == IDLE_BATCH
    assert loop.pauses == []


async def test_on_a_busy_loop_the_dispatcher_keeps_to_its_share():
    """Requests waiting: after 10 ms of delivery work at a 20 % share, the dispatcher pauses
    40 ms in all (in pauses of at most MAX_PAUSE), then starts one message."""
    loop = Loop(others=0.002)
    pace = pacer(loop, share=0.2)
    pace.spent(0.010)
    assert await pace.admit() == BUSY_BATCH
    assert sum(loop.pauses) == pytest.approx(0.040)
    assert max(loop.pauses) <= MAX_PAUSE
    assert pace.pauses == len(loop.pauses)


async def test_work_already_balanced_by_the_others_needs_no_pause():
    """On a busy loop with no delivery work outstanding, the next message starts at once."""
    loop = Loop(others=0.002)
    pace = pacer(loop)
    assert await pace.admit() == BUSY_BATCH
    assert loop.pauses == []


async def test_the_dispatchers_own_steps_do_not_make_the_loop_look_busy():
    """While the dispatcher yields, its own metered steps (other messages in flight) are not
    the others' work: the loop still counts as idle."""
    loop = Loop(others=0.0)

    async def own_work(seconds: float) -> None:
        loop.now += seconds

    async def sleep_running_own(seconds: float) -> None:
        await pace.metered(own_work(0.005))  # another message's step runs meanwhile
        await loop.sleep(seconds)

    pace = Pacer(share=0.2, clock=loop.clock, sleep=sleep_running_own)
    pace.spent(0.010)
    assert await pace.admit() == IDLE_BATCH
    assert loop.pauses == []
    assert BUSY_AFTER < 0.005


async def test_metered_passes_results_errors_and_cancellation_through():
    """A metered coroutine returns its value, raises its errors and can be cancelled; the
    time of each of its steps (not of its waits) is counted."""
    loop = Loop(others=0.0)
    pace = pacer(loop)
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def work() -> str:
        loop.now += 0.003
        answer = await gate  # a wait: not counted
        loop.now += 0.002
        return answer

    task = asyncio.ensure_future(pace.metered(work()))
    await asyncio.sleep(0)
    loop.now += 10.0  # the wait
    gate.set_result("done")
    assert await task == "done"
    assert pace.work == pytest.approx(0.005)

    async def fails() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await pace.metered(fails())

    cleaned: list[str] = []

    async def waits_forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append("finally ran")

    cancelled = asyncio.ensure_future(pace.metered(waits_forever()))
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert cleaned == ["finally ran"]


async def test_a_metered_coroutine_closed_unfinished_is_closed_too():
    """Closing the awaiting generator (a task garbage-collected mid-wait) closes the
    coroutine, so its cleanup runs."""
    pace = Pacer()
    cleaned: list[str] = []

    async def waits() -> Any:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append("closed")

    steps = pace.metered(waits()).__await__()
    next(steps)
    steps.close()
    assert cleaned == ["closed"]


async def test_visitors_waiting_make_an_idle_loop_busy():
    """Submissions waiting on their commit run nothing on the loop: while the app counts one,
    the dispatcher keeps to its share as on a busy loop; once none is left, it goes at full
    speed again."""
    loop = Loop(others=0.0)
    visitors = Visitors()
    pace = pacer(loop, share=0.2, visitors=visitors)
    visitors.count = 3
    pace.spent(0.010)
    assert await pace.admit() == BUSY_BATCH
    assert sum(loop.pauses) == pytest.approx(0.040)
    visitors.count = 0
    pace.spent(0.010)
    assert await pace.admit() == IDLE_BATCH
    assert sum(loop.pauses) == pytest.approx(0.040)  # no pause more
