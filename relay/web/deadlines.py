"""Body reads cut off at a deadline by one timer for all of them, not one timer per read.

Why: a timer per read (asyncio.timeout, or a bare loop.call_at) costs about 2-4 µs under
uvloop, a tenth of answering a flood's request; nearly every read returns at once, its body
already there. Here a read is an entry in a set while it waits; while the set is not empty one
timer runs every `tick` seconds and cancels the reads whose deadline has passed, which then
raise BodyTimeout. A read is cut off between its deadline and one tick later. A read whose
message is there already (the server has the whole body) returns before any of that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

from starlette.types import Message, Receive


class BodyTimeout(Exception):
    """The request body did not arrive within RELAY_BODY_TIMEOUT_SECONDS."""


class _Read:
    __slots__ = ("deadline", "expired", "task")

    def __init__(self, task: asyncio.Task[Any], deadline: float) -> None:
        self.task = task
        self.deadline = deadline
        self.expired = False


class ReadDeadlines:
    """The waiting reads of one app and the one timer that cuts them off (module docstring)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.tick = min(1.0, seconds / 4)
        self._reads: set[_Read] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def deadline(self) -> float:
        """`seconds` from now, on the running loop's clock."""
        return asyncio.get_running_loop().time() + self.seconds

    async def receive(self, receive: Receive, deadline: float) -> Message:
        """`receive()`, or BodyTimeout once `deadline` (the loop's clock) has passed."""
        started = receive().__await__()
        try:
            first = started.send(None)  # its first step: nearly always, the message itself
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        task = asyncio.current_task()
        assert task is not None  # noqa: S101 - ASGI apps run in a task
        read = _Read(task, deadline)
        self._reads.add(read)
        loop = task.get_loop()
        if self._timer is None or self._loop is not loop:  # none yet, or a new loop (tests)
            self._loop, self._timer = loop, loop.call_later(self.tick, self._sweep)
        try:
            return await _Resumed(started, first)
        except asyncio.CancelledError:
            if read.expired and task.uncancel() == 0:
                raise BodyTimeout from None
            raise
        finally:
            self._reads.discard(read)

    def _sweep(self) -> None:
        loop = self._loop
        assert loop is not None  # noqa: S101 - set with the timer
        now = loop.time()
        overdue = [r for r in self._reads if r.deadline <= now and r.task.get_loop() is loop]
        for read in overdue:
            read.expired = True
            read.task.cancel()
        self._timer = loop.call_later(self.tick, self._sweep) if self._reads else None


class _Resumed:
    """Awaiting this goes on with an awaitable whose first step was taken (`first`, what it
    yielded), as if it had been awaited from the start: values, exceptions (a cancellation)
    and closing are passed on to it."""

    __slots__ = ("_first", "_started")

    def __init__(self, started: Generator[Any, Any, Message], first: Any) -> None:
        self._started = started
        self._first = first

    def __await__(self) -> Generator[Any, Any, Message]:
        started, step = self._started, self._first
        while True:
            try:
                value = yield step
            except GeneratorExit:
                started.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - a cancellation and the like: passed on
                try:
                    step = started.throw(exc)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
                continue
            try:
                step = started.send(value)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
