"""Recording delivery outcomes: batched writes, and the one log line per attempt.

Why batched: one dispatcher finishes hundreds of sends a second; writing each outcome in its
own job cost more than the sends. Log lines carry ids, states and statuses, never personal
data (the error texts are transports' own, which hold statuses and provider reasons only).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from relay import states
from relay.metrics import Metrics
from relay.store import Store
from relay.store import dispatch as db
from relay.store.deliveries import Recorded

log = logging.getLogger("relay.dispatch")
events_log = logging.getLogger("relay.events")


class OutcomeWriter:
    """Collects finished attempts and writes them together (db.finish).

    A batch is written when no other send is in flight (nobody else will report soon), when
    the dispatcher claims (`flush`: the outcomes share the claim's transaction), or after
    `linger` seconds at most. One transaction costs about as much as twenty rows in it.
    """

    def __init__(
        self, store: Store, *, busy: Callable[[], bool] = lambda: False, linger: float = 0.05
    ) -> None:
        self._store = store
        self._busy = busy
        self._linger = linger
        self._pending: list[tuple[db.Outcome, asyncio.Future[bool]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._writes: set[asyncio.Task[None]] = set()

    async def write(self, outcome: db.Outcome) -> bool:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._pending.append((outcome, future))
        if not self._busy():
            self.flush()
        elif self._timer is None:
            self._timer = loop.call_later(self._linger, self.flush)
        return await asyncio.shield(future)

    def flush(self) -> None:
        """Write what is pending now, in the next transaction of the store's writer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        task = asyncio.create_task(self._write(batch))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, batch: list[tuple[db.Outcome, asyncio.Future[bool]]]) -> None:
        try:
            owned = await self._store.write(db.finish([outcome for outcome, _ in batch]))
        except Exception as exc:  # noqa: BLE001 - StoreUnavailable, or a bug: each waiter gets it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), mine in zip(batch, owned, strict=True):
            if not future.done():
                future.set_result(mine)


def log_attempt(
    row: db.Claimed,
    state: str,
    attempt: db.Attempt,
    next_attempt_at: datetime | None = None,
) -> None:
    """One line per attempt (the canonical line): `dead` is an ALERT, `failed` a warning."""
    extra: dict[str, object] = {
        "submission_id": row.id,
        "form": row.form_id,
        "state": state,
        "attempt": row.attempts,
        "outcome": attempt.outcome,
        "status": attempt.http_status,
        "duration_ms": attempt.duration_ms,
    }
    if attempt.error:
        extra["error"] = attempt.error
    if next_attempt_at is not None:
        extra["next_attempt_at"] = next_attempt_at.isoformat()
    if state == states.DEAD:
        log.error("ALERT: delivery given up", extra=extra)
    elif state == states.FAILED:
        log.warning("delivery failed", extra=extra)
    else:
        log.info("delivery attempt", extra=extra)


def provider_transition(result: Recorded, event: str, source: str, metrics: Metrics | None) -> None:
    """The one hook for state changes Mailgun's events cause (webhook or reconciliation).

    Counts moves to `failed` (and delayed bounces: delivered, then bounced) and writes one
    warning line with ids, states and the redacted reason. Alerting on `failed` hooks in
    here; the dispatcher's own `failed`/`dead` go through `log_attempt`.
    """
    if not result.moved or result.state != states.FAILED:
        return
    if metrics is not None:
        metrics.provider_failures.labels(event, source).inc()
        if result.delayed_bounce:
            metrics.delayed_bounces.labels(source).inc()
    message = "delivered, then bounced" if result.delayed_bounce else "delivery failed"
    events_log.warning(
        message,
        extra={
            "submission_id": result.submission_id,
            "form": result.form_id,
            "state": result.state,
            "previous_state": result.previous,
            "event": event,
            "source": source,
            "error": result.reason,
        },
    )
