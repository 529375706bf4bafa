"""Mailgun webhooks and log events as relay understands them — pure, no I/O.

Why pure: signature checks and the event → state table decide what the delivery log says;
they are functions of values (`now` is an argument) so every branch is tested without a
server. Provider knowledge (from Mailgun's docs, see shared/reference/mailgun-m365.md §2-3):

- The signature is HMAC-SHA256 over ``timestamp + token`` (the strings as received) with the
  *webhook signing key*, which is not the API key. It does not cover the event, so a captured
  signature could be re-attached to a forged event: tokens are single-use and the timestamp
  must be fresh. Refused webhooks get 406, the one non-2xx code Mailgun does not retry.
- `failed` carries `severity` (temporary: Mailgun retries; permanent: it gave up) and
  `reason` (bounce, suppress-bounce, generic, greylisted, …) and `delivery-status`, whose
  `message`/`description` is what the receiving server (Microsoft 365) answered.
- `delivered` means the receiving server said 250; Mailgun never retries that webhook, which is
  why reconciliation exists.
- Event ids are unique within a day; relay uses them as the idempotency key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from relay import states
from relay.redact import redact as redact_text

#: The custom variable (`v:submission_id`) the dispatcher sets on every message.
SUBMISSION_VARIABLE = "submission_id"
#: Longest token relay keeps for replay protection (Mailgun's are 50 characters).
MAX_TOKEN = 128
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

    @property
    def label(self) -> str:
        """How the event reads in the log: `failed/permanent`, `delivered`, …"""
        return f"{self.event}/{self.severity}" if self.severity else self.event


@dataclass(frozen=True)
class Transition:
    """What an event does to a submission: its new state, and whether its body is wiped."""

    state: str
    final: bool
    wipe_body: bool
    last_error: str | None


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

    Reasons: `malformed`, `bad_signature`, `stale` (timestamp further than `max_age` from now,
    in either direction). The token's single use is checked by the store, atomically with
    recording the event.
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
    if abs(now - sent) > max_age:
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
    """Identifiers out of a receiving server's message (relay.redact): why, not who."""
    return redact_text(text)


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


def _occurred(data: dict[str, Any]) -> datetime:
    stamp = data.get("timestamp")
    if isinstance(stamp, int | float) and not isinstance(stamp, bool):
        return datetime.fromtimestamp(float(stamp), UTC)
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
    if not isinstance(event_id, str) or not event_id or len(event_id) > MAX_TOKEN:
        msg = "event has no id"
        raise EventInvalid(msg)
    if not isinstance(event, str) or not event or len(event) > 32:
        msg = "event has no type"
        raise EventInvalid(msg)
    message = data.get("message")
    headers = message.get("headers") if isinstance(message, dict) else None
    raw_mid = headers.get("message-id") if isinstance(headers, dict) else None
    message_id = message_id_of(raw_mid if isinstance(raw_mid, str) else None)
    severity = _short(data.get("severity"), 16) if event == "failed" else None
    return ProviderEvent(
        event_id=event_id,
        event=event,
        occurred_at=_occurred(data),
        submission_id=submission_id_from(message_id, data.get("user-variables")),
        message_id=message_id,
        severity=severity,
        reason=_short(data.get("reason"), 128),
        description=_describe(data.get("delivery-status")),
    )


def transition(current: str, event: ProviderEvent) -> Transition | None:
    """The effect of `event` on a submission in state `current`; None: the timeline only.

    - accepted: Mailgun has it (from queued/sending/retrying, e.g. after an ambiguous send).
    - delivered: final, and the encrypted body is wiped — nothing is left to resend.
    - failed/permanent and rejected: final `failed`, with Mailgun's reason and the receiving
      server's message; the body stays so an admin can retry after fixing the cause.
    - failed/temporary: Mailgun is still trying; the submission stays `accepted`.
    - complained and anything else: recorded, no change of state.
    A delivered submission is never moved back (events can arrive out of order).
    """
    if current == states.DELIVERED:
        return None
    if event.event == "delivered":
        return Transition(states.DELIVERED, final=True, wipe_body=True, last_error=None)
    if event.event == "rejected" or (event.event == "failed" and event.severity != "temporary"):
        if current in (states.FAILED, states.DEAD):
            return None
        cause = " - ".join(p for p in (event.reason, event.description) if p) or event.label
        return Transition(states.FAILED, final=True, wipe_body=False, last_error=cause[:500])
    if event.event in ("accepted", "failed") and current in (
        states.QUEUED,
        states.SENDING,
        states.RETRYING,
        states.UNKNOWN,
    ):
        return Transition(states.ACCEPTED, final=False, wipe_body=False, last_error=None)
    return None
