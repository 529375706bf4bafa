"""Mailgun signature checks and the event → state table (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from relay import states
from relay.mail.events import (
    RETRY_SCHEDULE,
    EventInvalid,
    ProviderEvent,
    event_key,
    parse_event,
    redact,
    refusal,
    submission_id_from,
    token_memory,
    transition,
    verify_signature,
)
from tests.mailgun_fixtures import event as mailgun_event

V1_KEY = b"key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
TOKEN_V1 = "5egbgr1vjgqxtrnp65xfznchgdccwh5d6i09vijqi3whgowmn6"
SIG_V1 = "9cfc5c41582e51246e73c88d34db3af0a3a2692a76fbab81492842f000256d33"


@pytest.mark.parametrize(
    ("key", "timestamp", "token", "signature", "valid"),
    [
        (V1_KEY, "1403645220", TOKEN_V1, SIG_V1, True),
        (V1_KEY, "1403645220", "owyldpe6nxhmrn78epljl6bj0orrki1u3d2v5e6cnlmmuox8jr", SIG_V1, False),
        (V1_KEY, "0", "", "", False),
        (
            b"TEST_WEBHOOK_SIGNING_KEY",
            "1534108637",
            "651869375b9df3c98fc15c4889b102119add1235c38fc92824",
            "2a75affe24846ead9e37e614a5e7643a04abf4d5b49b34d224ede9af23a00ccc",
            True,
        ),
        (
            b"TEST_WEBHOOK_SIGNING_KEY",
            "1234567890",
            "1234567890abcdef1234567890abcdef",
            "3b754b7c269e4c08fb3f5f36b2b5f98e45245965522dc16ca4c9faa0b11b557d",
            True,
        ),
        (
            b"key-55c5c5c5c55f55ca5cd5f55d5c555c55",
            "1770920772",
            "e0b5477167110d68991efc6b9f89f0a11066af27834600e123",
            "139c1bc521cbd4f23cc9bcc32e0a0d808087d950969b2b0997c130688c4dc11c",
            True,
        ),
        (b"TEST_WEBHOOK_SIGNING_KEY", "123456789", "token", "6261647369676e6174757265", False),
        (b"", "1403645220", TOKEN_V1, SIG_V1, False),
    ],
)
def test_signature_vectors(key, timestamp, token, signature, valid):
    """The reference's test vectors V1-V6 (and mailgun-go's negative case) verify as documented."""
    assert valid is verify_signature(key, timestamp, token, signature)


V1_TIME = datetime.fromtimestamp(1403645220, UTC)
BLOCK = {"timestamp": "1403645220", "token": TOKEN_V1, "signature": SIG_V1}


@pytest.mark.parametrize(
    ("block", "now", "expected"),
    [
        (BLOCK, V1_TIME, (None, TOKEN_V1)),
        (BLOCK, V1_TIME + timedelta(minutes=15), (None, TOKEN_V1)),
        (BLOCK, V1_TIME + timedelta(minutes=15, seconds=1), ("stale", None)),
        (BLOCK, V1_TIME - timedelta(minutes=16), ("stale", None)),
        (BLOCK, V1_TIME - timedelta(minutes=5), (None, TOKEN_V1)),  # clock drift: tolerated
        (BLOCK, V1_TIME - timedelta(minutes=5, seconds=1), ("stale", None)),
        ({**BLOCK, "signature": SIG_V1[:-1] + "0"}, V1_TIME, ("bad_signature", None)),
        ({**BLOCK, "timestamp": 1403645220}, V1_TIME, (None, TOKEN_V1)),
        ({**BLOCK, "token": None}, V1_TIME, ("malformed", None)),
        ({**BLOCK, "token": "x" * 129}, V1_TIME, ("malformed", None)),
        ("not a block", V1_TIME, ("malformed", None)),
        (None, V1_TIME, ("malformed", None)),
    ],
)
def test_refusal(block, now, expected):
    """A webhook is refused when malformed, forged, older than the window, or more than five
    minutes ahead of now."""
    assert expected == refusal(V1_KEY, block, now, timedelta(minutes=15))


def test_non_numeric_timestamp_with_valid_signature_is_malformed():
    """A correctly signed but non-numeric timestamp is refused, not crashed on."""
    from relay.mail.events import signature_for

    sig = signature_for(V1_KEY, "soon", "tok")
    block = {"timestamp": "soon", "token": "tok", "signature": sig}
    assert refusal(V1_KEY, block, V1_TIME, timedelta(minutes=15)) == ("malformed", None)


AT = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def _event(event: str, severity: str | None = None) -> ProviderEvent:
    return ProviderEvent("e1", event, AT, "s1", None, severity=severity, reason="bounce")


@pytest.mark.parametrize(
    ("current", "event", "severity", "expected"),
    [
        (states.ACCEPTED, "delivered", None, (states.DELIVERED, True, False)),
        (states.SENDING, "delivered", None, (states.DELIVERED, True, False)),
        (states.DEAD, "delivered", None, (states.DELIVERED, True, False)),
        (states.FAILED, "delivered", None, None),
        (states.ACCEPTED, "failed", "permanent", (states.FAILED, True, False)),
        (states.ACCEPTED, "rejected", None, (states.FAILED, True, False)),
        (states.DEAD, "failed", "permanent", None),
        (states.ACCEPTED, "failed", "temporary", None),
        (states.SENDING, "failed", "temporary", (states.ACCEPTED, False, False)),
        (states.SENDING, "accepted", None, (states.ACCEPTED, False, False)),
        (states.RETRYING, "accepted", None, (states.ACCEPTED, False, False)),
        (states.ACCEPTED, "accepted", None, None),
        (states.ACCEPTED, "complained", None, None),
        (states.DELIVERED, "failed", "permanent", None),
        (states.DELIVERED, "delivered", None, None),
        (states.FAILED, "failed", "permanent", None),
    ],
)
def test_transition_table(current, event, severity, expected):
    """Each event moves a submission as the state diagram says; a delivered one moves only on a
    delayed bounce, a failed one not at all."""
    change = transition(current, _event(event, severity))
    got = None if change is None else (change.state, change.final, change.delayed_bounce)
    assert expected == got


def test_permanent_failure_keeps_reason_and_server_message():
    """A permanent failure's last error carries Mailgun's reason and the server's answer."""
    data = {
        "id": "ev-1",
        "event": "failed",
        "severity": "permanent",
        "reason": "bounce",
        "timestamp": AT.timestamp(),
        "message": {"headers": {"message-id": "0193-abc@mg.example.com"}},
        "delivery-status": {
            "code": 550,
            "enhanced-code": "5.1.1",
            "message": "5.1.1 <sales@example.com>: Recipient address rejected",
            "description": "",
        },
    }
    event = parse_event(data)
    assert event.submission_id == "0193-abc"
    assert event.label == "failed/permanent"
    assert event.description == "550 5.1.1 5.1.1 <address>: Recipient address rejected"
    change = transition(states.ACCEPTED, event)
    assert change is not None
    assert change.last_error == "bounce - 550 5.1.1 5.1.1 <address>: Recipient address rejected"


