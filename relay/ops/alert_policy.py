"""When to alert, and what to say: grouping, rate limit and resolution — pure, no I/O.

Why a policy of its own: an outage can fail thousands of submissions and keep a condition
true for hours; the person on call must get a few messages, not thousands, and hear when it
is over. The watch (relay.ops.alerts) feeds observations in and sends what `due()` returns.

- A *condition* (dispatch paused, stale queue, retention or reconciliation failing) fires
  once when it starts, and resolves once when it clears, if its firing was sent. A condition
  that flaps fires again only after `repeat` has passed since its last firing.
- *Failures* (submissions that became `failed` or `dead`) are grouped: the first one is sent
  at once, the next ones wait for `repeat` to pass and go out together, listed up to
  `max_listed` with a count of the rest.

Alerts hold ids, form names, states and provider reasons only: never personal data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

FAILURES = "submissions_failed"
DISPATCH_PAUSED = "dispatch_paused"
QUEUE_STALE = "queue_stale"
HOUSEKEEPING_FAILED = "housekeeping_failed"
RECONCILIATION_FAILED = "reconciliation_failed"

#: What each condition means, as the first words of its alert.
TITLES = {
    FAILURES: "submissions failed",
    DISPATCH_PAUSED: "dispatch paused: Mailgun refuses the configuration",
    QUEUE_STALE: "messages waiting too long to be sent",
    HOUSEKEEPING_FAILED: "retention (the Housekeeper) is failing",
    RECONCILIATION_FAILED: "reconciliation with Mailgun's logs is failing",
}
CONDITIONS = (DISPATCH_PAUSED, QUEUE_STALE, HOUSEKEEPING_FAILED, RECONCILIATION_FAILED)


@dataclass(frozen=True)
class Failure:
    """One submission that became `failed` or `dead`: its ids and the reason, no content."""

    submission_id: str
    form_id: str
    state: str
    reason: str | None


@dataclass(frozen=True)
class Alert:
    """One message to send (by email and to the webhook)."""

    status: Literal["firing", "resolved"]
    condition: str
    summary: str
    reason: str | None = None
    failures: tuple[Failure, ...] = ()
    more: int = 0  # failures not listed

    @property
    def subject(self) -> str:
        word = "ALERT" if self.status == "firing" else "RESOLVED"
        return f"[relay] {word}: {self.summary}"


@dataclass
class _Open:
    problem: str
    since: datetime
    notified: bool = False


@dataclass
class AlertPolicy:
    """The state of the alerts of one process: open conditions and failures not yet sent."""

    repeat: timedelta
    max_listed: int = 20
    _open: dict[str, _Open] = field(default_factory=dict)
    _last_fired: dict[str, datetime] = field(default_factory=dict)
    _resolved: list[Alert] = field(default_factory=list)
    _pending: list[Failure] = field(default_factory=list)
    _unlisted: int = 0

    def observe(self, condition: str, problem: str | None, now: datetime) -> None:
        """The condition is true (`problem` says why) or not (None) at `now`."""
        if condition not in CONDITIONS:
            msg = f"unknown alert condition {condition!r}"
            raise ValueError(msg)
        current = self._open.get(condition)
        if problem is not None:
            if current is None:
                self._open[condition] = _Open(problem, now)
            else:
                current.problem = problem
            return
        if current is None:
            return
        del self._open[condition]
        if current.notified:
            minutes = max(1, round((now - current.since).total_seconds() / 60))
            summary = f"{TITLES[condition]} (cleared after about {minutes} min)"
            self._resolved.append(Alert("resolved", condition, summary, current.problem))

    def failed(self, failures: Iterable[Failure]) -> None:
        """Submissions that just became `failed` or `dead`."""
        for failure in failures:
            if len(self._pending) < self.max_listed:
                self._pending.append(failure)
            else:
                self._unlisted += 1

    def due(self, now: datetime) -> list[Alert]:
        """The alerts to send now; each is returned once."""
        out, self._resolved = self._resolved, []
        for condition, state in self._open.items():
            if state.notified or not self._may_fire(condition, now):
                continue
            state.notified = True
            self._last_fired[condition] = now
            out.append(Alert("firing", condition, TITLES[condition], state.problem))
        if self._pending and self._may_fire(FAILURES, now):
            out.append(self._failures_alert())
            self._last_fired[FAILURES] = now
            self._pending, self._unlisted = [], 0
        return out

    def _may_fire(self, condition: str, now: datetime) -> bool:
        last = self._last_fired.get(condition)
        return last is None or now - last >= self.repeat

    def _failures_alert(self) -> Alert:
        total = len(self._pending) + self._unlisted
        noun = "submission" if total == 1 else "submissions"
        summary = f"{total} {noun} not delivered"
        return Alert("firing", FAILURES, summary, None, tuple(self._pending), self._unlisted)
