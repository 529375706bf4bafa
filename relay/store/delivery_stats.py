"""Counts over the delivery log for metrics, readiness and the admin page — no personal data.

Computed at scrape or page time from the submissions table (indexed by state), so nothing
has to be kept in step with the dispatcher.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from relay import states
from relay.clock import as_utc
from relay.store.tables import submissions

WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}


def counts_by_state(now: datetime) -> Callable[[Connection], dict[str, dict[str, int]]]:
    """{"24h": {state: n}, "7d": {state: n}} of submissions received in each window."""

    def query(conn: Connection) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for name, span in WINDOWS.items():
            rows = conn.execute(
                select(submissions.c.state, func.count())
                .where(submissions.c.received_at >= now - span)
                .group_by(submissions.c.state)
            )
            counts = dict.fromkeys(states.ALL, 0)
            counts.update({r[0]: int(r[1]) for r in rows})
            out[name] = counts
        return out

    return query


@dataclass(frozen=True)
class QueueStats:
    """What metrics and readiness need: rows per state, queue depth, oldest due message."""

    by_state: dict[str, int]
    depth: int
    oldest_queued_at: datetime | None

    def oldest_age(self, now: datetime) -> float:
        return (
            0.0 if self.oldest_queued_at is None else (now - self.oldest_queued_at).total_seconds()
        )


def queue_stats() -> Callable[[Connection], QueueStats]:
    def query(conn: Connection) -> QueueStats:
        by_state = dict.fromkeys(states.ALL, 0)
        for r in conn.execute(
            select(submissions.c.state, func.count()).group_by(submissions.c.state)
        ):
            by_state[r[0]] = int(r[1])
        waiting = (*states.DUE, states.SENDING)
        oldest = conn.execute(
            select(func.min(submissions.c.received_at)).where(submissions.c.state.in_(waiting))
        ).scalar()
        depth = sum(by_state.get(s, 0) for s in waiting)
        return QueueStats(by_state, depth, None if oldest is None else as_utc(oldest))

    return query
