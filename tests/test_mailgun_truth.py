"""What relay says about a delivery stays true to what Mailgun says, with Mailgun's own payloads.

_source: every payload here comes from tests/fixtures/mailgun (Mailgun's documentation
`source/api-events.rst` @ 32f4121, its OpenAPI @ bethmaloney/mailgun-mock-api bcc509b, and
django-anymail `tests/test_mailgun_webhooks.py` @ 13a0871; see that folder's README.md), at most
retargeted at our submission (message-id, user-variables, time) and signed with the test key.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from relay import states
from relay.app import create_app
from relay.store.deliveries import get_delivery, timeline
from tests.admin_helpers import USERS, Admin
from tests.deliveries_helpers import WEBHOOK_KEY, deliver, read, signed, submit
from tests.mailgun_fixtures import event, load, retarget

DELAYED_BOUNCE_REASON = (
    "generic - 550 5.1.1 smtp; 550-5.1.1 The email account that you tried to reach does not "
    "exist. I'm sorry to have to inform you that your message could not be delivered to one or "
    "more recipients."
)


@pytest.fixture(name="settings")
def fixture_settings(settings_factory: Any) -> Any:
    return settings_factory(mailgun_webhook_signing_key=WEBHOOK_KEY, admin_users=USERS)


@pytest.fixture(name="client")
def fixture_client(settings, clock):
    """Served as localhost, so the admin session cookie works in the same tests."""
    with TestClient(create_app(settings, clock=clock), base_url="http://localhost") as client:
        yield client


@pytest.fixture(name="accepted")
def fixture_accepted(client, clock) -> str:
    sid = submit(client)
    deliver(client)
    return sid


def _post(client, payload) -> Any:
    return client.post("/webhooks/mailgun", json=payload)


def _hook(client, name: str, sid: str, at: datetime, **changes: Any) -> Any:
    data = {**retarget(event(name), sid, at), **changes}
    return _post(client, signed(data, at))


def _delivered_then_bounced(client, clock, sid: str) -> None:
    assert _hook(client, "event_delivered.json", sid, clock.now).json()["verdict"] == "recorded"
    clock.now += timedelta(minutes=20)
    bounce = _hook(client, "event_failed_delayed_bounce.json", sid, clock.now)
    assert (bounce.status_code, bounce.json()["verdict"]) == (200, "recorded")


def test_a_delayed_bounce_moves_a_delivered_submission_to_failed(client, clock, accepted):
    """Mailgun's `failed`/permanent with `is-delayed-bounce` after `delivered` makes the
    submission `failed` with the receiving server's reason, on the timeline, still retryable."""
    _delivered_then_bounced(client, clock, accepted)
    row = read(client, get_delivery(accepted))
    assert (
        row.state,
        row.last_event,
        row.last_error,
        row.retryable,
    ) == (states.FAILED, "failed/permanent", DELAYED_BOUNCE_REASON, True)
    steps = [(s.what, s.detail) for s in read(client, timeline(accepted)).steps]
    assert steps[-2:] == [
        ("delivered", "250 OK"),
        ("failed/permanent", DELAYED_BOUNCE_REASON),
    ]


def test_a_delayed_bounce_is_counted_logged_and_shown_to_admins(client, clock, accepted, caplog):
    """The bounce shows in the metrics, one warning line (no address) and the admin page,
    whose retry sends the kept body again."""
    caplog.set_level(logging.INFO, logger="relay")
    _delivered_then_bounced(client, clock, accepted)
    text = client.get("/metrics").text
    assert 'relay_delayed_bounces_total{source="webhook"} 1.0' in text
    assert 'relay_provider_failures_total{event="failed",source="webhook"} 1.0' in text
    lines = [r for r in caplog.records if r.getMessage() == "delivered, then bounced"]
    assert [(r.submission_id, r.previous_state, r.state) for r in lines] == [
        (accepted, states.DELIVERED, states.FAILED)
    ]
    everything = json.dumps([r.__dict__ for r in caplog.records], default=str)
    assert "christest123@test.com" not in everything
    admin = Admin(client)
    admin.login("vera")
    page = admin.get(f"/admin/deliveries/{accepted}")
    assert ("The email account that you tried to reach does not exist" in page.text) is True
    assert "Retry delivery" in page.text
    admin.post(f"/admin/deliveries/{accepted}/retry")
    assert read(client, get_delivery(accepted)).state == states.QUEUED


