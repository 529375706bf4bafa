"""Mailgun webhook events and their signatures, as relay parses them (issue 15).

The events are Mailgun-shaped (the fields of its documented `failed` and `delivered` events,
tests/mailgun_fixtures.py) with hostile values, so most examples parse; any other JSON value
must be refused with EventInvalid, never an exception.
"""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st

from relay.mail.events import (
    FUTURE_SKEW,
    MAX_DESCRIPTION,
    EventInvalid,
    ProviderEvent,
    parse_event,
    refusal,
    signature_for,
)
from tests.strategies import json_values, one_line

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
KEY = b"property-webhook-signing-key"
MAX_AGE = timedelta(hours=8, minutes=5)
_ID_CHARS = string.ascii_letters + string.digits + "-"

#: Identifiers a receiving server's message may quote; none may reach the delivery log.
addresses = st.builds(
    "{}@{}.{}".format,
    st.text(alphabet=string.ascii_lowercase + ".", min_size=1, max_size=12).map(
        lambda local: local.strip(".") or "x"
    ),
    st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=12),
    st.sampled_from(["fr", "com", "org"]),
)
ipv4s = st.ip_addresses(v=4).map(str)
phones = st.sampled_from(["+33 6 12 34 56 78", "06 12 34 56 78", "0612345678", "+1 415 555 2671"])
identifiers = st.one_of(addresses, ipv4s, phones)
#: How identifiers sit in a server's text: between spaces, brackets, quotes or punctuation.
_AROUND = st.sampled_from([(" ", " "), (" <", "> "), (" [", "] "), (' "', '" '), (": ", ", ")])


#: Hostile prose around them (the name relay plants is not also glued into it).
_prose = st.builds(lambda text: text.replace("Jeanne Martin", "jeanne martin"), one_line(80))


