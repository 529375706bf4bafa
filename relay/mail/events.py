"""Mailgun webhooks and log events as relay understands them — pure, no I/O.

Why pure: signature checks and the event → state table decide what the delivery log says;
they are functions of values (`now` is an argument) so every branch is tested without a
server. Provider knowledge (from Mailgun's docs, see shared/reference/mailgun-m365.md §2-3):

- The signature is HMAC-SHA256 over ``timestamp + token`` (the strings as received) with the
  *webhook signing key*, which is not the API key. It does not cover the event, so a captured
  signature could be re-attached to a forged event: tokens are single-use and the timestamp
  must be fresh. Refused webhooks get 406, the one non-2xx code Mailgun does not retry.
- Mailgun retries a webhook that got neither 200 nor 406 after 5, 10, 15 min, 1, 2 and 4 h
  (legacy docs: 10, 10, 15, 30 min, 1, 2, 4 h: about 8 h in all) with the original signed
  timestamp, so the freshness window (`max_age`) must outlast that schedule; the token store
  remembers tokens at least as long (`token_memory`), so a longer window admits no replay.
  A timestamp from the future is tolerated only by `FUTURE_SKEW` (clock drift).
- `failed` carries `severity` (temporary: Mailgun retries; permanent: it gave up) and
  `reason` (bounce, suppress-bounce, generic, greylisted, …) and `delivery-status`, whose
  `message`/`description` is what the receiving server (Microsoft 365) answered. A `failed`
  without severity but with `delivery-status.retry-seconds` (the Logs API example in Mailgun's
  OpenAPI) is Mailgun still retrying: temporary.
- `delivered` means the receiving server said 250; Mailgun never retries that webhook, which is
  why reconciliation exists. It is not the end: Microsoft 365 can accept a message and bounce
  it later, and Mailgun then sends `failed`/permanent with `flags.is-delayed-bounce: true`
  (documented in mailgun/documentation `source/api-events.rst`). That moves a delivered
  submission to `failed`.
- `rejected` (Mailgun refused to send) carries its cause in `reject.reason`/`.description`.
- Event ids are unique within a day, not forever: the idempotency key is (event id, UTC day of
  the event), see `event_key`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from relay import states
from relay.minimise.redact import redact as redact_text

#: The custom variable (`v:submission_id`) the dispatcher sets on every message.
SUBMISSION_VARIABLE = "submission_id"
#: Longest token relay keeps for replay protection (Mailgun's are 50 characters).
MAX_TOKEN = 128
#: Longest event id relay keeps (Mailgun's are 22 characters); the key adds "/YYYY-MM-DD".
MAX_EVENT_ID = 100
#: How far in the future a webhook's timestamp may be (clock drift between Mailgun and us).
FUTURE_SKEW = timedelta(minutes=5)
#: Mailgun's documented webhook retry schedule ends about 8 h after the first try.
RETRY_SCHEDULE = timedelta(hours=8, minutes=5)
MAX_DESCRIPTION = 500
_ID = re.compile(r"^[0-9A-Za-z-]{1,64}$")

#: Mailgun event name → relay's name on the timeline; anything else is ignored (opened,
#: clicked and unsubscribed carry the reader's IP and are off for relay anyway).
KNOWN_EVENTS = frozenset({"accepted", "delivered", "failed", "rejected", "complained"})


class EventInvalid(ValueError):
    """The event data lacks what relay needs (id, event, timestamp); never echoes the payload."""


@dataclass(frozen=True)
class ProviderEvent:
    """One Mailgun event, reduced to what the delivery log keeps: no addresses, no content."""

    event_id: str
    event: str
    occurred_at: datetime
    submission_id: str | None
    message_id: str | None
    severity: str | None = None
    reason: str | None = None
    description: str | None = None
    delayed_bounce: bool = False

    @property
    def label(self) -> str:
        """How the event reads in the log: `failed/permanent`, `delivered`, …"""
        return f"{self.event}/{self.severity}" if self.severity else self.event

    @property
    def key(self) -> str:
        """The idempotency key: Mailgun's ids are unique within a day, so (id, UTC day)."""
        return event_key(self.event_id, self.occurred_at)


@dataclass(frozen=True)
class Transition:
    """What an event does to a submission: its new state, and whether it is final.

    No event wipes the body at once: a delivered body is kept for the bounce window (a delayed
    bounce can still make it worth retrying), then wiped (store.dispatch.wipe_bodies_due).
    `delayed_bounce` marks a delivered submission that bounced afterwards.
    """

    state: str
    final: bool
    last_error: str | None
    delayed_bounce: bool = False


def event_key(event_id: str, occurred_at: datetime) -> str:
    """`<id>/<YYYY-MM-DD>`: Mailgun may reuse an id on another day, never on the same one."""
    return f"{event_id}/{occurred_at.astimezone(UTC):%Y-%m-%d}"


