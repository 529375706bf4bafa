"""The alerts watch: looks at relay every RELAY_ALERT_CHECK_SECONDS and tells a person.

It observes, in the process that delivers (`relay serve` by default, or `relay worker`):
submissions that became `failed` or `dead` (read from the database, so the dispatcher,
webhooks, reconciliation and admin retries are all seen without hooks in them), dispatch
paused on Mailgun's refusal, the oldest waiting message past
RELAY_READY_MAX_QUEUE_AGE_SECONDS, and the Housekeeper's and reconciliation's last errors.
relay.ops.alert_policy decides what to send; this module sends it: an email to
RELAY_ALERT_EMAIL through the transport, and JSON to RELAY_ALERT_WEBHOOK_URL (which still
works when the transport is what broke). It also sets `relay_dispatch_paused`.

Alerts carry ids, form names, states and reasons, never personal data. A failure to send an
alert is logged and never stops relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from relay.clock import Clock
from relay.config import Settings
from relay.errors import StoreUnavailable
from relay.mail.transport import Accepted, RenderedEmail, Transport
from relay.metrics import Metrics
from relay.ops.alert_policy import (
    DISPATCH_PAUSED,
    HOUSEKEEPING_FAILED,
    QUEUE_STALE,
    RECONCILIATION_FAILED,
    Alert,
    AlertPolicy,
)
from relay.states import ERASED
from relay.store import Store
from relay.store.delivery_stats import queue_stats
from relay.store.failures import failed_since

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("relay.alerts")
WEBHOOK_TIMEOUT_SECONDS = 10.0
ALERT_FORM = "relay-alerts"


class Paused(Protocol):
    """The dispatcher as the watch sees it."""

    @property
    def paused_reason(self) -> str | None: ...


class Failing(Protocol):
    """The Housekeeper or the reconciler as the watch sees them."""

    @property
    def last_error(self) -> str | None: ...


def admin_url(settings: Settings, path: str = "") -> str:
    """A link into /admin: absolute with RELAY_PUBLIC_URL, else a path on relay's host."""
    return f"{settings.public_url or ''}/admin{path}"


def payload(alert: Alert, settings: Settings, at: datetime) -> dict[str, Any]:
    """The JSON the webhook receives (and the facts the email shows)."""
    return {
        "status": alert.status,
        "condition": alert.condition,
        "summary": alert.summary,
        "reason": alert.reason,
        "at": at.isoformat(),
        "submissions": [
            {
                "id": f.submission_id,
                "form": f.form_id,
                "state": f.state,
                "reason": f.reason,
                "link": admin_url(settings, f"/deliveries/{f.submission_id}"),
            }
            for f in alert.failures
        ],
        "more": alert.more,
        "admin": admin_url(settings),
    }


def text_of(data: dict[str, Any]) -> str:
    """The email's text: the facts, one per line."""
    lines = [
        f"relay: {data['summary']}",
        "",
        f"status: {data['status']}",
        f"condition: {data['condition']}",
        f"at: {data['at']}",
    ]
    if data["reason"]:
        lines.append(f"reason: {data['reason']}")
    if data["submissions"]:
        lines += ["", "submissions (id, form, state, reason):"]
        lines += [
            f"- {s['id']}  {s['form']}  {s['state']}  {s['reason'] or '-'}\n  {s['link']}"
            for s in data["submissions"]
        ]
        if data["more"]:
            lines.append(f"- and {data['more']} more")
    lines += ["", f"Open the delivery log: {data['admin']}", ""]
    return "\n".join(lines)


