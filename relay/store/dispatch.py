"""The dispatcher's side of the submissions table: claim with a lease, record, release, wipe.

Why leases: a row being sent is `sending`, owned by one worker until `lease_expires_at`. Two
workers never hold the same row (on PostgreSQL the claim locks with FOR UPDATE SKIP LOCKED; on
SQLite the single group writer serialises claims), and a crashed worker's rows become
claimable again once the lease expires. Every outcome is written only while the worker still
owns the lease, together with its row in delivery_attempts, in one transaction.

These are synchronous Core jobs of a `Connection`: run them with Store.write / Store.read.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, Update, and_, bindparam, exists, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.elements import ColumnElement

from relay import states
from relay.clock import as_utc
from relay.store.tables import UTC_TS, delivery_attempts, submissions

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
#: logged when a row's lease expired while `sending` (its worker crashed or hung mid-send) and
#: another worker claimed it: the timeline shows the lost attempt, which may have been sent
TAKEN_OVER = "taken_over"
MAYBE_SENT = (AMBIGUOUS, INTERRUPTED, TAKEN_OVER)


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
    maybe_sent_at: datetime | None = None  # when that attempt (or the lost claim) began
    taken_over_from: str | None = None  # the worker whose lease expired mid-send, if any

    @property
    def taken_over(self) -> bool:
        """Its lease expired mid-send: another worker's send may have reached the provider."""
        return self.taken_over_from is not None


@dataclass(frozen=True)
class Attempt:
    """One row of the delivery log: no personal data, only outcome, status, time and reason."""

    at: datetime
    outcome: str
    http_status: int | None = None
    duration_ms: int | None = None
    error: str | None = None


_CLAIMED_COLUMNS = [
    submissions.c[name]
    for name in (
        "id",
        "form_id",
        "received_at",
        "legal_basis",
        "notice_version",
        "consent_given",
        "consent_wording_version",
        "body_enc",
        "attempts",
        "first_attempt_at",
    )
]


