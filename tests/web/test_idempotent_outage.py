"""An idempotent submission during a database outage: 503 with Retry-After, never a 500."""

from __future__ import annotations

import sqlite3

from starlette.testclient import TestClient

from relay.app import create_app
from tests.helpers import ORIGIN, VALID


def test_the_idempotency_lookup_failing_answers_503_with_retry_after(settings_factory, clock):
    """When the database cannot answer the Idempotency-Key lookup, the client hears 503 with
    Retry-After and STORE_UNAVAILABLE (like any other store failure), not a 500."""
    settings = settings_factory(dispatch_in_serve=False)
    headers = {"Accept": "application/json", "Origin": ORIGIN, "Idempotency-Key": "k-1"}
    app = create_app(settings, clock=clock)
    with TestClient(app, base_url="http://relay.test", raise_server_exceptions=False) as client:
        with sqlite3.connect(settings.var_dir / "relay.db") as con:
            con.execute("ALTER TABLE idempotency_keys RENAME TO idempotency_keys_gone")
        refused = client.post("/f/contact", json=VALID, headers=headers)
    assert (refused.status_code, refused.headers.get("retry-after")) == (503, "5")
    assert refused.json()["errors"][0]["code"] == "STORE_UNAVAILABLE"
