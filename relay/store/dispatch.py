"""The dispatcher's side of the submissions table: claim with a lease, record, release, wipe.

Why leases: a row being sent is `sending`, owned by one worker until `lease_expires_at`. Two
workers never hold the same row (on PostgreSQL the claim locks with FOR UPDATE SKIP LOCKED; on
SQLite the single group writer serialises claims), and a crashed worker's rows become
claimable again once the lease expires. Every outcome is written only while the worker still
owns the lease, together with its row in delivery_attempts, in one transaction.

These are synchronous Core jobs of a `Connection`: run them with Store.write / Store.read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from relay import states
from relay.store.tables import delivery_attempts, submissions

#: delivery_attempts.outcome values. "ambiguous" and "interrupted" mean the message may have
#: reached the provider: the next attempt asks the lookup (if any) before sending again.
ACCEPTED = "accepted"
FOUND = "found"  # an earlier ambiguous attempt turned out accepted: not sent again
RETRY = "retry"
AMBIGUOUS = "ambiguous"
INTERRUPTED = "interrupted"
FAILED = "failed"
DEAD = "dead"
PAUSED = "paused"
MAYBE_SENT = (AMBIGUOUS, INTERRUPTED)


@dataclass(frozen=True)
class Claimed:
    """A row this worker now owns until its lease expires: what rendering and sending need."""

    id: str
    form_id: str
    received_at: datetime
    legal_basis: str
    notice_version: str
    consent_given: bool
    consent_wording_version: str | None
    body_enc: bytes | None
    attempts: int  # including this one
    first_attempt_at: datetime
    maybe_sent: bool  # an earlier attempt may have reached the provider


@dataclass(frozen=True)
class Attempt:
    """One row of the delivery log: no personal data, only outcome, status, time and reason."""

    at: datetime
    outcome: str
    http_status: int | None = None
    duration_ms: int | None = None
    error: str | None = None


def _due(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(submissions.c.state.in_(states.DUE), submissions.c.next_attempt_at <= now),
        and_(submissions.c.state == states.SENDING, submissions.c.lease_expires_at <= now),
    )


def claim(
    owner: str, now: datetime, lease: timedelta, limit: int
) -> Callable[[Connection], list[Claimed]]:
    """Take up to `limit` due rows (oldest first), or rows whose lease expired, for `owner`."""

    def job(conn: Connection) -> list[Claimed]:
        picked = conn.execute(
            select(submissions.c.id, submissions.c.state)
            .where(_due(now))
            .order_by(submissions.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if not picked:
            return []
        ids = [row.id for row in picked]
        taken_over = {row.id for row in picked if row.state == states.SENDING}
        conn.execute(
            update(submissions)
            .where(submissions.c.id.in_(ids))
            .values(
                state=states.SENDING,
                lease_owner=owner,
                lease_expires_at=now + lease,
                attempts=submissions.c.attempts + 1,
                first_attempt_at=func.coalesce(submissions.c.first_attempt_at, now),
                updated_at=now,
            )
        )
        maybe_sent = taken_over | _last_attempt_maybe_sent(conn, ids)
        rows = conn.execute(select(submissions).where(submissions.c.id.in_(ids))).all()
        claimed = [
            Claimed(
                id=r.id,
                form_id=r.form_id,
                received_at=r.received_at,
                legal_basis=r.legal_basis,
                notice_version=r.notice_version,
                consent_given=r.consent_given,
                consent_wording_version=r.consent_wording_version,
                body_enc=r.body_enc,
                attempts=r.attempts,
                first_attempt_at=r.first_attempt_at,
                maybe_sent=r.id in maybe_sent,
            )
            for r in rows
        ]
        claimed.sort(key=lambda c: ids.index(c.id))
        return claimed

    return job


def _last_attempt_maybe_sent(conn: Connection, ids: list[str]) -> set[str]:
    latest = (
        select(func.max(delivery_attempts.c.id))
        .where(delivery_attempts.c.submission_id.in_(ids))
        .group_by(delivery_attempts.c.submission_id)
    )
    rows = conn.execute(
        select(delivery_attempts.c.submission_id).where(
            delivery_attempts.c.id.in_(latest), delivery_attempts.c.outcome.in_(MAYBE_SENT)
        )
    ).all()
    return {row.submission_id for row in rows}


def _owned(submission_id: str, owner: str) -> ColumnElement[bool]:
    return and_(
        submissions.c.id == submission_id,
        submissions.c.state == states.SENDING,
        submissions.c.lease_owner == owner,
    )


def _record(conn: Connection, submission_id: str, attempt: Attempt) -> None:
    conn.execute(
        insert(delivery_attempts).values(
            submission_id=submission_id,
            attempted_at=attempt.at,
            outcome=attempt.outcome,
            http_status=attempt.http_status,
            duration_ms=attempt.duration_ms,
            error=attempt.error,
        )
    )


def _finish(
    submission_id: str, owner: str, attempt: Attempt, **values: object
) -> Callable[[Connection], bool]:
    """Update the row (if this worker still owns it) and log the attempt, in one transaction.

    Returns False when the lease was lost (it expired and another worker took the row): the
    outcome is then not written, since the row now belongs to that worker.
    """

    def job(conn: Connection) -> bool:
        result = conn.execute(
            update(submissions)
            .where(_owned(submission_id, owner))
            .values(lease_owner=None, lease_expires_at=None, updated_at=attempt.at, **values)
        )
        if not result.rowcount:
            return False
        _record(conn, submission_id, attempt)
        return True

    return job


def mark_accepted(
    submission_id: str, owner: str, message_id: str, attempt: Attempt
) -> Callable[[Connection], bool]:
    """The provider took it: `accepted`, with its message id; the body waits for finality."""
    return _finish(
        submission_id,
        owner,
        attempt,
        state=states.ACCEPTED,
        provider_message_id=message_id,
        next_attempt_at=None,
        last_error=None,
    )


def mark_retry(
    submission_id: str, owner: str, at: datetime, attempt: Attempt
) -> Callable[[Connection], bool]:
    """A transient failure: `retrying`, due again at `at`."""
    return _finish(
        submission_id,
        owner,
        attempt,
        state=states.RETRYING,
        next_attempt_at=at,
        last_error=attempt.error,
    )


def mark_final(
    submission_id: str, owner: str, state: str, attempt: Attempt
) -> Callable[[Connection], bool]:
    """`failed` (refused for good) or `dead` (too old to retry): final; the body is kept for
    review (an admin may fix and retry) until retention removes it."""
    return _finish(
        submission_id,
        owner,
        attempt,
        state=state,
        next_attempt_at=None,
        final_at=attempt.at,
        last_error=attempt.error,
    )


def release(
    submission_id: str, owner: str, attempt: Attempt | None = None
) -> Callable[[Connection], bool]:
    """Give a claimed row back without it counting as an attempt (shutdown, paused dispatch).

    If `attempt` is given it is logged (a credentials fault, an interrupted send) but the
    attempt counter goes back down: the message was not at fault. Due again at once.
    """

    def job(conn: Connection) -> bool:
        row = conn.execute(
            select(submissions.c.attempts).where(_owned(submission_id, owner))
        ).first()
        if row is None:
            return False
        attempts = max(0, row.attempts - 1)
        values: dict[str, object] = {
            "state": states.QUEUED if attempts == 0 else states.RETRYING,
            "attempts": attempts,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        if attempts == 0:
            values["first_attempt_at"] = None  # the max age counts from a real attempt
        if attempt is not None:
            values["updated_at"] = attempt.at
            values["last_error"] = attempt.error
            _record(conn, submission_id, attempt)
        conn.execute(update(submissions).where(submissions.c.id == submission_id).values(values))
        return True

    return job


def wipe_body(submission_id: str, now: datetime) -> Callable[[Connection], bool]:
    """Forget the encrypted message of one submission (delivery final); the log row stays.

    For the webhooks: call it when Mailgun reports the message delivered. Returns whether a
    body was there to wipe.
    """

    def job(conn: Connection) -> bool:
        result = conn.execute(
            update(submissions)
            .where(submissions.c.id == submission_id, submissions.c.body_enc.is_not(None))
            .values(body_enc=None, body_wiped_at=now, updated_at=now)
        )
        return bool(result.rowcount)

    return job


def wipe_bodies_due(now: datetime, older_than: timedelta) -> Callable[[Connection], int]:
    """Wipe bodies whose delivery is final: `delivered`, or `accepted` longer than `older_than`
    ago (the bounded time: we stop waiting for a delivered event). Returns how many."""
    cutoff = now - older_than
    accepted_before = exists().where(
        delivery_attempts.c.submission_id == submissions.c.id,
        delivery_attempts.c.outcome.in_((ACCEPTED, FOUND)),
        delivery_attempts.c.attempted_at <= cutoff,
    )

    def job(conn: Connection) -> int:
        result = conn.execute(
            update(submissions)
            .where(
                submissions.c.body_enc.is_not(None),
                or_(
                    submissions.c.state == states.DELIVERED,
                    and_(submissions.c.state == states.ACCEPTED, accepted_before),
                ),
            )
            .values(body_enc=None, body_wiped_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)

    return job


def counts_by_state() -> Callable[[Connection], dict[str, int]]:
    """How many submissions are in each state (the bench and `relay worker` report these)."""

    def query(conn: Connection) -> dict[str, int]:
        rows = conn.execute(
            select(submissions.c.state, func.count()).group_by(submissions.c.state)
        ).all()
        return {row[0]: int(row[1]) for row in rows}

    return query
