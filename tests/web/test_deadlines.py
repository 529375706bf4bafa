"""relay.web.deadlines: body reads cut off at their deadline, by one timer for all of them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from relay.web.deadlines import BodyTimeout, ReadDeadlines

MESSAGE = {"type": "http.request", "body": b"{}", "more_body": False}


def never_arriving(seen: list[str], ending: type[BaseException]) -> Any:
    """A server's receive whose message never comes; how it ends (`ending`: cancelled,
    closed) is noted in `seen` by its class name."""

    async def receive() -> dict[str, Any]:
        try:
            await asyncio.Event().wait()
        except ending:
            seen.append(ending.__name__)
            raise
        raise AssertionError  # pragma: no cover - never woken

    return receive


def test_a_message_already_there_is_returned_at_once_without_a_timer():
    """The server has the whole body: the read returns it without entering the set of
    waiting reads, so no timer is started."""
    deadlines = ReadDeadlines(1.0)

    async def receive() -> dict[str, Any]:
        return MESSAGE

    async def read() -> Any:
        return await deadlines.receive(receive, deadlines.deadline())

    assert asyncio.run(read()) == MESSAGE
    assert (deadlines._reads, deadlines._timer) == (set(), None)


def test_a_message_that_arrives_in_time_is_returned_through_the_wait():
    """The read waits (the body is on its way), the message arrives before the deadline:
    it is returned as the server gave it, and the read leaves the set."""
    deadlines = ReadDeadlines(2.0)

    async def read() -> Any:
        arrived: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

        async def receive() -> dict[str, Any]:
            return await arrived

        asyncio.get_running_loop().call_later(0.01, arrived.set_result, MESSAGE)
        got = await deadlines.receive(receive, deadlines.deadline())
        return got, len(deadlines._reads)

    assert asyncio.run(read()) == (MESSAGE, 0)


def test_a_read_past_its_deadline_raises_body_timeout_inside_the_receive():
    """A body that never comes: the read is cut off once its deadline has passed (within a
    tick), as BodyTimeout, and the server's receive itself saw the cancellation."""
    deadlines = ReadDeadlines(0.04)
    seen: list[str] = []
    receive = never_arriving(seen, asyncio.CancelledError)

    async def read() -> None:
        await deadlines.receive(receive, deadlines.deadline())

    with pytest.raises(BodyTimeout):
        asyncio.run(read())
    assert seen == ["CancelledError"]


def test_a_cancellation_from_elsewhere_stays_a_cancellation():
    """The task cancelled by someone else (the server shutting down) before the deadline:
    CancelledError, not BodyTimeout, passed into the waiting receive."""
    deadlines = ReadDeadlines(10.0)
    seen: list[str] = []
    receive = never_arriving(seen, asyncio.CancelledError)

    async def main() -> None:
        task = asyncio.create_task(deadlines.receive(receive, deadlines.deadline()))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert seen == ["CancelledError"]
    assert deadlines._reads == set()


def test_a_read_closed_while_it_waits_closes_the_receive():
    """A read abandoned while it waits (its coroutine closed, as a garbage-collected task's
    is) closes the server's receive too, rather than leaving it suspended."""
    deadlines = ReadDeadlines(10.0)
    closed: list[str] = []
    receive = never_arriving(closed, GeneratorExit)

    async def main() -> None:
        reading = deadlines.receive(receive, deadlines.deadline())
        step = reading.send(None)  # as a task's first step: it now waits
        assert step is not None
        reading.close()

    asyncio.run(main())
    assert closed == ["GeneratorExit"]
