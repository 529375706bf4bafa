"""Mailgun's EU Logs API, read-only: what happened to one of our messages?

Why: Mailgun never retries a `delivered` webhook, and keeps its logs only days, so relay asks
the Logs API (``POST /v1/analytics/logs``, account-level, Basic auth ``api:<read key>``) about
messages it sent but has no outcome for. Messages are found by our Message-Id,
``<submission-id@sending-domain>``, which Mailgun stores without the angle brackets and which
"ties together the accepted, delivered and failed events". Pages are followed through the
`pagination.next` token until a page comes back empty or without a next token.

What comes back is not trusted because it was asked for: every item is matched on its *own*
message-id (and our `v:submission_id` variable when it carries one) before it can change
anything. Items about other messages are counted, not used: if there are any, Mailgun's
filter was refused or ignored, and relay says so (`LogsAnswer.foreign`, a warning, the
`relay_logs_foreign_items` metric) rather than attributing them to the submission asked about.

httpx exceptions are translated here into MailgunLogsError, without URLs, bodies or keys.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx

from relay.clock import Clock, utcnow
from relay.config import Settings
from relay.errors import RelayError
from relay.mail.events import EventInvalid, ProviderEvent, message_id_of, parse_event, redact
from relay.metrics import Metrics

log = logging.getLogger("relay.sync")

LOGS_PATH = "/v1/analytics/logs"
EVENTS = ["accepted", "delivered", "failed", "rejected", "complained"]
PAGE_SIZE = 100
MAX_PAGES = 50
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class MailgunLogsError(RelayError):
    """Raised when Mailgun's Logs API cannot answer; the message says what to check."""


def message_id(submission_id: str, domain: str) -> str:
    """Our Message-Id as Mailgun's logs store it: without angle brackets."""
    return f"{submission_id}@{domain}"


def logs_query(
    submission_id: str, domain: str, start: datetime, end: datetime, token: str | None = None
) -> dict[str, Any]:
    """The JSON body asking for one message's events (shape from Mailgun's OpenAPI)."""
    mid = message_id(submission_id, domain)
    pagination: dict[str, Any] = {"sort": "timestamp:asc", "limit": PAGE_SIZE}
    if token:
        pagination["token"] = token
    return {
        "start": format_datetime(start),
        "end": format_datetime(end),
        "events": EVENTS,
        "filter": {
            "AND": [
                {
                    "attribute": "message_id",
                    "comparator": "=",
                    "values": [{"label": mid, "value": mid}],
                }
            ]
        },
        "pagination": pagination,
    }


@dataclass(frozen=True)
class LogsAnswer:
    """The events that are provably about the message asked for, and how many were not."""

    events: list[ProviderEvent] = field(default_factory=list)
    foreign: int = 0

    @property
    def filter_ignored(self) -> bool:
        """Mailgun answered with items for other messages: its message_id filter did not hold."""
        return self.foreign > 0


def belongs_to(event: ProviderEvent, submission_id: str, domain: str) -> bool:
    """Whether a log item is about our message: its own message-id is ours, and its
    `submission_id` variable, when it has one, is ours too. Anything else is foreign."""
    ours = message_id(submission_id, domain).lower()
    mid = message_id_of(event.message_id)
    if mid is None or mid.lower() != ours:
        return False
    return event.submission_id in (None, submission_id)


def _error_text(response: httpx.Response) -> str:
    """Mailgun's `message`, redacted and short, or a note when there is none."""
    try:
        body = response.json()
    except ValueError:
        body = None
    text = body.get("message") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text.strip():
        return "no message"
    return redact(" ".join(text.split()))[:200]


def check_settings(settings: Settings) -> None:
    """Reconciliation needs a read key and the sending domain; say so before anything runs."""
    if settings.mailgun_read_key is None or not settings.mailgun_domain:
        msg = "reconciliation needs RELAY_MAILGUN_READ_KEY and RELAY_MAILGUN_DOMAIN"
        raise MailgunLogsError(msg)


