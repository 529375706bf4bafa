"""A whole run seeded with canary personal data leaves none of it in logs, metrics or the log.

Accept (and refuse) submissions, move them through Mailgun's events by webhook, retry one
from the admin pages, look the person up as the DPO, list and show from the CLI, scrape
/metrics — then search every log line, the metrics, the CLI output, the delivery log and audit
tables, and the raw database files for the canaries.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Connection
from starlette.testclient import TestClient

from relay import states
from relay.app import create_app
from relay.logs import JsonFormatter
from relay.store.tables import audit_log, delivery_attempts, delivery_events, submissions
from tests.admin_helpers import USERS, Admin
from tests.conftest import invoke
from tests.deliveries_helpers import WEBHOOK_KEY, deliver, event_data, read, signed
from tests.helpers import post_form, post_json

CANARY: dict[str, Any] = {
    "name": "Quentin Canarywood",
    "email": "quentin.canary7x@canary-mail.example",
    "phone": "+33 6 47 11 92 38",
    "company": "Canarycorp Zeta",
    "message": "Canary message xyzzy-42, please call back",
}
NEEDLES = [
    "canarywood",
    "canary7x",
    "canary-mail",
    "canarycorp",
    "xyzzy-42",
    "647119238",
    "47 11 92 38",
]


@pytest.fixture(name="settings")
def fixture_settings(settings_factory: Any) -> Any:
    return settings_factory(admin_users=USERS, mailgun_webhook_signing_key=WEBHOOK_KEY)


@pytest.fixture(name="client")
def fixture_client(settings, clock) -> Iterator[TestClient]:
    with TestClient(create_app(settings, clock=clock), base_url="http://localhost") as client:
        yield client


@pytest.fixture(name="captured")
def fixture_captured() -> Iterator[io.StringIO]:
    """Every relay log record, as the JSON lines production writes."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("relay")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def _assert_clean(where: str, text: str) -> None:
    lowered = text.lower()
    found = [n for n in NEEDLES if n in lowered]
    assert found == [], f"personal data in {where}: {found}"


def test_a_whole_run_leaks_no_personal_data(client, clock, cli, settings, captured):
    """Through accepts, refusals, webhooks, admin pages and CLI output, no canary personal data
    reaches logs, metrics, CLI output, the delivery log or the database files, while ids
    still link the records."""
    delivered = post_json(client, **CANARY).json()["id"]
    failed = post_json(client, "quote", **CANARY).json()["id"]
    post_json(client, **{**CANARY, "email": "canary7x-not-an-email"}, expect=422)
    post_form(client, **{**CANARY, "message": ""}, expect=422)
    mailgun = deliver(client)
    assert len(mailgun.requests) == 2  # the network edge is the one place the data goes
    clock.now += timedelta(minutes=1)
    server_says = {"code": 550, "message": f"5.1.1 <{CANARY['email']}>: unknown"}
    for data in (
        event_data(delivered, "accepted", clock.now),
        event_data(delivered, "delivered", clock.now, status={"code": 250, "message": "OK"}),
        event_data(
            failed, "failed", clock.now, severity="permanent", reason="bounce", status=server_says
        ),
    ):
        assert client.post("/webhooks/mailgun", json=signed(data, clock.now)).status_code == 200

    dpo = Admin(client)
    dpo.login("diane")
    dpo.get("/admin/deliveries")
    dpo.get(f"/admin/deliveries/{failed}")
    dpo.post(f"/admin/deliveries/{failed}/retry")
    dpo.post("/admin/prospects", {"email": CANARY["email"]}, expect=200)

    outputs = [
        invoke(cli, "deliveries", "--json").output,
        invoke(cli, "deliveries").output,
        invoke(cli, "deliveries", "show", failed, "--json").output,
        invoke(cli, "deliveries", "show", delivered).output,
    ]
    metrics = client.get("/metrics").text

    def tables(conn: Connection) -> str:
        rows: list[Any] = []
        for table in (audit_log, delivery_events, delivery_attempts):
            rows += [dict(r) for r in conn.execute(select(table)).mappings()]
        cols = [c for c in submissions.c if c.name != "body_enc"]
        rows += [dict(r) for r in conn.execute(select(*cols)).mappings()]
        return json.dumps(rows, default=str)

    assert read(client, tables).count(failed) >= 1
    assert (
        read(
            client,
            lambda c: c.execute(
                select(submissions.c.state).where(submissions.c.id == delivered)
            ).scalar(),
        )
        == states.DELIVERED
    )

    logs = captured.getvalue()
    assert '"submission_id": "' + delivered in logs
    _assert_clean("logs", logs)
    _assert_clean("metrics", metrics)
    _assert_clean("CLI output", "\n".join(outputs))
    _assert_clean("delivery log and audit tables", read(client, tables))
    raw = b"".join(p.read_bytes() for p in settings.var_dir.glob("relay.db*"))
    _assert_clean("database files", raw.decode("latin-1"))
