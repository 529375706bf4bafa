"""Delivery states for tests, made by the real machinery: the accept endpoint, the dispatcher,
Mailgun's webhooks.

`submit` posts through POST /f/{form}; `deliver` runs relay's own Dispatcher (renderer, retry
policy, MailgunTransport, the store's claim and outcome jobs) over the app's store, with Mailgun
faked at the network edge only (`Mailgun`: an httpx.MockTransport answering as Mailgun's API
does); `hook` posts a signed event to POST /webhooks/mailgun. Time moves with the test's clock,
which the app, this dispatcher and the CLI all read. Nothing here writes a row directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import threading
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from typing import Any, cast

import httpx
from starlette.applications import Starlette
from starlette.testclient import TestClient

from relay.deliver.delivery import options_for, renderer_for
from relay.deliver.dispatcher import Dispatcher
from relay.mail.events import signature_for
from relay.mail.mailgun import MailgunTransport
from relay.store import Store
from relay.web.deps import Deps
from tests.helpers import post_json

WEBHOOK_KEY = "TEST_WEBHOOK_SIGNING_KEY"
DOMAIN = "mg.example.com"
#: What Mailgun answers a send it refuses for good (HTTP 400), in its own words.
BAD_RECIPIENT = "'to' parameter is not a valid address. please check documentation"
_MESSAGE_ID = re.compile(rb'name="h:Message-Id"\r\n\r\n([^\r]+)\r\n')


def store(client: TestClient) -> Store:
    return client.app_state["store"]  # type: ignore[no-any-return]  # set by the lifespan


def write(client: TestClient, job: Any) -> Any:
    assert client.portal is not None
    return client.portal.call(store(client).write, job)


def read(client: TestClient, query: Any) -> Any:
    assert client.portal is not None
    return client.portal.call(store(client).read, query)


def submit(client: TestClient, form_id: str = "contact", **fields: Any) -> str:
    """Post a valid submission through the real endpoint; its id."""
    response = post_json(client, form_id, **fields)
    return str(response.json()["id"])


class Mailgun:
    """Mailgun's sending API at the network edge: each request gets the next scripted answer
    (a status code, or a whole response), then 200 with the message id relay set, as Mailgun
    answers (`{"id": "<Message-Id>", "message": "Queued. Thank you."}`).

    `gate`, when set, keeps every request waiting for its answer until it opens: a send in
    flight (see `in_flight`).
    """

    def __init__(self, *answers: int | httpx.Response) -> None:
        self.script: deque[int | httpx.Response] = deque(answers)
        self.requests: list[httpx.Request] = []
        self.arrived = threading.Event()  # set by the first request (read by the test thread)
        self.gate: asyncio.Event | None = None  # made in the app's event loop

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.arrived.set()
        if self.gate is not None:
            await self.gate.wait()
        answer = self.script.popleft() if self.script else 200
        if isinstance(answer, httpx.Response):
            return answer
        if answer == 200:
            found = _MESSAGE_ID.search(request.read())
            assert found, "relay sent no h:Message-Id"
            body = {"id": found.group(1).decode(), "message": "Queued. Thank you."}
            return httpx.Response(200, json=body)
        reasons = {400: BAD_RECIPIENT, 429: "Too Many Requests", 503: "Service Unavailable"}
        return httpx.Response(answer, json={"message": reasons.get(answer, "error")})

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def dispatcher(client: TestClient, http: httpx.AsyncClient) -> Dispatcher:
    """The dispatcher `relay serve` would run, on this app's store, clock, forms and keys, with
    Mailgun's API behind `http`. Jitter is fixed (the longest wait) so retry times are exact."""
    deps: Deps = cast("Starlette", client.app).state.deps
    settings = deps.settings
    transport = MailgunTransport(
        http,
        api_key="key-test-not-a-secret",
        domain=settings.mailgun_domain or DOMAIN,
        base_url=settings.mailgun_base_url,
        clock=deps.clock,
        metrics=deps.metrics,
    )
    return Dispatcher(
        store(client),
        transport,
        renderer_for(settings),
        forms=deps.forms,
        keyring=deps.keyring,
        clock=deps.clock,
        options=options_for(settings),
        rand=lambda: 1.0,
        metrics=deps.metrics,
    )