def test_logs_api_items_parse_with_iso_timestamps():
    """Logs API items carry `@timestamp` (ISO) instead of an epoch float."""
    event = parse_event({"id": "x", "event": "delivered", "@timestamp": "2026-11-25T09:00:00.000Z"})
    assert event.occurred_at == AT
    assert event.submission_id is None


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (None, "event-data is not an object"),
        ([], "event-data is not an object"),
        ({"event": "delivered", "timestamp": 1.0}, "event has no id"),
        ({"id": "x", "timestamp": 1.0}, "event has no type"),
        ({"id": "x", "event": "delivered"}, "event has no usable timestamp"),
        (
            {"id": "x", "event": "delivered", "@timestamp": "yesterday"},
            "event has no usable timestamp",
        ),
        ({"id": "x" * 200, "event": "delivered", "timestamp": 1.0}, "event has no id"),
        ({"id": "x", "event": "delivered", "timestamp": 1e300}, "event timestamp is out of range"),
    ],
)
def test_unusable_events_are_refused(data, problem):
    """Event data without id, type or timestamp raises EventInvalid saying which, in words of
    its own (never echoing the data)."""
    with pytest.raises(EventInvalid) as caught:
        parse_event(data)
    assert str(caught.value) == problem


@pytest.mark.parametrize(
    ("message_id", "variables", "expected"),
    [
        ("abc-1@mg.example.com", None, "abc-1"),
        (None, {"submission_id": "abc-2"}, "abc-2"),
        ("20220729.5298f@mailgun.org", {"submission_id": "bad id!"}, None),
        (None, None, None),
        ("no-at-sign", {}, None),
    ],
)
def test_submission_id_from(message_id, variables, expected):
    """Our id comes from the custom variable, else from our Message-Id's local part."""
    assert expected == submission_id_from(message_id, variables)


