"""The dispatcher driving the real MailgunTransport, with Mailgun faked by respx."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx

from relay import states
from relay.config import load_forms
from relay.deliver.delivery import options_for, renderer_for
from relay.deliver.dispatcher import Dispatcher
from relay.mail.mailgun import MailgunTransport
from relay.store import dispatch as db
from tests.helpers import Outbox
from tests.mail.test_mailgun import fields_of

pytestmark = pytest.mark.anyio

URL = "https://api.eu.mailgun.net/v3/mg.example.com/messages"
OK = {"id": "<20261125.1@mg.example.com>", "message": "Queued. Thank you."}


@pytest.fixture(name="outbox")
async def fixture_outbox(settings_factory):
    settings = settings_factory(mailgun_api_key="k" * 40, mailgun_domain="mg.example.com")
    box = await Outbox.open(settings)
    yield box
    await box.close()


@pytest.fixture(name="mailgun")
def fixture_mailgun():
    with respx.mock(assert_all_called=True, assert_all_mocked=True) as router:
        yield router


class Harness:
    def __init__(self, outbox: Any, clock: Any, client: Any, lookup: Any = None) -> None:
        settings = outbox.settings
        transport = MailgunTransport(
            client,
            api_key="k" * 40,
            domain="mg.example.com",
            base_url=settings.mailgun_base_url,
            clock=clock,
        )
        self.dispatcher = Dispatcher(
            outbox.store,
            transport,
            renderer_for(settings),
            forms=load_forms(settings.effective_forms_file),
            keyring=outbox.keyring,
            clock=clock,
            lookup=lookup,
            options=options_for(settings),
            rand=lambda: 0.0,
        )


async def test_retry_after_then_accepted(outbox, clock, mailgun):
    """429 with Retry-After: 60 → retrying for exactly 60 s → 200 → accepted with Mailgun's id."""
    sid = await outbox.add(clock.now)
    route = mailgun.post(URL)
    route.side_effect = [
        httpx.Response(429, json={"message": "slow down"}, headers={"Retry-After": "60"}),
        httpx.Response(200, json=OK),
    ]
    async with httpx.AsyncClient() as client:
        dispatcher = Harness(outbox, clock, client).dispatcher
        await dispatcher.run_once()
        row = await outbox.row(sid)
        assert (row["state"], row["next_attempt_at"]) == (
            states.RETRYING,
            clock.now + timedelta(seconds=60),
        )
        clock.now += timedelta(seconds=60)
        await dispatcher.run_once()
    row = await outbox.row(sid)
    assert (row["state"], row["provider_message_id"]) == (states.ACCEPTED, OK["id"])
    attempts = [(a["outcome"], a["http_status"]) for a in await outbox.attempts(sid)]
    assert attempts == [("retry", 429), ("accepted", 200)]


async def test_a_timeout_is_retried_with_the_same_message_id(outbox, clock, mailgun):
    """A read timeout is ambiguous; with no lookup the resend carries the same h:Message-Id,
    so the duplicate can be recognised downstream."""
    sid = await outbox.add(clock.now)
    route = mailgun.post(URL)
    route.side_effect = [httpx.ReadTimeout("timed out"), httpx.Response(200, json=OK)]
    async with httpx.AsyncClient() as client:
        dispatcher = Harness(outbox, clock, client).dispatcher
        await dispatcher.run_once()
        assert (await outbox.row(sid))["state"] == states.RETRYING
        clock.now += timedelta(minutes=5)
        await dispatcher.run_once()
    ids = [dict(fields_of(call.request))["h:Message-Id"] for call in route.calls]
    assert ids == [f"<{sid}@mg.example.com>"] * 2
    attempts = [(a["outcome"], a["error"]) for a in await outbox.attempts(sid)]
    assert attempts == [
        ("ambiguous", "no answer from Mailgun in time (ReadTimeout)"),
        ("accepted", None),
    ]


async def test_a_timeout_found_by_the_lookup_is_not_sent_twice(outbox, clock, mailgun):
    """With a lookup that finds the first attempt, Mailgun gets one request only; the lookup
    is asked once its logs can show the message (RELAY_RESEND_LOOKUP_DELAY_SECONDS, 15 min)."""
    sid = await outbox.add(clock.now)
    route = mailgun.post(URL)
    route.side_effect = [httpx.ReadTimeout("timed out")]
    asked = []

    async def lookup(submission_id):
        asked.append(clock.now)
        return submission_id == sid

    sent_at = clock.now
    async with httpx.AsyncClient() as client:
        dispatcher = Harness(outbox, clock, client, lookup=lookup).dispatcher
        await dispatcher.run_once()
        clock.now += timedelta(minutes=5)
        await dispatcher.run_once()
        assert asked == []
        clock.now = sent_at + timedelta(minutes=15)
        await dispatcher.run_once()
    assert asked == [clock.now]
    assert route.call_count == 1
    assert (await outbox.row(sid))["state"] == states.ACCEPTED


async def test_401_pauses_dispatch_and_resumes_once_the_key_works(outbox, clock, mailgun):
    """401: nothing is lost (queued), dispatch pauses and says why; later, the probe succeeds
    and dispatch resumes."""
    sid = await outbox.add(clock.now)
    route = mailgun.post(URL)
    route.side_effect = [httpx.Response(401, text="Forbidden"), httpx.Response(200, json=OK)]
    async with httpx.AsyncClient() as client:
        dispatcher = Harness(outbox, clock, client).dispatcher
        await dispatcher.run_once()
        assert dispatcher.paused_reason is not None
        assert "RELAY_MAILGUN_API_KEY" in dispatcher.paused_reason
        assert (await outbox.row(sid))["state"] == states.QUEUED
        assert await dispatcher.run_once() == 0
        clock.now += timedelta(seconds=30)
        assert await dispatcher.run_once() == 1
    assert dispatcher.paused_reason is None
    row = await outbox.row(sid)
    assert (row["state"], row["attempts"]) == (states.ACCEPTED, 1)
    assert [(a["outcome"], a["http_status"]) for a in await outbox.attempts(sid)] == [
        ("paused", 401),
        ("accepted", 200),
    ]


async def test_a_crash_between_claim_and_send_is_sent_once_after_the_lease(outbox, clock, mailgun):
    """A worker claimed the row and died before sending: after the lease another sends it."""
    sid = await outbox.add(clock.now)
    lease = timedelta(seconds=outbox.settings.dispatch_lease_seconds)
    await outbox.store.write(db.claim("dead-worker", clock.now, lease, 1))
    route = mailgun.post(URL).respond(200, json=OK)
    async with httpx.AsyncClient() as client:
        dispatcher = Harness(outbox, clock, client).dispatcher
        assert await dispatcher.run_once() == 0
        clock.now += lease
        assert await dispatcher.run_once() == 1
    assert route.call_count == 1
    assert (await outbox.row(sid))["state"] == states.ACCEPTED


async def test_400_fails_the_message_with_mailguns_reason(outbox, clock, mailgun):
    """A 400 from Mailgun fails the message at once, with Mailgun's reason in last_error and one
    failed attempt."""
    sid = await outbox.add(clock.now)
    mailgun.post(URL).respond(400, json={"message": "to parameter is not a valid address"})
    async with httpx.AsyncClient() as client:
        await Harness(outbox, clock, client).dispatcher.run_once()
    row = await outbox.row(sid)
    assert (row["state"], row["last_error"]) == (
        states.FAILED,
        "Mailgun refused the message (400: to parameter is not a valid address)",
    )
    [attempt] = await outbox.attempts(sid)
    assert (attempt["outcome"], attempt["http_status"]) == ("failed", 400)