def test_a_permanent_failure_without_the_delayed_flag_does_not_undo_delivered(
    client, clock, accepted
):
    """Events arrive out of order: a plain permanent failure (605, suppress-bounce) after
    `delivered` is recorded on the timeline but the submission stays delivered."""
    _hook(client, "event_delivered.json", accepted, clock.now)
    clock.now += timedelta(minutes=1)
    assert _hook(client, "event_failed_permanent.json", accepted, clock.now).status_code == 200
    row = read(client, get_delivery(accepted))
    assert (row.state, row.last_event) == (states.DELIVERED, "failed/permanent")


def test_a_late_delivered_event_does_not_undo_the_bounce(client, clock, accepted):
    """`delivered` arriving after the delayed bounce (reconciliation, out of order) leaves
    the submission failed."""
    clock.now += timedelta(minutes=20)
    assert _hook(client, "event_failed_delayed_bounce.json", accepted, clock.now).status_code == 200
    _hook(client, "event_delivered.json", accepted, clock.now - timedelta(minutes=19))
    assert read(client, get_delivery(accepted)).state == states.FAILED


def test_a_bounce_after_the_body_was_wiped_is_failed_and_says_the_body_is_gone(
    client, clock, accepted
):
    """Past RELAY_DELIVERED_BODY_HOURS the body is wiped; a delayed bounce still makes the
    submission failed (the truth), but a retry answers that nothing is left to send."""
    assert _hook(client, "event_delivered.json", accepted, clock.now).status_code == 200
    delivered_at = clock.now
    hold = timedelta(hours=24)
    clock.now = delivered_at + hold / 2
    deliver(client)  # the dispatcher's pass also wipes settled bodies
    kept = read(client, get_delivery(accepted)).body_present
    clock.now = delivered_at + hold
    deliver(client)
    wiped = not read(client, get_delivery(accepted)).body_present
    assert (kept, wiped) == (True, True)
    clock.now = delivered_at + hold + timedelta(hours=1)
    _hook(client, "event_failed_delayed_bounce.json", accepted, clock.now)
    row = read(client, get_delivery(accepted))
    assert (row.state, row.body_present, row.retryable) == (states.FAILED, False, False)


def test_a_rejection_keeps_mailguns_reason(client, clock, accepted):
    """`rejected` records `reject.reason` (here Mailgun's sandbox refusal), not just "rejected"."""
    assert _hook(client, "events_api_rejected.json", accepted, clock.now).status_code == 200
    row = read(client, get_delivery(accepted))
    assert (row.state, row.last_event) == (states.FAILED, "rejected")
    assert row.last_error == (
        "Sandbox subdomains are for test purposes only. Please add your own domain or add "
        "the address to authorized recipients in Account Settings."
    )


def test_a_failure_without_severity_but_with_retry_seconds_stays_in_flight(client, clock, accepted):
    """The OpenAPI's own `failed` example has no severity and `retry-seconds: 145`: Mailgun is
    still trying, so the submission stays accepted."""
    response = _hook(client, "logs_api_response.json", accepted, clock.now)
    assert (response.status_code, response.json()["verdict"]) == (200, "recorded")
    row = read(client, get_delivery(accepted))
    assert (row.state, row.last_event) == (states.ACCEPTED, "failed/temporary")


def test_the_same_failure_without_retry_seconds_is_final(client, clock, accepted):
    """Without severity and without retry-seconds, a `failed` event is taken as permanent."""
    data = retarget(event("logs_api_response.json"), accepted, clock.now)
    del data["delivery-status"]["retry-seconds"]
    assert _post(client, signed(data, clock.now)).status_code == 200
    assert read(client, get_delivery(accepted)).state == states.FAILED


