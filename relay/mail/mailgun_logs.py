"""Mailgun's EU Logs API, read-only: what happened to one of our messages?

Why: Mailgun never retries a `delivered` webhook, and keeps its logs only days, so relay asks
the Logs API (``POST /v1/analytics/logs``, account-level, Basic auth ``api:<read key>``) about
messages it sent but has no outcome for. Messages are found by our Message-Id,
``<submission-id@sending-domain>``, which Mailgun stores without the angle brackets and which
"ties together the accepted, delivered and failed events". Pages are followed through the
`pagination.next` token until a page comes back empty or without a next token.

httpx exceptions are translated here into MailgunLogsError, without URLs, bodies or keys.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx

from relay.clock import Clock, utcnow
from relay.config import Settings
from relay.errors import RelayError
from relay.mail.events import EventInvalid, ProviderEvent, parse_event
from relay.metrics import Metrics

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

    async def events_for(
        self, submission_id: str, *, start: datetime, end: datetime
    ) -> list[ProviderEvent]:
        """Every event Mailgun still has for our message, oldest first."""
        events: list[ProviderEvent] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            data = await self._page(logs_query(submission_id, self.domain, start, end, token))
            items = data.get("items") or []
            for item in items if isinstance(items, list) else []:
                try:
                    event = parse_event(item)
                except EventInvalid:
                    continue
                if event.submission_id is None:
                    event = dataclasses.replace(event, submission_id=submission_id)
                events.append(event)
            pagination = data.get("pagination")
            following = pagination.get("next") if isinstance(pagination, dict) else None
            if not items or not isinstance(following, str) or not following or following == token:
                break
            token = following
        return events

    async def has_message(self, submission_id: str) -> bool | None:
        """Whether Mailgun already has our message: True, False, or None when it cannot tell.

        The dispatcher asks this after an ambiguous send (a timeout once the request went
        out) before sending again: True → do not resend; False → send; None → retry later.
        """
        now = self._clock()
        try:
            events = await self.events_for(submission_id, start=now - self.retention, end=now)
        except MailgunLogsError:
            return None
        return bool(events)
