"""`relay send-test`: a marked test message through the real transport, and Mailgun's verdict.

respx stands in for Mailgun (Messages and Logs APIs), at the httpx client (`using="httpx"`:
the sending client's transport is relay.mail.http's, not httpcore's); without a key the file
transport runs.
Mailgun's answers are those its docs and relay.mail.mailgun name: `{"id", "message"}` on
200, `{"message": "Domain not found: …"}` on a wrong-region 404, plain `Forbidden` on 401,
and the 403 "not allowed to send: The domain is unverified" text; the Logs API items have the
shape of Mailgun's OpenAPI (as in tests/test_reconcile.py), and the delivered event carries
Microsoft 365's documented "Queued mail for delivery" answer from *.mail.protection.outlook.com.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email import message_from_bytes
from typing import Any

import httpx
import pytest
import respx

from tests.conftest import invoke
from tests.privacy.support import rows

BASE = "https://api.eu.mailgun.net"
DOMAIN = "mg.example.com"
MESSAGES = f"{BASE}/v3/{DOMAIN}/messages"
LOGS = f"{BASE}/v1/analytics/logs"
M365_OK = (
    "2.6.0 <0192@mg.example.com> [InternalId=1234, Hostname=PR3P192MB0001.EURP192.PROD.OUTLOOK.COM]"
    " 10433 bytes in 0.120, 84.647 KB/sec Queued mail for delivery"
)


@pytest.fixture(name="mailgun")
def fixture_mailgun(cli: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The CLI configured for Mailgun EU with a sending key and a read key."""
    monkeypatch.setenv("RELAY_MAILGUN_API_KEY", "key-sending-test")
    monkeypatch.setenv("RELAY_MAILGUN_DOMAIN", DOMAIN)
    monkeypatch.setenv("RELAY_MAILGUN_READ_KEY", "key-read-test")
    return cli


def sid_of(request: httpx.Request) -> str:
    value = json.loads(request.content)["filter"]["AND"][0]["values"][0]["value"]
    return str(value).split("@", 1)[0]


def logs_answer(*events: tuple[str, dict[str, Any]]) -> Any:
    """A Logs API that reports `events` (name, extra fields) for whatever message is asked."""

    def answer(request: httpx.Request) -> httpx.Response:
        sid = sid_of(request)
        now = datetime.now(UTC).isoformat()
        items = [
            {
                "id": f"{name}-{sid}",
                "event": name,
                "@timestamp": now,
                "message": {"headers": {"message-id": f"{sid}@{DOMAIN}"}},
                "user-variables": {"submission_id": sid},
                **extra,
            }
            for name, extra in events
        ]
        return httpx.Response(200, json={"items": items, "pagination": {}})

    return answer


def test_delivered_to_microsoft_365_is_reported_and_logged_as_a_test(mailgun, settings):
    """Accepted, then delivered by Microsoft 365's MX (from the Logs API): the command says
    so, the delivery log holds it as a test row, and no prospect is created."""
    with respx.mock(assert_all_called=True, using="httpx") as mock:
        sent = mock.post(MESSAGES).mock(
            return_value=httpx.Response(200, json={"id": "<x@mg>", "message": "Queued. Thank you."})
        )
        mock.post(LOGS).mock(
            side_effect=logs_answer(
                ("accepted", {}),
                ("delivered", {"delivery-status": {"code": 250, "message": M365_OK}}),
            )
        )
        result = invoke(mailgun, "send-test", "--form", "contact", "--timeout", "5")
    assert "delivered to Microsoft 365" in result.output
    assert "Queued mail for delivery" in result.output
    body = sent.calls[0].request.content
    assert b"[TEST] Contact" in body
    assert b"TEST MESSAGE sent by `relay send-test`" in body
    assert b"sales@example.com" in body
    log = rows(
        settings.var_dir, "SELECT form_id, state, test, body_enc, subject_mac FROM submissions"
    )
    assert log == [("contact", "delivered", 1, None, None)]
    assert rows(settings.var_dir, "SELECT count(*) FROM prospects") == [(0,)]


