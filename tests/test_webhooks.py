"""POST /webhooks/mailgun: verified events reach the delivery log once; the rest get 406."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from relay import states
from relay.store.deliveries import get_delivery, timeline
from relay.store.tables import delivery_events, webhook_tokens
from tests.deliveries_helpers import (
    WEBHOOK_KEY,
    deliver,
    event_data,
    in_flight,
    read,
    signed,
    submit,
)


@pytest.fixture(name="settings")
def fixture_settings(settings_factory: Any) -> Any:
    return settings_factory(mailgun_webhook_signing_key=WEBHOOK_KEY)


def _post(client, payload) -> Any:
    return client.post("/webhooks/mailgun", json=payload)


def _events(client) -> int:
    def query(conn: Connection) -> int:
        return int(conn.execute(select(func.count()).select_from(delivery_events)).scalar_one())

    return int(read(client, query))


@pytest.fixture(name="accepted")
def fixture_accepted(client, clock) -> str:
    sid = submit(client)
    deliver(client)
    return sid


def test_delivered_makes_delivery_final_and_keeps_the_body_for_the_bounce_window(
    client, clock, accepted
):
    """`delivered` answers 200 and marks the submission delivered and final; the body is kept
    for now (a delayed bounce may still make it worth retrying; the purge wipes it later)."""
    clock.now += timedelta(minutes=1)
    response = _post(client, signed(event_data(accepted, "delivered", clock.now), clock.now))
    assert (response.status_code, response.json()) == (200, {"ok": True, "verdict": "recorded"})
    row = read(client, get_delivery(accepted))
    assert (states.DELIVERED, "delivered", clock.now, True) == (
        row.state,
        row.last_event,
        row.final_at,
        row.body_present,
    )
    assert row.body_wiped_at is None
    steps = read(client, timeline(accepted)).steps
    assert [s.what for s in steps] == ["received", "accepted", "delivered"]
    assert "set-cookie" not in response.headers


def test_the_same_event_twice_changes_nothing(client, clock, accepted):
    """A repeated event (same Mailgun id, fresh token) is answered 200 and recorded once."""
    data = event_data(accepted, "delivered", clock.now, event_id="same-id")
    assert _post(client, signed(data, clock.now)).status_code == 200
    second = _post(client, signed(data, clock.now))
    assert (second.status_code, second.json()["verdict"]) == (200, "duplicate")
    assert _events(client) == 1


def test_a_reused_token_is_refused_with_406(client, clock, accepted):
    """The signature covers only timestamp+token, so a token works once; a replay gets 406."""
    payload = signed(event_data(accepted, "accepted", clock.now), clock.now, token="t" * 50)
    assert _post(client, payload).status_code == 200
    forged = dict(payload, **{"event-data": event_data(accepted, "delivered", clock.now)})
    response = _post(client, forged)
    assert (response.status_code, response.json()["error"]) == (406, "replayed")
    assert read(client, get_delivery(accepted)).state == states.ACCEPTED


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (
            lambda p, now: {**p, "signature": {**p["signature"], "signature": "0" * 64}},
            "bad_signature",
        ),
        (lambda p, now: {**p, "signature": None}, "malformed"),
        (lambda p, now: {k: v for k, v in p.items() if k != "event-data"}, "malformed"),
        (lambda p, now: {**p, "event-data": {"event": "delivered"}}, "malformed"),
        (lambda p, now: signed(p["event-data"], now - timedelta(hours=10, seconds=1)), "stale"),
        (lambda p, now: signed(p["event-data"], now + timedelta(minutes=6)), "stale"),
        (lambda p, now: signed(p["event-data"], now, key="another-key"), "bad_signature"),
    ],
)
def test_refused_webhooks_get_406_and_change_nothing(client, clock, accepted, mutate, error):
    """Forged, stale or unreadable webhooks are answered 406 (Mailgun does not retry those)."""
    payload = signed(event_data(accepted, "delivered", clock.now), clock.now)
    response = _post(client, mutate(payload, clock.now))
    assert (406, error) == (response.status_code, response.json()["error"])
    assert (read(client, get_delivery(accepted)).state, _events(client)) == (states.ACCEPTED, 0)


@pytest.mark.parametrize(
    ("body", "error"),
    [(b"{not json", "malformed"), (b"[1, 2]", "malformed"), (b"x" * (300 * 1024), "too_large")],
)
def test_unreadable_bodies_get_406(client, body, error):
    """A body that is not a JSON object (or far too large to be an event) is refused with 406."""
    response = client.post(
        "/webhooks/mailgun", content=body, headers={"Content-Type": "application/json"}
    )
    assert (406, error) == (response.status_code, response.json()["error"])


def test_without_a_signing_key_every_webhook_is_refused(settings_factory, clock):
    """With no RELAY_MAILGUN_WEBHOOK_SIGNING_KEY nothing can be verified, so nothing is taken."""
    from starlette.testclient import TestClient

    from relay.app import create_app

    app = create_app(settings_factory(), clock=clock)
    with TestClient(app) as client:
        payload = signed(event_data("x", "delivered", clock.now), clock.now)
        response = _post(client, payload)
    assert (response.status_code, response.json()["error"]) == (406, "not_configured")


def test_permanent_failure_shows_reason_and_server_message(client, clock, accepted):
    """A permanent failure is final, keeps the body for a retry, and says why."""
    status = {"code": 550, "message": "5.1.1 RESOLVER.ADR.RecipNotFound; not found"}
    data = event_data(
        accepted, "failed", clock.now, severity="permanent", reason="bounce", status=status
    )
    assert _post(client, signed(data, clock.now)).status_code == 200
    row = read(client, get_delivery(accepted))
    assert (row.state, row.last_event, row.retryable) == (states.FAILED, "failed/permanent", True)
    assert row.last_error == "bounce - 550 5.1.1 RESOLVER.ADR.RecipNotFound; not found"


def test_temporary_failure_is_on_the_timeline_and_keeps_waiting(client, clock, accepted):
    """A temporary failure (Mailgun retries) is recorded; the submission stays accepted."""
    status = {"code": 451, "message": "4.7.652 The mail server is busy"}
    data = event_data(
        accepted, "failed", clock.now, severity="temporary", reason="generic", status=status
    )
    assert _post(client, signed(data, clock.now)).status_code == 200
    row = read(client, get_delivery(accepted))
    assert (row.state, row.last_event) == (states.ACCEPTED, "failed/temporary")
    last = read(client, timeline(accepted)).steps[-1]
    assert (
        last.what,
        last.detail,
    ) == ("failed/temporary", "generic - 451 4.7.652 The mail server is busy")


def test_accepted_event_while_the_send_is_in_flight_marks_it_accepted(client, clock):
    """Mailgun's `accepted` for a message still marked sending (its API has not answered yet)
    tells relay Mailgun has it; the late answer finds the lease gone and changes nothing."""
    sid = submit(client)
    with in_flight(client, 503):
        assert read(client, get_delivery(sid)).state == states.SENDING
        response = _post(client, signed(event_data(sid, "accepted", clock.now), clock.now))
        assert response.status_code == 200
    row = read(client, get_delivery(sid))
    assert (row.state, row.last_event, row.last_error) == (states.ACCEPTED, "accepted", None)
    assert [s.what for s in read(client, timeline(sid)).steps] == ["received", "accepted"]


def test_complaint_is_recorded_without_changing_state(client, clock, accepted):
    """`complained` goes on the timeline; the delivery state stays."""
    assert (
        _post(client, signed(event_data(accepted, "complained", clock.now), clock.now)).status_code
        == 200
    )
    row = read(client, get_delivery(accepted))
    assert (row.state, row.last_event) == (states.ACCEPTED, "complained")


def test_event_matched_by_mailgun_message_id(client, clock):
    """Without our custom variable, the event is matched through the id Mailgun answered."""
    sid = submit(client)
    queued = {"id": "<2026.abc@mailgun.org>", "message": "Queued. Thank you."}
    deliver(client, httpx.Response(200, json=queued))
    assert read(client, get_delivery(sid)).provider_message_id == "<2026.abc@mailgun.org>"
    data = event_data(sid, "delivered", clock.now)
    data["user-variables"] = {}
    data["message"] = {"headers": {"message-id": "2026.abc@mailgun.org"}}
    assert _post(client, signed(data, clock.now)).json()["verdict"] == "recorded"
    assert read(client, get_delivery(sid)).state == states.DELIVERED


def test_events_for_unknown_messages_are_acknowledged(client, clock):
    """A verified event about a message relay never sent is answered 200 and not stored."""
    response = _post(client, signed(event_data("0000-none", "delivered", clock.now), clock.now))
    assert (response.status_code, response.json()["verdict"]) == (200, "unmatched")
    assert _events(client) == 0

    def tokens(conn: Connection) -> int:
        return int(conn.execute(select(func.count()).select_from(webhook_tokens)).scalar_one())

    assert read(client, tokens) == 1


def test_store_down_answers_503_so_mailgun_retries(client, clock, accepted):
    """If the event cannot be committed, the answer is 503 (retried), never a false 200."""
    from tests.deliveries_helpers import store

    assert client.portal is not None
    client.portal.call(store(client).writer.stop)
    response = _post(client, signed(event_data(accepted, "delivered", clock.now), clock.now))
    assert response.status_code == 503


def test_each_event_logs_one_line_with_ids_form_and_state(client, clock, accepted, caplog):
    """One log line per webhook event: submission id, form, state; no address."""
    caplog.set_level(logging.INFO, logger="relay")
    _post(client, signed(event_data(accepted, "delivered", clock.now), clock.now))
    lines = [r for r in caplog.records if r.name == "relay.webhooks"]
    assert len(lines) == 1
    fields = {k: getattr(lines[0], k) for k in ("submission_id", "form", "state", "event")}
    assert {
        "submission_id": accepted,
        "form": "contact",
        "state": "delivered",
        "event": "delivered",
    } == fields
    assert "sales@example.com" not in json.dumps(lines[0].__dict__, default=str)


def test_webhook_metrics_count_events_by_type_and_verdict(client, clock, accepted):
    """relay_webhook_events_total counts by event type and verdict."""
    _post(client, signed(event_data(accepted, "delivered", clock.now), clock.now))
    _post(client, {"signature": None})
    text = client.get("/metrics").text
    assert 'relay_webhook_events_total{event="delivered",verdict="recorded"} 1.0' in text
    assert 'relay_webhook_events_total{event="unverified",verdict="refused_malformed"} 1.0' in text
