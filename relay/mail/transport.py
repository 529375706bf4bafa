"""The seam between the dispatcher and whatever carries the email: one method, four outcomes.

`MailgunTransport`, `FileTransport` and the tests' `FakeTransport` implement `Transport`. A
transport never raises for a delivery problem: it answers with a `SendResult`, whose error
texts carry statuses and provider reasons only, never the message or the submitter's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class RenderedEmail:
    """One email ready to send. Every header value is single-line (render.py guarantees it).

    `sender`, `to` and `reply_to` are already 7-bit, encoded by relay.mail.headers (render.py
    makes them); `subject` is one line of text that the transports encode the same way.
    """

    submission_id: str
    form_id: str
    message_id: str  # "<submission-id@sending-domain>": known before the call, so resends match
    sender: str  # From: the operator's address on the sending domain (never the submitter's)
    to: tuple[str, ...]
    reply_to: str  # the submitter, as a header value
    subject: str
    text: str
    html: str | None = None  # None: text only (Formspree's _format=plain)


@dataclass(frozen=True)
class Accepted:
    """The provider took the message; `message_id` is the id it reports."""

    message_id: str


@dataclass(frozen=True)
class Retry:
    """A transient failure (429, 5xx, timeout, connection error): try again later.

    `after` is the wait the provider asked for (seconds), if any. `ambiguous` is True when
    the request may have reached the provider (a read timeout, a dropped connection), so the
    message may already be on its way.
    """

    after: float | None
    status: int | None
    error: str
    ambiguous: bool = False


@dataclass(frozen=True)
class Failed:
    """The provider refused this message for good (400, 413): retrying cannot help."""

    status: int | None
    error: str


@dataclass(frozen=True)
class CredentialsRejected:
    """A configuration fault, not the message's (401/403, unknown domain or region).

    The message stays queued and dispatch pauses until the configuration works again.
    """

    status: int | None
    error: str


SendResult = Accepted | Retry | Failed | CredentialsRejected


class Transport(Protocol):
    """Hands one email to a carrier and says what happened."""

    async def send(self, email: RenderedEmail) -> SendResult: ...
