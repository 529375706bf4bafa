"""Test helpers for the delivery log: submit through the app, move rows, sign webhooks.

The dispatcher belongs to another issue; these helpers put rows into the states a test needs
by writing through the app's own Store, as the dispatcher would.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.engine import Connection
from starlette.testclient import TestClient

from relay.mail.events import signature_for
from relay.store import Store
from relay.store.tables import delivery_attempts, submissions
from tests.helpers import post_json

WEBHOOK_KEY = "TEST_WEBHOOK_SIGNING_KEY"
DOMAIN = "mg.example.com"


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


def set_row(client: TestClient, submission_id: str, **values: Any) -> None:
    """Move a submission as the dispatcher would (state, attempts, provider id, …)."""

    def job(conn: Connection) -> int:
        query = update(submissions).where(submissions.c.id == submission_id).values(**values)
        return int(conn.execute(query).rowcount)

    assert write(client, job) == 1, f"no submission {submission_id} to move"


def sent(client: TestClient, submission_id: str, at: datetime, **extra: Any) -> None:
    """Mailgun took it: an attempt with HTTP 200 and the state `accepted`."""
    add_attempt(client, submission_id, at, "sent", 200)
    values = {
        "state": "accepted",
        "attempts": 1,
        "first_attempt_at": at,
        "provider_message_id": f"<{submission_id}@{DOMAIN}>",
        "next_attempt_at": None,
        "updated_at": at,
    }
    set_row(client, submission_id, **{**values, **extra})


def add_attempt(
    client: TestClient,
    submission_id: str,
    at: datetime,
    outcome: str,
    status: int | None,
    error: str | None = None,
) -> None:
    def job(conn: Connection) -> None:
        conn.execute(
            insert(delivery_attempts).values(
                submission_id=submission_id,
                attempted_at=at,
                outcome=outcome,
                http_status=status,
                duration_ms=120,
                error=error,
            )
        )

    write(client, job)


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
