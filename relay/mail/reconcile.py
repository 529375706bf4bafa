"""Reconciliation: ask Mailgun's logs about deliveries still waiting for an outcome.

Webhooks can be lost (Mailgun never retries `delivered`; a refused stale webhook is gone), so
`relay deliveries sync` — and the worker every RELAY_SYNC_INTERVAL_MINUTES when a read key is
set — looks up each `accepted` submission (and each one delivered within the bounce window,
RELAY_DELIVERED_BODY_HOURS, in case a delayed bounce followed) by our Message-Id, records the
events that provably belong to it through the same idempotent job as the webhook, and marks
`unknown` what is still without an outcome once Mailgun's retention window has passed (its
logs can no longer say). Items about other messages change nothing and are reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from relay import states
from relay.clock import Clock, utcnow
from relay.config import Settings
from relay.deliver.outcomes import provider_transition
from relay.errors import RelayError
from relay.mail.events import token_memory
from relay.metrics import Metrics
from relay.store import Store
from relay.store.deliveries import (
    awaiting_confirmation,
    get_delivery,
    mark_unknown,
    purge_tokens,
    record_event,
)

if TYPE_CHECKING:
    from relay.mail.mailgun_logs import MailgunLogs

log = logging.getLogger("relay.sync")
#: Look a little before a message was received: clocks differ.
SLACK = timedelta(hours=1)


@dataclass
class SyncReport:
    """What one reconciliation run did; printed by the CLI, logged by the worker."""

    checked: int = 0
    events: int = 0
    changed: dict[str, int] = field(default_factory=dict)
    unknown: int = 0
    foreign: int = 0
    error: str | None = None

    def summary(self) -> str:
        changed = ", ".join(f"{n} {s}" for s, n in sorted(self.changed.items())) or "none"
        text = (
            f"checked {self.checked} unconfirmed deliveries; {self.events} new events; "
            f"now final or moved: {changed}; marked unknown: {self.unknown}"
        )
        if self.foreign:
            text += (
                f"; WARNING: Mailgun returned {self.foreign} log item(s) about other messages "
                "(its message_id filter was refused or ignored); they were not trusted"
            )
        return f"{text}; stopped: {self.error}" if self.error else text


async def sync_deliveries(
    store: Store,
    logs: MailgunLogs,
    now: datetime,
    *,
    limit: int = 500,
    settings: Settings | None = None,
    metrics: Metrics | None = None,
) -> SyncReport:
    """One pass over unconfirmed submissions; stops at the first Mailgun error (reported)."""
    from relay.mail.mailgun_logs import MailgunLogsError  # loaded with `logs` (httpx)

    report = SyncReport()
    hold = timedelta(hours=settings.delivered_body_hours) if settings else timedelta(hours=24)
    max_age = timedelta(seconds=settings.webhook_max_age_seconds) if settings else None
    rows = await store.read(awaiting_confirmation(limit, delivered_since=now - hold))
    for submission_id, received_at, state in rows:
        report.checked += 1
        start = max(received_at - SLACK, now - logs.retention)
        try:
            answer = await logs.events_for(submission_id, start=start, end=now)
        except MailgunLogsError as exc:
            report.error = str(exc)
            break
        report.foreign += answer.foreign
        for event in answer.events:
            result = await store.write(record_event(event, now, source="sync"))
            if result.verdict == "recorded":
                report.events += 1
            provider_transition(result, event.event, "sync", metrics)
        row = await store.read(get_delivery(submission_id))
        if row is None:
            continue
        if row.state != state:
            report.changed[row.state] = report.changed.get(row.state, 0) + 1
        elif (
            state == states.ACCEPTED
            and received_at < now - logs.retention
            and await store.write(mark_unknown(submission_id, now))
        ):
            report.unknown += 1
            log.warning(
                "delivery outcome unknown",
                extra={"submission_id": submission_id, "form": row.form_id, "state": "unknown"},
            )
    memory = token_memory(max_age) if max_age is not None else token_memory(timedelta(0))
    await store.write(purge_tokens(now - memory))
    log.info(
        "deliveries synced",
        extra={
            "checked": report.checked,
            "events": report.events,
            "unknown": report.unknown,
            "foreign": report.foreign,
            "error": report.error,
        },
    )
    return report


class Reconciler:
    """The periodic sync the worker runs: start() once, stop() at shutdown."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        clock: Clock = utcnow,
        metrics: Metrics | None = None,
        logs: MailgunLogs | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self._logs = logs
        self._task: asyncio.Task[None] | None = None
        self.last_report: SyncReport | None = None
        self.last_error: str | None = None  # issue 12: read by the alerts watch
        self.ran = asyncio.Event()

    @property
    def logs(self) -> MailgunLogs | None:
        """The Logs API client once started (None when reconciliation is off)."""
        return self._logs

    @property
    def configured(self) -> bool:
        return self.settings.mailgun_read_key is not None and bool(self.settings.mailgun_domain)

    async def start(self) -> None:
        if not self.configured:
            log.info("reconciliation off: RELAY_MAILGUN_READ_KEY or RELAY_MAILGUN_DOMAIN not set")
            return
        if self._logs is None:
            from relay.mail.mailgun_logs import MailgunLogs  # only with a read key: httpx

            self._logs = MailgunLogs(self.settings, metrics=self.metrics, clock=self.clock)
        self._task = asyncio.create_task(self._loop(), name="relay-reconciler")

    async def run_once(self) -> SyncReport:
        assert self._logs is not None  # noqa: S101 - start() creates it before any run
        try:
            report = await sync_deliveries(
                self.store, self._logs, self.clock(), settings=self.settings, metrics=self.metrics
            )
        except RelayError as exc:
            self.last_error = str(exc)
            raise
        self.last_report = report
        self.last_error = report.error
        if report.error is None and self.metrics is not None:
            self.metrics.task_last_success.labels("reconciliation").set(self.clock().timestamp())
        self.ran.set()
        return report

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except RelayError as exc:
                log.warning("reconciliation failed", extra={"error": str(exc)})
            await asyncio.sleep(self.settings.sync_interval_minutes * 60)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._logs is not None:
            await self._logs.aclose()
