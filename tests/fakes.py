"""Fakes at the network edge only: a transport with scripted results that records what it got."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable

from relay.mail.transport import Accepted, RenderedEmail, SendResult


class FakeTransport:
    """Answers each send with the next scripted result (Accepted once the script runs out).

    `gate`, when set, makes every send wait until the test opens it: a send "in flight".
    """

    def __init__(self, results: Iterable[SendResult] = ()) -> None:
        self.script: deque[SendResult] = deque(results)
        self.sent: list[RenderedEmail] = []
        self.gate: asyncio.Event | None = None
        self.started = 0
        self.in_flight = asyncio.Event()  # set once a send has begun

    async def send(self, email: RenderedEmail) -> SendResult:
        self.started += 1
        self.in_flight.set()
        if self.gate is not None:
            await self.gate.wait()
        self.sent.append(email)
        if self.script:
            return self.script.popleft()
        return Accepted(f"<{email.submission_id}.fake@mg.example.com>")