def token_memory(max_age: timedelta) -> timedelta:
    """How long a used token must be remembered for `max_age` to admit no replay: a token is
    acceptable from `FUTURE_SKEW` before its timestamp until `max_age` after it. At least a
    day, as a margin."""
    return max(timedelta(hours=24), max_age + FUTURE_SKEW)


def signature_for(key: bytes, timestamp: str, token: str) -> str:
    """The hex HMAC-SHA256 Mailgun sends for (timestamp, token), hashing the strings as sent."""
    return hmac.new(key, (timestamp + token).encode("utf-8"), hashlib.sha256).hexdigest()


def verify_signature(key: bytes, timestamp: str, token: str, signature: str) -> bool:
    """Constant-time check of a webhook signature; empty parts never verify."""
    if not key or not timestamp or not token or not signature:
        return False
    expected = signature_for(key, timestamp, token)
    return hmac.compare_digest(expected.encode("ascii"), signature.strip().lower().encode("utf-8"))


def refusal(
    key: bytes, block: Any, now: datetime, max_age: timedelta
) -> tuple[str | None, str | None]:
    """Check a webhook's `signature` block: (None, token) when valid, else (reason, None).

    Reasons: `malformed`, `bad_signature`, `stale` (timestamp older than `max_age`, or more than
    `FUTURE_SKEW` ahead of now). The token's single use is checked by the store, atomically
    with recording the event, and remembered for `token_memory(max_age)`.
    """
    if not isinstance(block, dict):
        return "malformed", None
    timestamp, token, signature = (block.get(k) for k in ("timestamp", "token", "signature"))
    if isinstance(timestamp, int):
        timestamp = str(timestamp)
    if not all(isinstance(v, str) and v for v in (timestamp, token, signature)):
        return "malformed", None
    assert isinstance(timestamp, str)  # noqa: S101 - narrowed by the check above, for mypy
    assert isinstance(token, str)  # noqa: S101 - same
    assert isinstance(signature, str)  # noqa: S101 - same
    if len(token) > MAX_TOKEN:
        return "malformed", None
    if not verify_signature(key, timestamp, token, signature):
        return "bad_signature", None
    try:
        sent = datetime.fromtimestamp(int(timestamp), UTC)
    except (ValueError, OverflowError, OSError):
        return "malformed", None
    if now - sent > max_age or sent - now > FUTURE_SKEW:
        return "stale", None
    return None, token


def message_id_of(value: str | None) -> str | None:
    """Mailgun writes message ids without angle brackets; relay compares them that way."""
    if not value:
        return None
    return value.strip().strip("<>").strip() or None


def submission_id_from(message_id: str | None, variables: Any) -> str | None:
    """Our id, from the custom variable or from our Message-Id `<submission-id@domain>`."""
    if isinstance(variables, dict):
        value = variables.get(SUBMISSION_VARIABLE)
        if isinstance(value, str) and _ID.match(value):
            return value
    if message_id and "@" in message_id:
        local = message_id.split("@", 1)[0]
        if _ID.match(local):
            return local
    return None


def redact(text: str) -> str:
    """Identifiers out of a receiving server's message (relay.minimise.redact): why, not who."""
    return redact_text(text)


def _clean(value: Any) -> str | None:
    """A provider's free text, on one line, redacted and bounded; None if empty."""
    if not isinstance(value, str) or not value.strip():
        return None
    return redact(" ".join(value.split()))[:MAX_DESCRIPTION] or None


def _describe(status: Any) -> str | None:
    if not isinstance(status, dict):
        return None
    parts = []
    code = status.get("code")
    if isinstance(code, int | str) and str(code):
        parts.append(str(code))
    enhanced = status.get("enhanced-code")
    if isinstance(enhanced, str) and enhanced:
        parts.append(enhanced)
    for key in ("message", "description"):
        value = status.get(key)
        if isinstance(value, str) and value.strip() and value.strip() not in parts:
            parts.append(" ".join(value.split()))
    text = redact(" ".join(parts))[:MAX_DESCRIPTION]
    return text or None


def _short(value: Any, limit: int) -> str | None:
    if isinstance(value, str) and value:
        return value[:limit]
    return None


def _retrying(status: Any) -> bool:
    """Mailgun says when it will try again (`retry-seconds`): it has not given up."""
    if not isinstance(status, dict):
        return False
    wait = status.get("retry-seconds")
    return isinstance(wait, int | float) and not isinstance(wait, bool) and wait > 0


def _severity(data: dict[str, Any]) -> str | None:
    """`failed` events' severity; absent, `retry-seconds` means temporary (still retrying)."""
    severity = _short(data.get("severity"), 16)
    if severity is None and _retrying(data.get("delivery-status")):
        return "temporary"
    return severity


