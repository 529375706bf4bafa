"""Alerts reach a person: email through the transport and JSON to a webhook (issue 12).

The app runs as `relay serve` does, with a FakeTransport (the network edge) and the fake
clock; the alerts watch looks every few milliseconds. respx stands in for the webhook.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx
from starlette.testclient import TestClient

from relay.app import create_app
from relay.mail.transport import Accepted, CredentialsRejected, Failed, RenderedEmail, SendResult
from relay.ops.alerts import Alerter
from relay.store import Store
from tests.fakes import FakeTransport
from tests.helpers import VALID, post_json

HOOK = "https://hooks.example.com/relay"
ALERTS = "ops@example.com"


class Transport(FakeTransport):
    """The fake transport, with the script applying to submissions only: alerts are accepted."""

    async def send(self, email: RenderedEmail) -> SendResult:
        if email.to == (ALERTS,) and self.gate is None:
            self.sent.append(email)
            return Accepted(f"<{email.submission_id}@fake>")
        return await super().send(email)


def wait_for(predicate: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Until the alerts watch (its own task, every few ms) has done something: a bounded poll,
    since the watch exposes no event."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def alert_settings(settings_factory: Any, **overrides: Any) -> Any:
    values = {
        "dispatch_in_serve": True,
        "dispatch_poll_seconds": 0.01,
        "alert_check_seconds": 0.01,
        "alert_email": ALERTS,
        "public_url": "https://forms.example.com",
    }
    return settings_factory(**(values | overrides))


def alert_emails(transport: FakeTransport) -> list[Any]:
    return [e for e in transport.sent if e.to == (ALERTS,)]


def hook_bodies(route: respx.Route) -> list[dict[str, Any]]:
    return [json.loads(call.request.content) for call in route.calls]


def test_a_failed_submission_is_emailed_without_personal_data(settings_factory, clock):
    """A submission Mailgun refuses for good makes one alert email to RELAY_ALERT_EMAIL with its
    id, form, state, reason and a link to /admin, and nothing the person typed."""
    transport = Transport([Failed(400, "Mailgun refused the message (400: bad header)")])
    settings = alert_settings(settings_factory)
    with TestClient(
        create_app(settings, clock=clock, transport=transport), base_url="http://localhost"
    ) as client:
        sid = post_json(client).json()["id"]
        assert wait_for(lambda: len(alert_emails(transport)) == 1)
    email = alert_emails(transport)[0]
    assert email.subject == "[relay] ALERT: 1 submission not delivered"
    assert f"- {sid}  contact  failed  Mailgun refused the message (400: bad header)" in email.text
    assert f"https://forms.example.com/admin/deliveries/{sid}" in email.text
    assert email.form_id == "relay-alerts"
    for value in VALID.values():
        for part in value.split("\n"):
            assert part not in email.text + email.html + email.subject


def test_an_outage_sends_one_grouped_message_then_one_more(settings_factory, clock):
    """Twelve submissions refused in a row: one alert at once; the rest wait for the repeat
    interval and come together in a second one."""
    transport = Transport([Failed(400, "refused")] * 12)
    settings = alert_settings(settings_factory)
    with TestClient(
        create_app(settings, clock=clock, transport=transport), base_url="http://localhost"
    ) as client:
        for _ in range(12):
            post_json(client)
        assert wait_for(lambda: len(transport.sent) >= 13)
        assert wait_for(lambda: len(alert_emails(transport)) == 1)
        listed_first = alert_emails(transport)[0].text.count("  contact  failed  ")
        clock.now += timedelta(minutes=31)
        assert wait_for(lambda: len(alert_emails(transport)) == 2)
        listed_second = alert_emails(transport)[1].text.count("  contact  failed  ")
    assert listed_first + listed_second == 12
    assert len(alert_emails(transport)) == 2


def test_dispatch_paused_alerts_by_email_and_webhook_then_resolves(settings_factory, clock):
    """Mailgun refusing the key pauses dispatch: an alert by email and webhook; once a probe
    succeeds, a "resolved" message by both."""
    transport = Transport([CredentialsRejected(401, "Mailgun refused the API key (401)")])
    settings = alert_settings(settings_factory, alert_webhook_url=HOOK)
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(HOOK).mock(return_value=httpx.Response(204))
        with TestClient(
            create_app(settings, clock=clock, transport=transport), base_url="http://localhost"
        ) as client:
            post_json(client)
            assert wait_for(lambda: len(alert_emails(transport)) == 1)
            clock.now += timedelta(hours=1)  # the pause is over: the next probe is accepted
            assert wait_for(lambda: any("RESOLVED: dispatch" in e.subject for e in transport.sent))
            assert wait_for(
                lambda: (
                    [b["status"] for b in hook_bodies(route) if b["condition"] == "dispatch_paused"]
                    == ["firing", "resolved"]
                )
            )
    subjects = [e.subject for e in alert_emails(transport)]
    assert subjects[0] == "[relay] ALERT: dispatch paused: Mailgun refuses the configuration"
    assert any(s.startswith("[relay] RESOLVED: dispatch paused") for s in subjects)
    bodies = [b for b in hook_bodies(route) if b["condition"] == "dispatch_paused"]
    assert [b["status"] for b in bodies] == ["firing", "resolved"]
    assert bodies[0]["reason"] == "Mailgun refused the API key (401)"
    assert bodies[0]["admin"] == "https://forms.example.com/admin"


def test_the_webhook_alone_is_enough(settings_factory, clock):
    """Without RELAY_ALERT_EMAIL the webhook still gets the alert, and no email is sent."""
    transport = Transport([Failed(400, "refused")])
    settings = alert_settings(settings_factory, alert_email=None, alert_webhook_url=HOOK)
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(HOOK).mock(return_value=httpx.Response(200))
        with TestClient(
            create_app(settings, clock=clock, transport=transport), base_url="http://localhost"
        ) as client:
            sid = post_json(client).json()["id"]
            assert wait_for(lambda: len(route.calls) == 1)
    (body,) = hook_bodies(route)
    assert body["submissions"][0]["id"] == sid
    assert body["submissions"][0]["state"] == "failed"
    assert body["submissions"][0]["link"].endswith(f"/admin/deliveries/{sid}")
    assert len(transport.sent) == 1  # the submission itself, no alert email


def test_a_stale_queue_alerts_and_resolves(settings_factory, clock):
    """A send that hangs past the readiness threshold alerts; once it is through, resolved."""
    transport = FakeTransport()
    transport.gate = asyncio.Event()
    settings = alert_settings(settings_factory)
    with TestClient(
        create_app(settings, clock=clock, transport=transport), base_url="http://localhost"
    ) as client:
        post_json(client)
        clock.now += timedelta(seconds=settings.ready_max_queue_age_seconds + 60)
        assert wait_for(lambda: transport.started >= 2)  # the alert email waits at the gate too
        client.portal.call(transport.gate.set)  # type: ignore[union-attr]
        assert wait_for(lambda: len(alert_emails(transport)) == 2)
    subjects = [e.subject for e in alert_emails(transport)]
    assert subjects[0] == "[relay] ALERT: messages waiting too long to be sent"
    assert subjects[1].startswith("[relay] RESOLVED: messages waiting too long")
    assert (
        "the oldest waiting message is 960 s old (limit 900 s)" in alert_emails(transport)[0].text
    )


def test_an_unreachable_webhook_or_transport_never_stops_relay(settings_factory, clock, caplog):
    """The webhook down and the alert email refused: both are logged, relay keeps serving."""
    transport = FakeTransport([Failed(400, "refused"), Failed(400, "refused as well")])
    settings = alert_settings(settings_factory, alert_webhook_url=HOOK)
    with respx.mock(assert_all_called=True) as mock:
        mock.post(HOOK).mock(side_effect=httpx.ConnectError("down"))
        with TestClient(
            create_app(settings, clock=clock, transport=transport), base_url="http://localhost"
        ) as client:
            post_json(client)
            assert wait_for(lambda: "alert webhook not reached" in caplog.text)
            assert wait_for(lambda: "alert email not sent" in caplog.text)
            assert client.get("/healthz").status_code == 200


@pytest.mark.anyio
async def test_retention_and_reconciliation_failures_alert(settings, clock):
    """The Housekeeper's and reconciliation's last errors become alerts, and resolve."""

    class Task:
        last_error: str | None = None

    housekeeper, reconciler = Task(), Task()
    transport = FakeTransport()
    store = await Store.from_settings(
        settings.model_copy(update={"alert_email": ALERTS}), create=True
    )
    alerter = Alerter(
        settings.model_copy(update={"alert_email": ALERTS}),
        store,
        transport,
        clock=clock,
        sender="relay@relay.localhost",
        domain="relay.localhost",
        housekeeper=housekeeper,
        reconciler=reconciler,
    )
    try:
        await alerter.start()
        housekeeper.last_error = "cannot purge (StoreUnavailable)"
        reconciler.last_error = "Mailgun refused the read key (HTTP 401)"
        fired = await alerter.check_once()
        housekeeper.last_error = reconciler.last_error = None
        resolved = await alerter.check_once()
    finally:
        await alerter.stop()
        await store.close()
    assert sorted((a.condition, a.reason) for a in fired) == [
        ("housekeeping_failed", "cannot purge (StoreUnavailable)"),
        ("reconciliation_failed", "Mailgun refused the read key (HTTP 401)"),
    ]
    assert sorted(a.status for a in resolved) == ["resolved", "resolved"]
    assert len(transport.sent) == 4


@pytest.fixture(name="anyio_backend")
def fixture_anyio_backend() -> str:
    return "asyncio"


class Raising(FakeTransport):
    """A transport with a bug: it raises instead of answering."""

    async def send(self, email: RenderedEmail) -> SendResult:
        raise RuntimeError(email.submission_id)


class Broken:
    """A dispatcher stand-in whose state cannot be read: a bug in one check."""

    @property
    def paused_reason(self) -> str | None:
        raise RuntimeError("bug")


@pytest.mark.anyio
async def test_a_bug_in_a_check_or_the_transport_is_logged_and_the_watch_goes_on(
    settings, clock, caplog
):
    """A transport that raises and a check that crashes are logged by class; the watch runs on,
    and a webhook answering 500 is logged as refused."""
    alerted = settings.model_copy(
        update={"alert_email": ALERTS, "alert_webhook_url": HOOK, "alert_check_seconds": 0.01}
    )
    store = await Store.from_settings(alerted, create=True)

    class Task:
        last_error: str | None = "cannot purge"

    broken = Alerter(
        alerted, store, Raising(), clock=clock, sender="r@x", domain="x", dispatcher=Broken()
    )
    raising = Alerter(
        alerted, store, Raising(), clock=clock, sender="r@x", domain="x", housekeeper=Task()
    )
    try:
        with respx.mock(assert_all_called=True) as mock:
            mock.post(HOOK).mock(return_value=httpx.Response(500))
            await broken.start()
            await raising.start()
            for _ in range(200):
                if "alert check failed" in caplog.text and "alert webhook refused" in caplog.text:
                    break
                await asyncio.sleep(0.01)
    finally:
        await broken.stop()
        await raising.stop()
        await store.close()
    assert "alert check failed" in caplog.text
    assert "alert email not sent" in caplog.text
    assert "alert webhook refused" in caplog.text
    assert [a.condition for a in raising.sent] == ["housekeeping_failed"]


@pytest.mark.anyio
async def test_the_database_down_is_logged_and_conditions_still_seen(settings, clock, caplog):
    """With the database closed, the check says it cannot read it and still alerts on the
    dispatcher's pause, which needs no database."""

    class Dispatcher:
        paused_reason: str | None = "Mailgun refused the API key (401)"

    store = await Store.from_settings(settings, create=True)
    await store.engine.dispose()
    alerter = Alerter(
        settings,
        store,
        FakeTransport(),
        clock=clock,
        sender="r@x",
        domain="x",
        dispatcher=Dispatcher(),
    )
    from sqlalchemy.ext.asyncio import create_async_engine

    store.engine = create_async_engine("sqlite+aiosqlite:////nonexistent/dir/relay.db")
    try:
        fired = await alerter.check_once()
    finally:
        await store.close()
    assert "alert check cannot read the database" in caplog.text
    assert [a.condition for a in fired] == ["dispatch_paused"]


def test_the_email_counts_failures_not_listed(settings):
    """Past the listed ids, the email says how many more there are."""
    from relay.ops.alert_policy import Alert, Failure
    from relay.ops.alerts import payload, text_of

    alert = Alert(
        "firing",
        "submissions_failed",
        "25 submissions not delivered",
        failures=(Failure("id-1", "contact", "dead", None),),
        more=24,
    )
    text = text_of(payload(alert, settings, clock_now()))
    assert "- id-1  contact  dead  -\n  /admin/deliveries/id-1" in text
    assert "- and 24 more" in text


def clock_now() -> Any:
    from datetime import UTC, datetime

    return datetime(2026, 11, 26, tzinfo=UTC)