def test_redact_removes_addresses():
    """Receiving servers quote addresses; the delivery log keeps only why."""
    assert redact("<jeanne.martin@example.fr> unknown, a@b.fr") == "<address> unknown, <address>"


# --- Mailgun's published payloads (tests/fixtures/mailgun; sources in its README.md) ---------


def test_the_documented_delayed_bounce_parses_as_one():
    """Mailgun's documented delayed bounce (api-events.rst) is failed/permanent with the flag,
    the receiving server's 550 5.1.1 and no address."""
    event = parse_event(mailgun_event("event_failed_delayed_bounce.json"))
    assert (event.event, event.severity, event.reason, event.delayed_bounce) == (
        "failed",
        "permanent",
        "generic",
        True,
    )
    assert event.description is not None
    assert event.description.startswith("550 5.1.1 smtp; 550-5.1.1 The email account")
    assert "@" not in event.description
    change = transition(states.DELIVERED, event)
    assert change is not None
    assert (change.state, change.final, change.delayed_bounce) == (states.FAILED, True, True)


@pytest.mark.parametrize(
    ("fixture", "delayed"),
    [
        ("event_failed_permanent.json", False),
        ("event_failed_temporary.json", False),
        ("event_delivered.json", False),
        ("event_failed_delayed_bounce.json", True),
    ],
)
def test_only_the_delayed_bounce_moves_a_delivered_submission(fixture, delayed):
    """From `delivered`, only a permanent failure flagged is-delayed-bounce changes the state."""
    change = transition(states.DELIVERED, parse_event(mailgun_event(fixture)))
    assert (change is not None) is delayed


def test_the_documented_rejection_keeps_its_reason():
    """The OpenAPI's `rejected` example: its `reject.reason` becomes the description."""
    event = parse_event(mailgun_event("events_api_rejected.json"))
    assert event.description == (
        "Sandbox subdomains are for test purposes only. Please add your own domain or add the "
        "address to authorized recipients in Account Settings."
    )
    change = transition(states.ACCEPTED, event)
    assert change is not None
    assert (change.state, change.last_error) == (states.FAILED, event.description)


def test_a_rejection_quoting_an_address_is_redacted():
    """Rejection texts go through the same redaction as server answers."""
    data = mailgun_event("events_api_rejected.json")
    data["reject"] = {"reason": "joan@example.org is not allowed", "description": "see docs"}
    assert parse_event(data).description == "<address> is not allowed - see docs"


def test_the_specifications_failed_without_severity_is_still_retrying():
    """The OpenAPI's Logs example `failed` has no severity but retry-seconds: temporary; the
    same item without retry-seconds is permanent."""
    data = mailgun_event("logs_api_response.json")
    event = parse_event(data)
    assert (event.severity, transition(states.ACCEPTED, event)) == ("temporary", None)
    moved = transition(states.SENDING, event)
    assert moved is not None
    assert moved.state == states.ACCEPTED
    del data["delivery-status"]["retry-seconds"]
    failed = transition(states.ACCEPTED, parse_event(data))
    assert failed is not None
    assert (failed.state, failed.final) == (states.FAILED, True)


def test_event_keys_are_per_day():
    """Mailgun's ids are unique within a day: the key is (id, UTC day)."""
    morning, evening = AT, AT + timedelta(hours=14, minutes=59)
    assert event_key("x", morning) == event_key("x", evening) == "x/2026-11-25"
    assert event_key("x", AT + timedelta(days=30)) == "x/2026-12-25"


def test_tokens_are_remembered_for_the_whole_window():
    """A token must outlive the window it is valid in (plus the future skew), and a day at least;
    the default window outlasts Mailgun's retry schedule."""
    from relay.config import Settings

    window = timedelta(seconds=Settings().webhook_max_age_seconds)
    assert window >= RETRY_SCHEDULE
    assert token_memory(window) >= window + timedelta(minutes=5)
    assert token_memory(timedelta(hours=23, minutes=58)) == timedelta(hours=24, minutes=3)
    assert token_memory(timedelta(minutes=15)) == timedelta(hours=24)