async def _until_idle(client: TestClient, mailgun: Mailgun) -> int:
    handled = 0
    async with httpx.AsyncClient(transport=mailgun.transport()) as http:
        sender = dispatcher(client, http)
        while count := await sender.run_once():
            handled += count
    return handled


def deliver(client: TestClient, *answers: int | httpx.Response) -> Mailgun:
    """Run the dispatcher over everything due now (by the test's clock) until a pass finds
    nothing, Mailgun answering `answers` in order and then 200. Rows due later (a retry) wait
    until the test moves the clock and delivers again."""
    mailgun = Mailgun(*answers)
    assert client.portal is not None
    client.portal.call(_until_idle, client, mailgun)
    return mailgun


def drained(client: TestClient) -> None:
    """For an app that runs its own dispatcher (dispatch_in_serve=True): wake it and wait
    until it has handled everything due now (Dispatcher.drained), without polling."""
    assert client.portal is not None
    running = client.app_state["dispatcher"]
    assert running is not None, "this app runs no dispatcher: pass dispatch_in_serve=True"
    client.portal.call(running.drained)


@contextlib.contextmanager
def in_flight(client: TestClient, *answers: int | httpx.Response) -> Iterator[Mailgun]:
    """Inside the block, the dispatcher has claimed what is due (`sending`) and Mailgun has
    the request but has not answered; on exit Mailgun answers, and the dispatcher records the
    outcome if it still holds the lease (an event may have settled the row meanwhile)."""
    mailgun = Mailgun(*answers)
    assert client.portal is not None
    mailgun.gate = client.portal.call(_event)
    running = client.portal.start_task_soon(_until_idle, client, mailgun)
    try:
        assert mailgun.arrived.wait(10), "the dispatcher sent nothing"
        yield mailgun
    finally:
        client.portal.call(mailgun.gate.set)
        running.result(10)


async def _event() -> asyncio.Event:
    return asyncio.Event()


def event_data(
    submission_id: str,
    event: str,
    at: datetime,
    *,
    event_id: str | None = None,
    severity: str | None = None,
    reason: str | None = None,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Mailgun event as its webhooks send it (shape of the reference's fixtures)."""
    data: dict[str, Any] = {
        "id": event_id or secrets.token_urlsafe(16),
        "event": event,
        "timestamp": at.timestamp(),
        "recipient": "sales@example.com",
        "message": {"headers": {"message-id": f"{submission_id}@{DOMAIN}"}},
        "user-variables": {"submission_id": submission_id},
        "flags": {"is-test-mode": False},
    }
    if severity:
        data["severity"] = severity
    if reason:
        data["reason"] = reason
    if status is not None:
        data["delivery-status"] = status
    return data


def signed(
    data: dict[str, Any], at: datetime, *, key: str = WEBHOOK_KEY, token: str | None = None
) -> dict[str, Any]:
    """Wrap event data in a signature block, as Mailgun does."""
    timestamp = str(int(at.timestamp()))
    token = token or secrets.token_hex(25)
    signature = signature_for(key.encode(), timestamp, token)
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": data,
    }


def hook(client: TestClient, submission_id: str, event: str, at: datetime, **extra: Any) -> None:
    """Mailgun's webhook tells relay about one event (signed, through POST /webhooks/mailgun);
    the app must record it (the test's settings carry WEBHOOK_KEY)."""
    payload = signed(event_data(submission_id, event, at, **extra), at)
    response = client.post("/webhooks/mailgun", json=payload)
    assert (response.status_code, response.json().get("verdict")) == (200, "recorded"), (
        response.text
    )