def _flag(data: dict[str, Any], name: str) -> bool:
    flags = data.get("flags")
    return isinstance(flags, dict) and flags.get(name) is True


def _rejection(data: dict[str, Any]) -> str | None:
    """`rejected` events: Mailgun's `reject.reason` and `.description` (sentences, not codes),
    on one line, redacted and bounded; None when there is neither."""
    reject = data.get("reject")
    if not isinstance(reject, dict):
        return None
    parts = [_clean(reject.get(key)) for key in ("reason", "description")]
    text = " - ".join(dict.fromkeys(p for p in parts if p))
    return text[:MAX_DESCRIPTION] or None


def _occurred(data: dict[str, Any]) -> datetime:
    stamp = data.get("timestamp")
    if isinstance(stamp, int | float) and not isinstance(stamp, bool):
        try:
            return datetime.fromtimestamp(float(stamp), UTC)
        except (ValueError, OverflowError, OSError):  # out of range, NaN: not a time
            msg = "event timestamp is out of range"
            raise EventInvalid(msg) from None
    iso = data.get("@timestamp")
    if isinstance(iso, str):
        try:
            parsed = datetime.fromisoformat(iso.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    msg = "event has no usable timestamp"
    raise EventInvalid(msg)


def parse_event(data: Any) -> ProviderEvent:
    """A webhook's `event-data` (or a Logs API item) → ProviderEvent; EventInvalid if unusable."""
    if not isinstance(data, dict):
        msg = "event-data is not an object"
        raise EventInvalid(msg)
    event_id, event = data.get("id"), data.get("event")
    if not isinstance(event_id, str) or not event_id or len(event_id) > MAX_EVENT_ID:
        msg = "event has no id"
        raise EventInvalid(msg)
    if not isinstance(event, str) or not event or len(event) > 32:
        msg = "event has no type"
        raise EventInvalid(msg)
    message = data.get("message")
    headers = message.get("headers") if isinstance(message, dict) else None
    raw_mid = headers.get("message-id") if isinstance(headers, dict) else None
    message_id = message_id_of(raw_mid if isinstance(raw_mid, str) else None)
    severity = _severity(data) if event == "failed" else None
    reason, description = _short(data.get("reason"), 128), _describe(data.get("delivery-status"))
    if event == "rejected":
        description = _rejection(data) or description
    return ProviderEvent(
        event_id=event_id,
        event=event,
        occurred_at=_occurred(data),
        submission_id=submission_id_from(message_id, data.get("user-variables")),
        message_id=message_id,
        severity=severity,
        reason=reason,
        description=description,
        delayed_bounce=event == "failed" and _flag(data, "is-delayed-bounce"),
    )


def _cause(event: ProviderEvent) -> str:
    return (" - ".join(p for p in (event.reason, event.description) if p) or event.label)[:500]


def transition(current: str, event: ProviderEvent) -> Transition | None:
    """The effect of `event` on a submission in state `current`; None: the timeline only.

    The one table of provider-driven state changes (store.deliveries.record_event applies it):

    - accepted: Mailgun has it (from queued/sending/retrying, e.g. after an ambiguous send).
    - delivered: final `delivered` from any state still in flight. The body is kept for the
      bounce window (RELAY_DELIVERED_BODY_HOURS), then wiped.
    - failed/permanent and rejected: final `failed`, with Mailgun's reason and the receiving
      server's message; the body stays so an admin can retry after fixing the cause.
    - failed/permanent with `flags.is-delayed-bounce` on a *delivered* submission: the
      receiving server accepted it, then bounced it. `failed`, with the reason.
    - failed/temporary (or without severity but with `retry-seconds`): Mailgun is still
      trying; the submission stays in flight (`accepted`).
    - complained and anything else: recorded, no change of state.
    A delivered submission is otherwise never moved back, and a failed one is not made
    delivered (events arrive out of order; only an admin's retry reopens it). A `dead` one
    (dispatch gave up after ambiguous sends) becomes `delivered` if Mailgun says so.
    """
    if current == states.DELIVERED:
        if event.event == "failed" and event.severity == "permanent" and event.delayed_bounce:
            return Transition(states.FAILED, True, _cause(event), delayed_bounce=True)
        return None
    if current == states.FAILED:
        return None
    if event.event == "delivered":
        # also from `dead`: dispatch gave up, but an ambiguous send had reached Mailgun
        return Transition(states.DELIVERED, final=True, last_error=None)
    if current == states.DEAD:
        return None
    if event.event == "rejected" or (event.event == "failed" and event.severity != "temporary"):
        return Transition(states.FAILED, final=True, last_error=_cause(event))
    if event.event in ("accepted", "failed") and current in (
        states.QUEUED,
        states.SENDING,
        states.RETRYING,
        states.UNKNOWN,
    ):
        return Transition(states.ACCEPTED, final=False, last_error=None)
    return None
