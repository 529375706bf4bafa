"""Retention that runs by itself: the Housekeeper purges at start and then every interval.

Self-contained so any long-running process can own one (`relay serve` starts it in its
lifespan; the worker can too): `Housekeeper(store, keyring, settings, clock)`, then
`await start()` and, at shutdown, `await stop()`. Several instances may each run it: the purge
is idempotent, and every rule is a plain DELETE/UPDATE by date.

Also here: storing the forms' consent wordings once per (form, version) at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import datetime, timedelta

from relay.clock import Clock
from relay.config import FormConfig, Settings
from relay.crypto import KeyRing
from relay.errors import ConfigError, RelayError
from relay.mail.eml import remove_expired
from relay.metrics import Metrics
from relay.minimise.retention import Bounds, PurgeReport, body_cutoff, purge
from relay.store import Store
from relay.store.consent import Wording, register_wordings_job
from relay.store.dispatch import wipe_bodies_due

log = logging.getLogger("relay.housekeeping")


def bounds_of(settings: Settings) -> Bounds:
    """The configurable retention bounds, from the settings."""
    return Bounds(
        body_days=settings.body_retention_days,
        audit_months=settings.audit_retention_months,
        request_years=settings.request_log_years,
        idempotency_hours=settings.idempotency_ttl_hours,
        quarantine_days=settings.quarantine_retention_days,
    )


def wordings_of(forms: dict[str, FormConfig]) -> list[Wording]:
    """Every marketing-consent wording the forms file declares."""
    return [
        Wording(form.id, form.marketing_consent.wording_version, form.marketing_consent.wording)
        for form in forms.values()
        if form.marketing_consent is not None
    ]


async def register_wordings(store: Store, forms: dict[str, FormConfig], now: datetime) -> None:
    """Store new wordings; refuse to start if a published version's text was changed."""
    problems = await store.write(register_wordings_job(wordings_of(forms), now))
    if problems:
        raise ConfigError("\n".join(problems))


class Housekeeper:
    """A background task that applies the retention rules at least once a day."""

    def __init__(
        self,
        store: Store,
        keyring: KeyRing,
        settings: Settings,
        clock: Clock,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._keyring = keyring  # kept for the rules that need to open data (none yet)
        self._metrics = metrics
        self._interval = settings.housekeeping_interval_seconds
        self._mail_dir = settings.var_dir / "mail"
        self._bounds = bounds_of(settings)
        self._body_retention = timedelta(days=settings.body_retention_days)
        self._delivered_hold = timedelta(hours=settings.delivered_body_hours)
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self.last_report: PurgeReport | None = None
        self.last_error: str | None = None  # read by the alerts watch
        self.last_mail_files = 0

    async def run_once(self) -> PurgeReport:
        """One purge now; its counts go to the audit log and to one log line."""
        now = self._clock()
        report = await purge(self._store, now, bounds=self._bounds, actor="housekeeper")
        self.last_report = report
        counts: dict[str, int] = report.as_dict()
        # Delivered bodies outlive delivery by the bounce window only (RELAY_DELIVERED_BODY_HOURS)
        # whether or not a dispatcher runs in this process.
        counts["delivered_bodies"] = await self._store.write(
            wipe_bodies_due(now, self._body_retention, self._delivered_hold)
        )
        cutoff = body_cutoff(now, self._bounds.body_days)
        self.last_mail_files = await asyncio.to_thread(remove_expired, self._mail_dir, cutoff)
        counts["mail_files"] = self.last_mail_files
        if self._metrics is not None:
            for kind, count in counts.items():
                if isinstance(count, int) and count:
                    self._metrics.purged.labels(kind).inc(count)
        log.info("purge done", extra={"counts": json.dumps(counts)})
        if self._metrics is not None:
            self._metrics.task_last_success.labels("housekeeping").set(self._clock().timestamp())
        return report

    async def _safe_run(self) -> None:
        try:
            await self.run_once()
        except RelayError as exc:
            self.last_error = str(exc)
            log.warning("purge failed (%s); will retry at the next interval", exc)
        except Exception as exc:  # noqa: BLE001 - the loop must outlive a bug in one rule
            self.last_error = f"purge raised {type(exc).__name__}"
            log.error(  # noqa: TRY400 - no traceback: its locals could hold SQL parameters
                "purge failed (%s); will retry at the next interval", type(exc).__name__
            )
        else:
            self.last_error = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self._safe_run()

    async def start(self) -> None:
        """Purge once now (so a restart after downtime catches up), then every interval."""
        if self._task is None:
            await self._safe_run()
            self._task = asyncio.create_task(self._loop(), name="relay-housekeeper")

    async def stop(self) -> None:
        """Stop the loop (a purge in progress is cancelled: its transaction rolls back)."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