def test_event_ids_are_unique_per_day_not_forever(client, clock, accepted):
    """The same Mailgun id on the same day is a duplicate; the same id a day later is new."""
    first = _hook(client, "event_failed_temporary.json", accepted, clock.now)
    clock.now += timedelta(hours=1)
    again = _hook(client, "event_failed_temporary.json", accepted, clock.now)
    clock.now += timedelta(days=1)
    next_day = _hook(client, "event_failed_temporary.json", accepted, clock.now)
    verdicts = [r.json()["verdict"] for r in (first, again, next_day)]
    assert verdicts == ["recorded", "duplicate", "recorded"]
    events = [s for s in read(client, timeline(accepted)).steps if s.kind == "event"]
    assert len(events) == 2


def test_anymails_recorded_delivered_webhook_verifies_as_sent(settings, clock):
    """The complete delivered webhook anymail recorded, signature and all, is accepted at its
    own time (for a message relay did not send: 200 `unmatched`) and refused ten hours on."""
    clock.now = datetime.fromtimestamp(1534108637, UTC)
    with TestClient(create_app(settings, clock=clock)) as client:
        payload = load("webhook_delivered_signed.json")
        fresh = _post(client, payload)
        clock.now += timedelta(hours=10, seconds=1)
        stale = _post(client, load("webhook_delivered_signed.json"))
    assert (fresh.status_code, fresh.json()["verdict"]) == (200, "unmatched")
    assert (stale.status_code, stale.json()["error"]) == (406, "stale")


@pytest.mark.parametrize("late", [timedelta(minutes=5), timedelta(hours=4), timedelta(hours=8)])
def test_mailguns_retries_are_accepted_across_its_whole_schedule(client, clock, accepted, late):
    """A webhook answered 503 (store down) is retried by Mailgun with its original signed
    timestamp up to ~8 h later; that retry is accepted and the event recorded."""
    signed_at = clock.now
    payload = signed(retarget(event("event_delivered.json"), accepted, signed_at), signed_at)
    clock.now = signed_at + late
    response = _post(client, payload)
    assert (response.status_code, response.json()["verdict"]) == (200, "recorded")
    assert read(client, get_delivery(accepted)).state == states.DELIVERED


def test_a_late_retry_is_recorded_once_and_its_token_stays_single_use(client, clock, accepted):
    """Mailgun's retry 4 h after the signed time is taken; the same signature block once more,
    even with another event attached, is a replay (406) for as long as the window lasts."""
    signed_at = clock.now
    payload = signed(retarget(event("event_delivered.json"), accepted, signed_at), signed_at)
    clock.now = signed_at + timedelta(hours=4)
    assert _post(client, payload).json()["verdict"] == "recorded"
    clock.now = signed_at + timedelta(hours=9, minutes=59)
    forged = {
        **payload,
        "event-data": retarget(event("events_api_rejected.json"), accepted, clock.now),
    }
    replay = _post(client, forged)
    assert (replay.status_code, replay.json()["error"]) == (406, "replayed")
    assert read(client, get_delivery(accepted)).state == states.DELIVERED


def test_the_housekeeper_wipes_delivered_bodies_after_the_bounce_window(settings_factory, clock):
    """Without any dispatcher running, the Housekeeper wipes a delivered body once
    RELAY_DELIVERED_BODY_HOURS have passed since delivery, not before, and counts it."""
    settings = settings_factory(
        mailgun_webhook_signing_key=WEBHOOK_KEY, dispatch_in_serve=False, delivered_body_hours=6
    )
    delivered_at = clock.now
    with TestClient(create_app(settings, clock=clock)) as client:
        sid = submit(client)
        deliver(client)
        assert _hook(client, "event_delivered.json", sid, clock.now).status_code == 200
    clock.now = delivered_at + timedelta(hours=6) - timedelta(seconds=1)
    with TestClient(create_app(settings, clock=clock)) as client:
        assert read(client, get_delivery(sid)).body_present is True
    clock.now = delivered_at + timedelta(hours=6)
    with TestClient(create_app(settings, clock=clock)) as client:
        row = read(client, get_delivery(sid))
        metrics = client.get("/metrics").text
    assert (row.state, row.body_present, row.body_wiped_at) == (
        states.DELIVERED,
        False,
        clock.now,
    )
    assert 'relay_purged_total{kind="delivered_bodies"} 1.0' in metrics
