"""A local fake of Mailgun's Messages API for benchmarks and end-to-end runs, on 127.0.0.1 only.

POST /v3/{domain}/messages answers like Mailgun (200 with an id, 429 "try again after N
seconds", 5xx) after a configurable latency, with a configurable error mix. A "timeout" is the
worst case for duplicates: the message is taken (counted), then the answer hangs past the
client's timeout. Every taken message is counted by its Message-Id, so the server knows how
many duplicates it saw.

Control endpoints: POST /config (JSON: latency_ms, p5xx, p429, ptimeout, hang_seconds,
retry_after_seconds; also resets the counts), GET /stats, GET /taken/{message_id} (a stand-in
for Mailgun's Logs API: was this message taken?).

Run: python bench/fake_mailgun.py --port 8025 [--latency-ms 50 --p5xx 0.2 --p429 0.05 ...]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

#: Only the Message-Id is needed: a regex over the body costs far less than a form parser,
#: so the fake leaves the CPU to the relay being measured.
_MESSAGE_ID = re.compile(rb'name="h:Message-Id"\r\n(?:[^\r\n]*\r\n)*?\r\n([^\r\n]*)\r\n')


@dataclass
class Mix:
    """Latency and error mix; the probabilities are of each request."""

    latency_ms: float = 50.0
    p5xx: float = 0.0
    p429: float = 0.0
    ptimeout: float = 0.0
    hang_seconds: float = 3.0
    retry_after_seconds: int = 1


@dataclass
class Counts:
    requests: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    taken: Counter[str] = field(default_factory=Counter)

    def stats(self) -> dict[str, Any]:
        duplicates = sum(n - 1 for n in self.taken.values() if n > 1)
        return {
            "requests": self.requests,
            "by_status": dict(self.by_status),
            "unique_messages": len(self.taken),
            "duplicates": duplicates,
        }


async def _hang(request: Request, seconds: float) -> None:
    """Answer late: until the client gives up (and disconnects), at most `seconds`."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if await request.is_disconnected():
            return
        await asyncio.sleep(0.05)


def build_app(mix: Mix, rng: random.Random | None = None) -> Starlette:
    """The fake server as an ASGI app (state lives in the closure: one app, one run)."""
    counts = Counts()
    state = {"mix": mix}
    pick = rng or random.Random()

    async def messages(request: Request) -> Response:
        current = state["mix"]
        found = _MESSAGE_ID.search(await request.body())
        message_id = found.group(1).decode() if found else ""
        counts.requests += 1
        await asyncio.sleep(current.latency_ms / 1000)
        roll = pick.random()
        if roll < current.p5xx:
            counts.by_status["5xx"] += 1
            status = pick.choice((500, 502, 503))
            return JSONResponse({"message": "Internal Server Error"}, status_code=status)
        roll -= current.p5xx
        if roll < current.p429:
            counts.by_status["429"] += 1
            wait = current.retry_after_seconds
            text = (
                f"Domain {request.path_params['domain']} is not allowed to send: "
                f"account-requests-per-sec limit exceeded, try again after {wait} seconds"
            )
            return JSONResponse({"message": text}, status_code=429)
        roll -= current.p429
        counts.taken[message_id] += 1
        if roll < current.ptimeout:
            counts.by_status["timeout"] += 1
            await _hang(request, current.hang_seconds)  # taken, but the client stops waiting
        else:
            counts.by_status["200"] += 1
        return JSONResponse({"id": message_id, "message": "Queued. Thank you."})

    async def configure(request: Request) -> Response:
        values = await request.json()
        state["mix"] = Mix(**{**asdict(state["mix"]), **values})
        counts.requests = 0
        counts.by_status.clear()
        counts.taken.clear()
        return JSONResponse(asdict(state["mix"]))

    async def stats(_request: Request) -> Response:
        return JSONResponse(counts.stats())

    async def taken(request: Request) -> Response:
        return JSONResponse({"taken": counts.taken[request.path_params["message_id"]] > 0})

    async def root(_request: Request) -> Response:
        return PlainTextResponse("Mailgun Magnificent API")  # what the real root says

    return Starlette(
        routes=[
            Route("/", root),
            Route("/v3/{domain}/messages", messages, methods=["POST"]),
            Route("/config", configure, methods=["POST"]),
            Route("/stats", stats),
            Route("/taken/{message_id:path}", taken),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--p5xx", type=float, default=0.0)
    parser.add_argument("--p429", type=float, default=0.0)
    parser.add_argument("--ptimeout", type=float, default=0.0)
    parser.add_argument("--hang-seconds", type=float, default=3.0)
    args = parser.parse_args()
    mix = Mix(args.latency_ms, args.p5xx, args.p429, args.ptimeout, args.hang_seconds)
    uvicorn.run(
        build_app(mix),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
    )


if __name__ == "__main__":
    main()