class MailgunLogs:
    """A small client for the Logs API; one httpx.AsyncClient, closed with `aclose`."""

    def __init__(
        self,
        settings: Settings,
        *,
        client: httpx.AsyncClient | None = None,
        metrics: Metrics | None = None,
        clock: Clock = utcnow,
    ) -> None:
        check_settings(settings)
        assert settings.mailgun_read_key is not None  # noqa: S101 - checked above, for mypy
        assert settings.mailgun_domain is not None  # noqa: S101 - same
        self.domain = settings.mailgun_domain
        self.retention = timedelta(days=settings.mailgun_retention_days)
        self._metrics = metrics
        self._clock = clock
        self._client = client or httpx.AsyncClient(
            base_url=settings.mailgun_base_url,
            auth=("api", settings.mailgun_read_key.get_secret_value()),
            timeout=TIMEOUT,
            headers={"Accept": "application/json"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _page(self, body: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        outcome = "error"
        try:
            response = await self._client.post(LOGS_PATH, json=body)
            outcome = "ok" if response.status_code == 200 else f"http_{response.status_code}"
        except httpx.TimeoutException:
            msg = "Mailgun's Logs API timed out; try again later"
            raise MailgunLogsError(msg) from None
        except httpx.HTTPError as exc:
            msg = f"Mailgun's Logs API is unreachable ({type(exc).__name__})"
            raise MailgunLogsError(msg) from None
        finally:
            if self._metrics is not None:
                seconds = time.perf_counter() - started
                self._metrics.mailgun_request_seconds.labels("logs", outcome).observe(seconds)
        status = response.status_code
        if status in (401, 403):
            msg = f"Mailgun refused the read key (HTTP {status}): check RELAY_MAILGUN_READ_KEY"
            raise MailgunLogsError(msg)
        if status == 404:
            msg = "Mailgun's Logs API answered 404: check RELAY_MAILGUN_BASE_URL (EU host)"
            raise MailgunLogsError(msg)
        if status == 400:
            # The query itself was refused: most likely the message_id filter relay relies on
            # (its attribute or comparator) is no longer accepted. Nothing can be matched.
            msg = (
                f"Mailgun's Logs API refused relay's message_id query (HTTP 400: "
                f"{_error_text(response)}); reconciliation cannot match messages until this "
                "is fixed"
            )
            raise MailgunLogsError(msg)
        if status != 200:
            msg = f"Mailgun's Logs API answered HTTP {status}; try again later"
            raise MailgunLogsError(msg)
        try:
            data = response.json()
        except ValueError:
            msg = "Mailgun's Logs API answered something that is not JSON"
            raise MailgunLogsError(msg) from None
        if not isinstance(data, dict):
            msg = "Mailgun's Logs API answered an unexpected shape"
            raise MailgunLogsError(msg)
        return data

    async def events_for(self, submission_id: str, *, start: datetime, end: datetime) -> LogsAnswer:
        """Every event Mailgun still has for our message, oldest first; items that are not
        provably about it are counted in `foreign` and never returned."""
        events: list[ProviderEvent] = []
        foreign = 0
        token: str | None = None
        for _ in range(MAX_PAGES):
            data = await self._page(logs_query(submission_id, self.domain, start, end, token))
            items = data.get("items") or []
            for item in items if isinstance(items, list) else []:
                try:
                    event = parse_event(item)
                except EventInvalid:
                    foreign += 1
                    continue
                if belongs_to(event, submission_id, self.domain):
                    events.append(event)
                else:
                    foreign += 1
            pagination = data.get("pagination")
            following = pagination.get("next") if isinstance(pagination, dict) else None
            if not items or not isinstance(following, str) or not following or following == token:
                break
            token = following
        if foreign:
            if self._metrics is not None:
                self._metrics.logs_foreign_items.inc(foreign)
            log.warning(
                "Mailgun's Logs API returned items for other messages; ignored",
                extra={"submission_id": submission_id, "foreign": foreign},
            )
        return LogsAnswer(events, foreign)

    async def has_message(self, submission_id: str) -> bool | None:
        """Whether Mailgun already has our message: True, False, or None when it cannot tell.

        The dispatcher asks this after an ambiguous send (a timeout or 5xx once the request
        went out) before sending again: True → do not resend; False → send. None (the API
        failed, or answered about other messages, so an absence proves nothing) → send too:
        a duplicate is better than a lost enquiry, and the Message-Id is the same.
        """
        now = self._clock()
        try:
            answer = await self.events_for(submission_id, start=now - self.retention, end=now)
        except MailgunLogsError:
            return None
        if answer.events:
            return True
        return None if answer.filter_ignored else False