@pytest.mark.parametrize(
    ("status", "answer", "expected"),
    [
        (404, {"message": f"Domain not found: {DOMAIN}"}, "wrong region"),
        (401, "Forbidden", "wrong key kind"),
        (
            403,
            {
                "message": f"Domain {DOMAIN} is not allowed to send: The domain is unverified "
                "and requires DNS configuration. Log in to your control panel to view required "
                "DNS records."
            },
            "unverified domain",
        ),
    ],
)
def test_common_set_up_mistakes_get_their_fix(mailgun, settings, status, answer, expected):
    """Wrong region, wrong key kind and an unverified domain each say what to change; the
    test row is marked failed and the command exits 1."""
    response = (
        httpx.Response(status, json=answer)
        if isinstance(answer, dict)
        else httpx.Response(status, text=answer)
    )
    with respx.mock(assert_all_called=True, using="httpx") as mock:
        mock.post(MESSAGES).mock(return_value=response)
        result = invoke(mailgun, "send-test", "--form", "contact", expect=1)
    assert "refused by Mailgun" in result.output
    assert f"fix: {expected}" in result.output
    assert rows(settings.var_dir, "SELECT state, test FROM submissions") == [("failed", 1)]


def test_a_bounce_from_microsoft_365_says_why(mailgun):
    """A permanent failure reported by the Logs API is printed with Microsoft 365's reason."""
    status = {"code": 550, "message": "5.1.10 RESOLVER.ADR.RecipientNotFound; not found"}
    failed = {"severity": "permanent", "reason": "bounce", "delivery-status": status}
    with respx.mock(assert_all_called=True, using="httpx") as mock:
        mock.post(MESSAGES).mock(return_value=httpx.Response(200, json={"id": "<x@mg>"}))
        mock.post(LOGS).mock(side_effect=logs_answer(("failed", failed)))
        result = invoke(mailgun, "send-test", "--form", "contact", "--timeout", "5", expect=1)
    assert "not delivered:" in result.output
    assert "RecipientNotFound" in result.output
    assert "fix: Microsoft 365 refused the message" in result.output


def test_no_verdict_in_time_says_how_to_get_one(mailgun, monkeypatch):
    """Accepted but nothing heard within --timeout: the command says how relay would learn
    the outcome (webhooks or the Logs API) and how to look later."""
    monkeypatch.delenv("RELAY_MAILGUN_READ_KEY")
    with respx.mock(assert_all_called=True, using="httpx") as mock:
        mock.post(MESSAGES).mock(return_value=httpx.Response(200, json={"id": "<x@mg>"}))
        result = invoke(mailgun, "send-test", "--form", "contact", "--timeout", "0")
    assert "accepted by Mailgun; not confirmed yet" in result.output
    assert "RELAY_MAILGUN_WEBHOOK_SIGNING_KEY" in result.output
    assert "relay deliveries show" in result.output


def test_file_transport_writes_the_marked_test_message(cli, settings):
    """Without a Mailgun key the test message is an .eml file to the form's recipients."""
    result = invoke(cli, "send-test", "--form", "quote")
    (path,) = (settings.var_dir / "mail").glob("*.eml")
    assert f"written to {path}" in result.output
    message = message_from_bytes(path.read_bytes())
    assert message["To"] == "sales@example.com"
    assert message["Subject"].startswith("[TEST] Quote")
    log = rows(settings.var_dir, "SELECT form_id, state, test FROM submissions")
    assert log == [("quote", "accepted", 1)]
    sid = path.stem
    shown = invoke(cli, "deliveries", "show", sid)
    assert "test message (relay send-test)" in shown.output


def test_an_unknown_form_is_refused(cli):
    """A form id that is not in the forms file is named, with the ones that are."""
    result = invoke(cli, "send-test", "--form", "nope", expect=1)
    assert "there is no form 'nope' (the forms file has: contact, quote)" in result.output


def test_a_logs_api_refusal_while_waiting_is_reported(mailgun):
    """A read key Mailgun refuses is said, and the wait goes on without it until the timeout."""
    with respx.mock(assert_all_called=True, using="httpx") as mock:
        mock.post(MESSAGES).mock(return_value=httpx.Response(200, json={"id": "<x@mg>"}))
        mock.post(LOGS).mock(return_value=httpx.Response(401, text="Forbidden"))
        result = invoke(mailgun, "send-test", "--form", "contact", "--timeout", "0.2")
    assert "Logs API: Mailgun refused the read key (HTTP 401)" in result.output
    assert "not confirmed yet" in result.output


def test_a_broken_forms_file_is_reported(cli, settings):
    """An unreadable forms file stops the command with the file, field and problem."""
    settings.forms_file.write_text("[[forms]]\nid = 3\n")
    result = invoke(cli, "send-test", "--form", "contact", expect=1)
    assert str(settings.forms_file) in result.output