class Alerter:
    """The watch of one process: `start()`, then `stop()` at shutdown; `check_once()` is
    one look (the loop's unit, exposed for tests)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        transport: Transport,
        *,
        clock: Clock,
        sender: str,
        domain: str,
        metrics: Metrics | None = None,
        dispatcher: Paused | None = None,
        housekeeper: Failing | None = None,
        reconciler: Failing | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.transport = transport
        self.clock = clock
        self.sender = sender
        self.domain = domain
        self.metrics = metrics
        self.dispatcher = dispatcher
        self.housekeeper = housekeeper
        self.reconciler = reconciler
        self.policy = AlertPolicy(repeat=timedelta(minutes=settings.alert_repeat_minutes))
        self.sent: list[Alert] = []
        self._since: datetime | None = None
        self._seen: set[str] = set()
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._since = self.clock()
        if self.settings.alert_webhook_url:
            import httpx  # only with a webhook to call: relay without one never loads it

            self._client = httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_SECONDS)
        self._task = asyncio.create_task(self._loop(), name="relay-alerts")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.alert_check_seconds)
            try:
                await self.check_once()
            except Exception as exc:  # noqa: BLE001 - the watch must outlive a bug in one check
                log.error("alert check failed", extra={"error": type(exc).__name__})  # noqa: TRY400 - no traceback: locals may hold SQL parameters

    async def check_once(self) -> list[Alert]:
        """Observe everything once and send what the policy says is due."""
        now = self.clock()
        await self._observe(now)
        due = self.policy.due(now)
        for alert in due:
            await self._send(alert, now)
        return due

    async def _observe(self, now: datetime) -> None:
        paused = self.dispatcher.paused_reason if self.dispatcher is not None else None
        if self.metrics is not None:
            self.metrics.dispatch_paused.set(1 if paused else 0)
        self.policy.observe(DISPATCH_PAUSED, paused, now)
        for condition, task in (
            (HOUSEKEEPING_FAILED, self.housekeeper),
            (RECONCILIATION_FAILED, self.reconciler),
        ):
            self.policy.observe(condition, task.last_error if task is not None else None, now)
        try:
            stats = await self.store.read(queue_stats())
            found = await self.store.read(failed_since(self._since or now, not_reason=ERASED))
        except StoreUnavailable as exc:
            log.warning("alert check cannot read the database", extra={"error": str(exc)})
            return
        limit = self.settings.ready_max_queue_age_seconds
        age = stats.oldest_age(now)
        stale = f"the oldest waiting message is {int(age)} s old (limit {limit} s)"
        self.policy.observe(QUEUE_STALE, stale if age > limit else None, now)
        newest = max((at for _, at in found), default=None)
        fresh = [f for f, _ in found if f.submission_id not in self._seen]
        if newest is not None:
            self._seen = {f.submission_id for f, at in found if at == newest}
            self._since = newest
        self.policy.failed(fresh)

    async def _send(self, alert: Alert, now: datetime) -> None:
        data = payload(alert, self.settings, now)
        self.sent.append(alert)
        log.warning(
            "ALERT %s: %s",
            alert.status,
            alert.summary,
            extra={"condition": alert.condition, "count": len(alert.failures) + alert.more},
        )
        if self.settings.alert_email:
            await self._email(alert, data)
        if self._client is not None and self.settings.alert_webhook_url:
            await self._post(data)

    async def _email(self, alert: Alert, data: dict[str, Any]) -> None:
        assert self.settings.alert_email is not None  # noqa: S101 - checked by the caller
        alert_id = f"alert-{uuid.uuid4()}"
        text = text_of(data)
        email = RenderedEmail(
            submission_id=alert_id,
            form_id=ALERT_FORM,
            message_id=f"<{alert_id}@{self.domain}>",
            sender=self.sender,
            to=(self.settings.alert_email,),
            reply_to=self.sender,
            subject=alert.subject,
            text=text,
            html=f"<pre>{html.escape(text)}</pre>",
        )
        try:
            result = await self.transport.send(email)
        except Exception as exc:  # noqa: BLE001 - an alert must never stop relay
            result = None
            log.error("alert email not sent", extra={"error": type(exc).__name__})  # noqa: TRY400 - no payload in logs
        if result is not None and not isinstance(result, Accepted):
            log.error("alert email not sent", extra={"error": result.error})

    async def _post(self, data: dict[str, Any]) -> None:
        assert self._client is not None  # noqa: S101 - checked by the caller
        assert self.settings.alert_webhook_url is not None  # noqa: S101 - same
        import httpx  # loaded by start() with the client

        try:
            response = await self._client.post(self.settings.alert_webhook_url, json=data)
        except httpx.HTTPError as exc:
            log.error("alert webhook not reached", extra={"error": type(exc).__name__})  # noqa: TRY400 - the URL may hold a token
            return
        if response.status_code >= 300:
            log.error("alert webhook refused", extra={"status": response.status_code})
