"""How the dispatcher yields to requests when both run on one event loop (`relay serve`).

Why: rendering and sending a message cost about as much CPU as accepting one, and both run
on the same loop. Left alone, the dispatcher takes half of it during a burst of submissions,
and the visitors' answers wait behind it. So each message's work is metered (the time each
step of its coroutine runs on the loop), and before a message starts, the dispatcher looks
whether anything else was waiting to run: if not, the loop is idle and it goes at full
speed; if so, it pauses long enough that its share of the loop stays under `share` (the
requests get the rest), then goes on. `relay worker`, alone on its loop, never waits.

A loop can look idle while visitors wait: a submission waiting for its group commit (the
database's fsync, in the writer thread) runs nothing on the loop. So the app also counts the
submissions it is answering (`Visitors`), and while any is, the loop counts as busy.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, TypeVar

T = TypeVar("T")
#: The dispatcher's share of a busy loop.
SHARE = 0.15
#: Other callbacks running longer than this while the dispatcher yielded: the loop is busy.
BUSY_AFTER = 0.00025
#: Messages started together on an idle loop (as many as there are), and on a busy one.
IDLE_BATCH = 1 << 30
BUSY_BATCH = 1
#: The longest single pause (a stop or a slot freeing up is noticed within it).
MAX_PAUSE = 0.05


class Visitors:
    """How many submissions the app on this loop is answering now (relay.web.submit counts)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def waiting(self) -> bool:
        return self.count > 0


def nobody() -> bool:
    """No visitors: a loop of the dispatcher's own (`relay worker`)."""
    return False


class Pacer:
    """Meters the dispatcher's work and admits messages one at a time (see module doc)."""

    def __init__(
        self,
        *,
        share: float = SHARE,
        visitors: Callable[[], bool] = nobody,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.share = share
        self._visitors = visitors
        self._clock = clock
        self._sleep = sleep
        self._spent = 0.0  # all metered work so far
        self._debt = 0.0  # work not yet balanced by the others' time
        self.pauses = 0

    @property
    def work(self) -> float:
        """Seconds of loop time the metered work has taken so far."""
        return self._spent

    def spent(self, seconds: float) -> None:
        self._spent += seconds
        self._debt += seconds

    async def admit(self) -> int:
        """How many messages may start now: all of them on an idle loop (they are then
        rendered and written together), `BUSY_BATCH` on a busy one (other callbacks ran
        while it yielded, or visitors are waiting) once the work already done fits the
        share (one message's work is the longest the requests wait)."""
        while True:
            mine, started = self._spent, self._clock()
            await self._sleep(0)
            others = (self._clock() - started) - (self._spent - mine)
            if others < BUSY_AFTER and not self._visitors():
                self._debt = 0.0  # idle: what was spent then took nothing from anyone
                return IDLE_BATCH
            if self._debt <= 0:
                return BUSY_BATCH
            pause = min(self._debt * (1 - self.share) / self.share, MAX_PAUSE)
            self._debt -= pause * self.share / (1 - self.share)
            self.pauses += 1
            await self._sleep(pause)

    def metered(self, coroutine: Coroutine[Any, Any, T]) -> Awaitable[T]:
        """`coroutine`, with the time of each of its steps counted as the dispatcher's."""
        return _Metered(coroutine, self)


class _Metered(Awaitable[T]):
    """Drives a coroutine step by step (as its task would) and times each step."""

    __slots__ = ("_coroutine", "_pacer")

    def __init__(self, coroutine: Coroutine[Any, Any, T], pacer: Pacer) -> None:
        self._coroutine = coroutine
        self._pacer = pacer

    def __await__(self) -> Generator[Any, Any, T]:
        coroutine, pacer, clock = self._coroutine, self._pacer, self._pacer._clock
        value: Any = None
        error: BaseException | None = None
        while True:
            started = clock()
            try:
                step = coroutine.send(value) if error is None else coroutine.throw(error)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            finally:
                pacer.spent(clock() - started)
            try:
                value, error = (yield step), None
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - cancellation and the like: passed on
                value, error = None, exc