def _pick(state: str) -> Select[Any]:
    """Due rows of one state, oldest first, straight off ix_submissions_due (state,
    next_attempt_at): the index gives them in order, so a claim reads `limit` rows, not the
    whole backlog (one query with an OR over the states read and sorted every due row)."""
    c = submissions.c
    expired = c.lease_expires_at if state == states.SENDING else c.next_attempt_at
    return (
        select(c.id, c.state, c.updated_at, c.lease_owner, c.next_attempt_at)
        .where(c.state == state, expired <= bindparam("now", type_=UTC_TS))
        .order_by(c.next_attempt_at)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Built once: a statement object used again hits SQLAlchemy's compiled cache with its cache
#: key memoised, so a claim or an outcome costs parameter processing, not statement building.
_PICKS = [_pick(state) for state in (states.SENDING, *states.DUE)]
_TAKE = (
    update(submissions)
    .where(submissions.c.id.in_(bindparam("ids", expanding=True)))
    .values(
        state=states.SENDING,
        lease_owner=bindparam("owner"),
        lease_expires_at=bindparam("until", type_=UTC_TS),
        attempts=submissions.c.attempts + 1,
        first_attempt_at=func.coalesce(
            submissions.c.first_attempt_at, bindparam("now", type_=UTC_TS)
        ),
        updated_at=bindparam("now", type_=UTC_TS),
    )
    .returning(*_CLAIMED_COLUMNS)
)
_LATEST_ATTEMPTS = select(
    delivery_attempts.c.submission_id, delivery_attempts.c.attempted_at
).where(
    delivery_attempts.c.id.in_(
        select(func.max(delivery_attempts.c.id))
        .where(delivery_attempts.c.submission_id.in_(bindparam("ids", expanding=True)))
        .group_by(delivery_attempts.c.submission_id)
        .scalar_subquery()
    ),
    delivery_attempts.c.outcome.in_(MAYBE_SENT),
)
_INSERT_ATTEMPTS = insert(delivery_attempts)
_OWNERS = (
    select(submissions.c.id, submissions.c.lease_owner)
    .where(
        submissions.c.id.in_(bindparam("ids", expanding=True)),
        submissions.c.state == states.SENDING,
    )
    .with_for_update()
)


def claim(
    owner: str, now: datetime, lease: timedelta, limit: int
) -> Callable[[Connection], list[Claimed]]:
    """Take up to `limit` due rows (oldest first), or rows whose lease expired, for `owner`."""

    def job(conn: Connection) -> list[Claimed]:
        candidates = [
            row for pick in _PICKS for row in conn.execute(pick, {"now": now, "limit": limit}).all()
        ]
        picked = sorted(candidates, key=_oldest_first)[:limit]
        if not picked:
            return []
        ids = [row.id for row in picked]
        # a row whose lease expired was being sent when its worker vanished, since its claim
        lost = [row for row in picked if row.state == states.SENDING]
        taken_over = {row.id: row.lease_owner or "?" for row in lost}
        began = {row.id: row.updated_at for row in lost}
        maybe_sent = {**_last_attempt_maybe_sent(conn, ids), **began}
        if lost:
            _record_takeovers(conn, taken_over, began, owner, now)
        rows = conn.execute(
            _TAKE, {"ids": ids, "owner": owner, "until": now + lease, "now": now}
        ).all()
        order = {sid: index for index, sid in enumerate(ids)}
        return [
            Claimed(
                **row._asdict(),
                maybe_sent=row.id in maybe_sent,
                maybe_sent_at=_aware(maybe_sent.get(row.id)),
                taken_over_from=taken_over.get(row.id),
            )
            for row in sorted(rows, key=lambda r: order[r.id])
        ]

    return job


def _oldest_first(row: Row[Any]) -> datetime:
    return row.next_attempt_at or _EPOCH  # a row without a due time (none expected): first


def _aware(moment: datetime | None) -> datetime | None:
    return None if moment is None else as_utc(moment)


def _record_takeovers(
    conn: Connection,
    previous: dict[str, str],
    began: dict[str, datetime],
    owner: str,
    now: datetime,
) -> None:
    """One delivery-log line per row taken over, dated when the lost send began (so the
    lookup before a resend waits from then, on this claim and the next)."""
    rows = [
        _attempt_row(
            sid,
            Attempt(
                as_utc(began[sid]),
                TAKEN_OVER,
                error=f"lease of {old} expired mid-send (crashed or stalled); taken over by "
                f"{owner} at {now:%Y-%m-%d %H:%M:%S}Z: the message may have reached Mailgun "
                "already",
            ),
        )
        for sid, old in previous.items()
    ]
    conn.execute(_INSERT_ATTEMPTS, rows)


def _last_attempt_maybe_sent(conn: Connection, ids: list[str]) -> dict[str, datetime]:
    rows = conn.execute(_LATEST_ATTEMPTS, {"ids": ids}).all()
    return {row.submission_id: row.attempted_at for row in rows}


def _owned(submission_id: str, owner: str) -> ColumnElement[bool]:
    return and_(
        submissions.c.id == submission_id,
        submissions.c.state == states.SENDING,
        submissions.c.lease_owner == owner,
    )


def _record(conn: Connection, submission_id: str, attempt: Attempt) -> None:
    conn.execute(insert(delivery_attempts).values(_attempt_row(submission_id, attempt)))


@dataclass(frozen=True)
class Outcome:
    """What one attempt changed: the row's new values and its delivery-log entry."""

    submission_id: str
    owner: str
    attempt: Attempt
    values: tuple[tuple[str, object], ...]


def _attempt_row(submission_id: str, attempt: Attempt) -> dict[str, object]:
    return {
        "submission_id": submission_id,
        "attempted_at": attempt.at,
        "outcome": attempt.outcome,
        "http_status": attempt.http_status,
        "duration_ms": attempt.duration_ms,
        "error": attempt.error,
    }


@dataclass(frozen=True)
class Finish:
    """Write many outcomes in one job: rows still owned are updated and their attempts logged.

    Why batched: one dispatcher finishes hundreds of sends a second, and a statement per row
    cost more than the sends themselves. The owned rows are locked (PostgreSQL), then updated
    and logged with one executemany per kind of outcome. For each outcome, False means the
    lease was lost (it expired and another worker took the row): nothing is written for it,
    since the row now belongs to that worker.
    """

    outcomes: Sequence[Outcome]

    def __call__(self, conn: Connection) -> list[bool]:
        outcomes = self.outcomes
        if not outcomes:
            return []
        owners = dict(conn.execute(_OWNERS, {"ids": [o.submission_id for o in outcomes]}).all())
        owned = [owners.get(o.submission_id) == o.owner for o in outcomes]
        groups: dict[tuple[str, ...], list[dict[str, object]]] = {}
        attempts = []
        for outcome, mine in zip(outcomes, owned, strict=True):
            if not mine:
                continue
            values = {
                "lease_owner": None,
                "lease_expires_at": None,
                "updated_at": outcome.attempt.at,
                **dict(outcome.values),
            }
            params = {f"v_{key}": value for key, value in values.items()}
            params["k_id"] = outcome.submission_id
            groups.setdefault(tuple(sorted(values)), []).append(params)
            attempts.append(_attempt_row(outcome.submission_id, outcome.attempt))
        for keys, rows in groups.items():
            conn.execute(_set_statement(keys), rows)
        if attempts:
            conn.execute(_INSERT_ATTEMPTS, attempts)
        return owned


def finish(outcomes: Sequence[Outcome]) -> Finish:
    """The write job for these outcomes (see Finish)."""
    return Finish(outcomes)


@functools.cache
def _set_statement(keys: tuple[str, ...]) -> Update:
    """UPDATE submissions SET <keys> WHERE id = :k_id, built once per set of columns."""
    return (
        update(submissions)
        .where(submissions.c.id == bindparam("k_id"))
        .values({key: bindparam(f"v_{key}") for key in keys})
    )


def _one(outcome: Outcome) -> Callable[[Connection], bool]:
    def job(conn: Connection) -> bool:
        return finish([outcome])(conn)[0]

    return job


def accepted(submission_id: str, owner: str, message_id: str, attempt: Attempt) -> Outcome:
    """The provider took it: `accepted`, with its message id; the body waits for finality."""
    values = (
        ("state", states.ACCEPTED),
        ("provider_message_id", message_id),
        ("next_attempt_at", None),
        ("last_error", None),
    )
    return Outcome(submission_id, owner, attempt, values)


def retry(submission_id: str, owner: str, at: datetime, attempt: Attempt) -> Outcome:
    """A transient failure: `retrying`, due again at `at`."""
    values = (("state", states.RETRYING), ("next_attempt_at", at), ("last_error", attempt.error))
    return Outcome(submission_id, owner, attempt, values)


def final(submission_id: str, owner: str, state: str, attempt: Attempt) -> Outcome:
    """`failed` (refused for good) or `dead` (too old to retry): final. The body is kept for
    review (an admin may fix and retry) until retention removes it."""
    values = (
        ("state", state),
        ("next_attempt_at", None),
        ("final_at", attempt.at),
        ("last_error", attempt.error),
    )
    return Outcome(submission_id, owner, attempt, values)


def mark_accepted(
    submission_id: str, owner: str, message_id: str, attempt: Attempt
) -> Callable[[Connection], bool]:
    return _one(accepted(submission_id, owner, message_id, attempt))


def mark_retry(
    submission_id: str, owner: str, at: datetime, attempt: Attempt
) -> Callable[[Connection], bool]:
    return _one(retry(submission_id, owner, at, attempt))


def mark_final(
    submission_id: str, owner: str, state: str, attempt: Attempt
) -> Callable[[Connection], bool]:
    return _one(final(submission_id, owner, state, attempt))


def release(
    submission_id: str,
    owner: str,
    attempt: Attempt | None = None,
    *,
    not_before: datetime | None = None,
) -> Callable[[Connection], bool]:
    """Give a claimed row back without it counting as an attempt (shutdown, paused dispatch).

    If `attempt` is given it is logged (a credentials fault, an interrupted send) but the
    attempt counter goes back down: the message was not at fault. Due again at once, or at
    `not_before` (waiting for Mailgun's logs before a possible resend).
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
        if not_before is not None:
            values["next_attempt_at"] = not_before
        if attempt is not None:
            values["updated_at"] = attempt.at
            values["last_error"] = attempt.error
            _record(conn, submission_id, attempt)
        conn.execute(update(submissions).where(submissions.c.id == submission_id).values(values))
        return True

    return job


def wipe_body(submission_id: str, now: datetime) -> Callable[[Connection], bool]:
    """Forget the encrypted message of one submission; the log row stays. Returns whether a
    body was there to wipe."""

    def job(conn: Connection) -> bool:
        result = conn.execute(
            update(submissions)
            .where(submissions.c.id == submission_id, submissions.c.body_enc.is_not(None))
            .values(body_enc=None, body_wiped_at=now, updated_at=now)
        )
        return bool(result.rowcount)

    return job


def wipe_bodies_due(
    now: datetime, older_than: timedelta, delivered_hold: timedelta = timedelta(0)
) -> Callable[[Connection], int]:
    """Wipe bodies whose delivery is settled; returns how many.

    - `delivered` for longer than `delivered_hold` (final_at): Microsoft 365 can accept a
      message and bounce it later (Mailgun's delayed bounce), so the body is kept that long
      for an admin's retry, then wiped;
    - `accepted` longer than `older_than` ago (the bounded time: we stop waiting for an
      outcome). Failed, dead and unknown bodies stay for review until retention removes them.
    """
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
                    and_(
                        submissions.c.state == states.DELIVERED,
                        or_(
                            submissions.c.final_at.is_(None),
                            submissions.c.final_at <= now - delivered_hold,
                        ),
                    ),
                    and_(submissions.c.state == states.ACCEPTED, accepted_before),
                ),
            )
            .values(body_enc=None, body_wiped_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)

    return job
