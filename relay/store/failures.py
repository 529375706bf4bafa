"""The query the alerts watch runs: submissions that became `failed` or `dead` lately."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.engine import Connection

from relay import states
from relay.ops.alert_policy import Failure
from relay.store.tables import submissions


def failed_since(
    since: datetime, *, not_reason: str, limit: int = 1000
) -> Callable[[Connection], list[tuple[Failure, datetime]]]:
    """Failures final at or after `since` (oldest first) with their final time, without test
    sends and without rows whose reason is `not_reason` (an erasure)."""

    def query(conn: Connection) -> list[tuple[Failure, datetime]]:
        rows = conn.execute(
            select(
                submissions.c.id,
                submissions.c.form_id,
                submissions.c.state,
                submissions.c.last_error,
                submissions.c.final_at,
            )
            .where(
                submissions.c.state.in_((states.FAILED, states.DEAD)),
                submissions.c.final_at >= since,
                submissions.c.test.is_(False),
                or_(submissions.c.last_error.is_(None), submissions.c.last_error != not_reason),
            )
            .order_by(submissions.c.final_at)
            .limit(limit)
        ).all()
        return [(Failure(r.id, r.form_id, r.state, r.last_error), r.final_at) for r in rows]

    return query
