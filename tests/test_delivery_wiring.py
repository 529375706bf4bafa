"""The delivery stack as `relay serve` runs it: Mailgun send, Logs API lookup, metrics.

respx mocks at the httpx client (`using="httpx"`): the sending client's transport is
relay.mail.http's (tests/mail/test_http.py drives it against real local servers).
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import respx
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

from relay.app import create_app
from tests.deliveries_helpers import drained
from tests.helpers import post_json
from tests.test_delivery_app import state_of

BASE = "https://api.eu.mailgun.net"
DOMAIN = "mg.example.com"


def outcomes(settings, submission_id: str) -> list[str]:
    engine = create_engine(f"sqlite:///{settings.var_dir / 'relay.db'}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT outcome FROM delivery_attempts WHERE submission_id = :id ORDER BY id"),
                {"id": submission_id},
            )
            return [r[0] for r in rows]
    finally:
        engine.dispose()


def test_after_an_ambiguous_timeout_the_logs_api_prevents_a_duplicate(settings_factory, clock):
    """A send that timed out after leaving is not sent again when Mailgun's Logs API (asked
    with RELAY_MAILGUN_READ_KEY) says it already has the message: it becomes `accepted`."""
    settings = settings_factory(
        mailgun_api_key="key-send-test",
        mailgun_domain=DOMAIN,
        mailgun_read_key="key-read-test",
        dispatch_in_serve=True,
        dispatch_backoff_base_seconds=1,
    )
    sid = ""
    with respx.mock(base_url=BASE, assert_all_called=True, using="httpx") as mailgun:
        send = mailgun.post(f"/v3/{DOMAIN}/messages").mock(
            side_effect=httpx.ReadTimeout("no answer")
        )
        logs = mailgun.post("/v1/analytics/logs").mock(
            side_effect=lambda request: httpx.Response(
                200,
                json={
                    "items": [
                        {
                            "id": "ev-1",
                            "event": "accepted",
                            "@timestamp": clock.now.isoformat(),
                            "message": {"headers": {"message-id": f"{sid}@{DOMAIN}"}},
                        }
                    ],
                    "pagination": {},
                },
            )
        )
        app = create_app(settings, clock=clock)
        with TestClient(app, base_url="http://relay.test") as client:
            sid = post_json(client).json()["id"]
            drained(client)
            assert (send.call_count, outcomes(settings, sid)) == (1, ["ambiguous"])
            clock.now += timedelta(hours=1)  # the retry is due
            drained(client)
            assert state_of(settings, sid) == "accepted"
            metrics = client.get("/metrics").text
    assert send.call_count == 1
    assert logs.call_count >= 1
    assert outcomes(settings, sid) == ["ambiguous", "found"]
    assert 'relay_mailgun_request_duration_seconds_count{operation="send",outcome="retry"} 1.0' in (
        metrics
    )


def test_purge_counts_reach_the_metrics(settings_factory, clock):
    """The Housekeeper's purge at start is counted in relay_purged_total, by kind."""
    settings = settings_factory(dispatch_in_serve=False)
    with TestClient(create_app(settings, clock=clock), base_url="http://relay.test") as client:
        post_json(client)
    clock.now += timedelta(days=settings.body_retention_days + 1)
    with TestClient(create_app(settings, clock=clock), base_url="http://relay.test") as client:
        metrics = client.get("/metrics").text
    assert 'relay_purged_total{kind="bodies_wiped"} 1.0' in metrics
