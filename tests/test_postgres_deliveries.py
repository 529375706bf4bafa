"""The delivery log on PostgreSQL: webhooks, retry, counts and reconciliation (real server)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from relay import states
from relay.app import create_app
from relay.store.deliveries import get_delivery, requeue, timeline
from relay.store.delivery_stats import counts_by_state
from tests.deliveries_helpers import WEBHOOK_KEY, deliver, event_data, read, signed, submit, write

pytestmark = pytest.mark.postgres


def test_webhooks_and_retry_on_postgresql(settings_factory, postgres_url, clock):
    """Events are recorded once, delivered keeps the body for the bounce window, a failure
    can be requeued."""
    settings = settings_factory(
        database_url=postgres_url, auto_migrate=True, mailgun_webhook_signing_key=WEBHOOK_KEY
    )
    with TestClient(create_app(settings, clock=clock), base_url="http://relay.test") as client:
        ok, bad = submit(client), submit(client, "quote")
        deliver(client)
        clock.now += timedelta(minutes=2)
        delivered = event_data(ok, "delivered", clock.now, event_id="pg-1")
        failed = event_data(bad, "failed", clock.now, severity="permanent", reason="bounce")
        verdicts = [
            client.post("/webhooks/mailgun", json=signed(data, clock.now)).json()["verdict"]
            for data in (delivered, delivered, failed)
        ]
        assert verdicts == ["recorded", "duplicate", "recorded"]
        row = read(client, get_delivery(ok))
        assert (row.state, row.body_present) == (states.DELIVERED, True)
        assert write(client, requeue(bad, clock.now, actor="test")).outcome == "requeued"
        assert [s.what for s in read(client, timeline(bad)).steps][-1] == "requeued"
        counts = read(client, counts_by_state(clock.now))
        assert (counts["24h"]["delivered"], counts["7d"]["queued"]) == (1, 1)