@st.composite
def server_texts(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A receiving server's message: hostile prose with identifiers quoted in it."""
    planted = draw(st.lists(identifiers, max_size=3))
    text = draw(_prose)
    for identifier in planted:
        before, after = draw(_AROUND)
        text += before + identifier + after + draw(_prose)
    return text, planted


@st.composite
def mailgun_events(draw: st.DrawFn) -> tuple[Any, list[str], bool]:
    """A Mailgun event as its webhooks send it, free text hostile; the identifiers planted."""
    kind = draw(st.sampled_from(["accepted", "delivered", "failed", "rejected", "complained"]))
    message, planted = draw(server_texts())
    description, more = draw(server_texts())
    data: dict[str, Any] = {
        "id": draw(st.text(alphabet=_ID_CHARS, min_size=1, max_size=100)),
        "event": kind,
        "timestamp": draw(st.floats(min_value=0, max_value=4e9)),
        "message": {
            "headers": {
                "message-id": draw(
                    st.sampled_from(["<s-1@mg.example.com>", "20260101.x@mailgun.org", ""])
                )
            }
        },
        "user-variables": draw(
            st.sampled_from([{}, {"submission_id": "0193-abc"}, {"submission_id": "bad id!"}])
        ),
        "delivery-status": {
            "code": draw(st.sampled_from([550, 421, "554", ""])),
            "enhanced-code": draw(st.sampled_from(["5.1.1", "4.7.0", ""])),
            "message": message,
            "description": description,
        },
        "recipient": draw(addresses),
    }
    if kind == "failed":
        data["severity"] = draw(st.sampled_from(["permanent", "temporary", None]))
        data["reason"] = draw(st.sampled_from(["bounce", "suppress-bounce", "generic"]))
        if draw(st.booleans()):
            data["delivery-status"]["retry-seconds"] = draw(st.integers(0, 3600))
        if draw(st.booleans()):
            data["flags"] = {"is-delayed-bounce": draw(st.booleans())}
    if kind == "rejected":
        reason, also = draw(server_texts())
        data["reject"] = {"reason": reason, "description": draw(one_line(60))}
        planted += also
    return data, planted + more, True


def check_free_text(value: str | None, planted: list[str]) -> None:
    """A text the delivery log keeps: one line, bounded, without the identifiers it quoted."""
    if value is None:
        return
    assert value.splitlines() == [value]
    assert len(value) <= MAX_DESCRIPTION
    for identifier in planted:
        assert identifier not in value


@given(
    st.one_of(
        mailgun_events(),
        mailgun_events(),
        mailgun_events(),
        json_values.map(lambda value: (value, [], False)),
    )
)
def test_an_event_parses_to_what_mailgun_said_without_who_or_is_refused(drawn):
    """Property: a Mailgun-shaped event parses with its id, type and time (aware UTC), our
    submission id when it carries one, the severity of a failure, and free text on one line
    without the addresses, IPs and phone numbers it quoted; any other JSON value is refused
    with EventInvalid, never another exception."""
    data, planted, shaped = drawn
    try:
        parsed = parse_event(data)
    except EventInvalid:
        event("refused")
        assert not shaped
        return
    assert isinstance(parsed, ProviderEvent)
    if not shaped:
        event("any JSON value read as an event")
        return
    event("parsed")
    assert (parsed.event_id, parsed.event) == (data["id"], data["event"])
    assert parsed.occurred_at == datetime.fromtimestamp(data["timestamp"], UTC)
    assert parsed.occurred_at.utcoffset() == timedelta(0)
    assert parsed.key == f"{data['id']}/{parsed.occurred_at:%Y-%m-%d}"
    variables = data["user-variables"].get("submission_id")
    mid = data["message"]["headers"]["message-id"]
    assert parsed.submission_id == (
        "0193-abc" if variables == "0193-abc" else "s-1" if mid.startswith("<s-1@") else None
    )
    if data["event"] == "failed":
        retrying = data["delivery-status"].get("retry-seconds", 0) > 0
        assert parsed.severity == (data["severity"] or ("temporary" if retrying else None))
        assert parsed.delayed_bounce is (data.get("flags", {}).get("is-delayed-bounce") is True)
    else:
        assert (parsed.severity, parsed.delayed_bounce) == (None, False)
    check_free_text(parsed.description, planted)
    check_free_text(parsed.reason, planted)


@given(
    age=st.integers(min_value=-2 * int(FUTURE_SKEW.total_seconds()), max_value=2 * 8 * 3600),
    token=st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=128),
    change=st.one_of(st.none(), st.sampled_from(["signature", "token", "timestamp", "key"])),
)
def test_a_signed_webhook_is_accepted_only_fresh_and_unaltered(age, token, change):
    """Property: a block signed with the key is accepted (its token returned) when its time is
    within the window (max age back, FUTURE_SKEW ahead) and stale otherwise; any change to the
    signature, token, timestamp or key after signing is a bad signature."""
    timestamp = int(NOW.timestamp()) - age
    signature = signature_for(KEY, str(timestamp), token)
    block = {"timestamp": str(timestamp), "token": token, "signature": signature}
    key = KEY
    if change == "signature":
        block["signature"] = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    elif change == "token":
        block["token"] = token + "x"
    elif change == "timestamp":
        block["timestamp"] = str(timestamp + 1)
    elif change == "key":
        key = KEY + b"!"
    got = refusal(key, block, NOW, MAX_AGE)
    sent = datetime.fromtimestamp(timestamp, UTC)
    if change is not None:
        event("altered")
        assert got == ("bad_signature", None)
    elif NOW - sent > MAX_AGE or sent - NOW > FUTURE_SKEW:
        event("stale")
        assert got == ("stale", None)
    else:
        event("accepted")
        assert got == (None, token)


@given(block=json_values)
def test_any_signature_block_is_refused_with_a_reason(block):
    """Property: any JSON value as the signature block is refused with one of relay's reasons
    (it cannot carry a valid signature without the key), never an exception."""
    reason, token = refusal(KEY, block, NOW, MAX_AGE)
    assert (reason in {"malformed", "bad_signature", "stale"}, token) == (True, None)
