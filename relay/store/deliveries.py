"""The delivery log: queries and jobs over submissions, delivery_attempts and delivery_events.

Why here: the CLI, the admin pages, the webhook endpoint and reconciliation all ask the same
questions ("what happened to this submission?"); they share these functions. Nothing here
reads or returns personal data: the encrypted body is only ever tested for presence (it is
wiped a bounded while after delivery, see store.dispatch.wipe_bodies_due).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.engine import Connection

from relay import states
from relay.clock import as_utc
from relay.mail.events import ProviderEvent, token_memory, transition
from relay.minimise.redact import redact
from relay.store.tables import audit_log, delivery_attempts, delivery_events, submissions
from relay.store.tables import webhook_tokens as tokens

#: How long single-use webhook tokens are remembered by default (events.token_memory: at
#: least the freshness window plus the future skew, and at least a day).
TOKEN_MEMORY = timedelta(hours=24)
RETRYABLE = (states.FAILED, states.DEAD)


@dataclass(frozen=True)
class DeliveryFilter:
    """The filters of `relay deliveries` and /admin/deliveries."""

    state: str | None = None
    form: str | None = None
    since: datetime | None = None
    limit: int = 100


@dataclass(frozen=True)
class Delivery:
    """One row of the delivery log: ids, form, times and state, never content."""

    id: str
    form_id: str
    received_at: datetime
    state: str
    attempts: int
    last_event: str | None
    last_event_at: datetime | None
    last_error: str | None
    provider_message_id: str | None
    final_at: datetime | None
    body_present: bool
    body_wiped_at: datetime | None
    quarantine_reason: str | None = None  # the spam rules that quarantined it, if any

    @property
    def quarantined(self) -> bool:
        return self.state == states.QUARANTINED

    @property
    def caught_by(self) -> str:
        """`caught: max_links,time_trap` for a submission the spam defence quarantined."""
        return f"caught: {self.quarantine_reason}" if self.quarantine_reason else ""

    def age(self, now: datetime) -> timedelta:
        return now - self.received_at

    @property
    def retryable(self) -> bool:
        return self.state in RETRYABLE and self.body_present


@dataclass(frozen=True)
class Step:
    """One line of a timeline: an attempt, a provider event or an admin action."""

    at: datetime
    kind: str  # attempt | event
    what: str
    detail: str | None
    source: str | None = None


@dataclass(frozen=True)
class Timeline:
    delivery: Delivery
    steps: list[Step] = field(default_factory=list)


_COLUMNS = (
    submissions.c.id,
    submissions.c.form_id,
    submissions.c.received_at,
    submissions.c.state,
    submissions.c.attempts,
    submissions.c.last_event,
    submissions.c.last_event_at,
    submissions.c.last_error,
    submissions.c.provider_message_id,
    submissions.c.final_at,
    submissions.c.body_enc.is_not(None),
    submissions.c.body_wiped_at,
    submissions.c.quarantine_reason,
)


def _delivery(row: tuple[object, ...]) -> Delivery:
    return Delivery(*row)  # type: ignore[arg-type]  # columns are in field order


def list_deliveries(flt: DeliveryFilter) -> Callable[[Connection], list[Delivery]]:
    """Newest first, filtered by state, form and received-since."""

    def query(conn: Connection) -> list[Delivery]:
        stmt = select(*_COLUMNS).order_by(submissions.c.received_at.desc(), submissions.c.id.desc())
        if flt.state:
            stmt = stmt.where(submissions.c.state == flt.state)
        if flt.form:
            stmt = stmt.where(submissions.c.form_id == flt.form)
        if flt.since:
            stmt = stmt.where(submissions.c.received_at >= flt.since)
        return [_delivery(tuple(r)) for r in conn.execute(stmt.limit(flt.limit))]

    return query


def get_delivery(submission_id: str) -> Callable[[Connection], Delivery | None]:
    def query(conn: Connection) -> Delivery | None:
        row = conn.execute(select(*_COLUMNS).where(submissions.c.id == submission_id)).first()
        return None if row is None else _delivery(tuple(row))

    return query


def timeline(submission_id: str) -> Callable[[Connection], Timeline | None]:
    """The submission's row with its attempts and events, oldest first."""

    def query(conn: Connection) -> Timeline | None:
        delivery = get_delivery(submission_id)(conn)
        if delivery is None:
            return None
        steps = [Step(delivery.received_at, "received", "received", None, None)]
        for a in conn.execute(
            select(delivery_attempts).where(delivery_attempts.c.submission_id == submission_id)
        ).mappings():
            status = f"HTTP {a['http_status']}" if a["http_status"] is not None else None
            detail = " - ".join(p for p in (status, a["error"]) if p) or None
            steps.append(Step(a["attempted_at"], "attempt", a["outcome"], detail))
        for e in conn.execute(
            select(delivery_events).where(delivery_events.c.submission_id == submission_id)
        ).mappings():
            what = f"{e['event']}/{e['severity']}" if e["severity"] else e["event"]
            detail = " - ".join(p for p in (e["reason"], e["description"]) if p) or None
            steps.append(Step(e["occurred_at"], "event", what, detail, e["source"]))
        steps.sort(key=lambda s: s.at)
        return Timeline(delivery, steps)

    return query


def find_submission(event: ProviderEvent) -> Callable[[Connection], tuple[str, str, str] | None]:
    """(id, form, state) of the submission an event is about, by our id or Mailgun's id."""

    def query(conn: Connection) -> tuple[str, str, str] | None:
        cols = (submissions.c.id, submissions.c.form_id, submissions.c.state)
        if event.submission_id:
            row = conn.execute(select(*cols).where(submissions.c.id == event.submission_id)).first()
            if row is not None:
                return (row[0], row[1], row[2])
        if event.message_id:
            ids = (event.message_id, f"<{event.message_id}>")
            row = conn.execute(
                select(*cols).where(submissions.c.provider_message_id.in_(ids))
            ).first()
            if row is not None:
                return (row[0], row[1], row[2])
        return None

    return query


@dataclass(frozen=True)
class Recorded:
    """What recording an event did: `recorded`, `duplicate`, `unmatched` or `replayed`.

    `previous` is the state before the event; `state != previous` means the event moved the
    submission (relay.deliver.outcomes.provider_transition reports those). `reason` is the redacted
    cause written to the log when the move is to `failed`.
    """

    verdict: str
    submission_id: str | None = None
    form_id: str | None = None
    state: str | None = None
    previous: str | None = None
    delayed_bounce: bool = False
    reason: str | None = None

    @property
    def moved(self) -> bool:
        return self.verdict == "recorded" and self.state != self.previous


def use_token(conn: Connection, token: str, now: datetime) -> bool:
    """Remember a webhook token; False if it was already used (a replay)."""
    if conn.execute(select(tokens.c.token).where(tokens.c.token == token)).first() is not None:
        return False
    conn.execute(insert(tokens).values(token=token, seen_at=now))
    return True


def record_event(
    event: ProviderEvent,
    now: datetime,
    *,
    source: str,
    token: str | None = None,
    max_age: timedelta | None = None,
) -> Callable[[Connection], Recorded]:
    """The write job for one provider event: single-use token, event row, state change.

    Idempotent by (event id, day) (Mailgun's ids are unique within a day only): the same
    event twice changes nothing, an id reused on another day is a new event. The token is
    remembered for `token_memory(max_age)`. All of it commits together, so a crash never
    leaves a used token without its event. State changes come from events.transition only.
    Its free text is redacted here, whoever parsed it (relay.minimise.redact: the log keeps why, not
    who).
    """
    memory = token_memory(max_age) if max_age is not None else TOKEN_MEMORY
    if event.description is not None:
        event = replace(event, description=redact(event.description) or None)

    def job(conn: Connection) -> Recorded:
        if token is not None:
            if not use_token(conn, token, now):
                return Recorded("replayed")
            # tokens past any freshness window are useless; forgetting them here keeps the
            # table small even where reconciliation (which also purges) is not configured
            conn.execute(delete(tokens).where(tokens.c.seen_at < now - memory))
        match = find_submission(event)(conn)
        if match is None:
            return Recorded("unmatched")
        sid, form_id, current = match
        seen = conn.execute(
            select(delivery_events.c.id).where(delivery_events.c.provider_event_id == event.key)
        ).first()
        if seen is not None:
            return Recorded("duplicate", sid, form_id, current, current)
        conn.execute(
            insert(delivery_events).values(
                submission_id=sid,
                provider_event_id=event.key,
                event=event.event,
                severity=event.severity,
                reason=event.reason,
                description=event.description,
                occurred_at=event.occurred_at,
                recorded_at=now,
                source=source,
            )
        )
        values: dict[str, object] = {
            "last_event": event.label[:32],
            "last_event_at": event.occurred_at,
            "updated_at": now,
        }
        change = transition(current, event)
        state = current
        if change is not None:
            state = change.state
            values.update(state=state, lease_owner=None, lease_expires_at=None)
            if change.final:
                values["final_at"] = now
                values["next_attempt_at"] = None
            if change.last_error is not None:
                values["last_error"] = change.last_error
        conn.execute(update(submissions).where(submissions.c.id == sid).values(**values))
        delayed = change is not None and change.delayed_bounce
        reason = change.last_error if change is not None else None
        return Recorded("recorded", sid, form_id, state, current, delayed, reason)

    return job


def purge_tokens(cutoff: datetime) -> Callable[[Connection], int]:
    """Forget webhook tokens older than `cutoff` (they are past any freshness window)."""

    def job(conn: Connection) -> int:
        return int(conn.execute(delete(tokens).where(tokens.c.seen_at < cutoff)).rowcount or 0)

    return job


@dataclass(frozen=True)
class Requeue:
    """Outcome of a retry request: `requeued`, `not_found`, `not_retryable` or `body_gone`."""

    outcome: str
    state: str | None = None


def requeue(submission_id: str, now: datetime, *, actor: str) -> Callable[[Connection], Requeue]:
    """Put a failed or dead submission back in the queue, while its body still exists.

    The attempt count and max-age clock restart (a fresh delivery); the timeline keeps the
    history and an `requeued` line, and the audit log says who asked.
    """

    def job(conn: Connection) -> Requeue:
        row = conn.execute(
            select(submissions.c.state, submissions.c.body_enc.is_not(None)).where(
                submissions.c.id == submission_id
            )
        ).first()
        if row is None:
            return Requeue("not_found")
        state, has_body = row[0], bool(row[1])
        if state not in RETRYABLE:
            return Requeue("not_retryable", state)
        if not has_body:
            return Requeue("body_gone", state)
        conn.execute(
            update(submissions)
            .where(submissions.c.id == submission_id)
            .values(
                state=states.QUEUED,
                attempts=0,
                next_attempt_at=now,
                first_attempt_at=None,
                final_at=None,
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
            )
        )
        conn.execute(
            insert(delivery_events).values(
                submission_id=submission_id,
                event="requeued",
                description=f"by {actor}",
                occurred_at=now,
                recorded_at=now,
                source="admin",
            )
        )
        write_audit(conn, now, actor, "delivery.retry", submission_id)
        return Requeue("requeued", states.QUEUED)

    return job


def write_audit(
    conn: Connection, now: datetime, actor: str, action: str, target: str | None, detail: str = ""
) -> None:
    """One audit line: who, when, what, which reference — never the data itself."""
    conn.execute(
        insert(audit_log).values(
            at=now, actor=actor[:128], action=action[:64], target=target, detail=detail or None
        )
    )


def audit(
    actor: str, action: str, now: datetime, target: str | None = None, detail: str = ""
) -> Callable[[Connection], None]:
    def job(conn: Connection) -> None:
        write_audit(conn, now, actor, action, target, detail)

    return job


def awaiting_confirmation(
    limit: int = 500, *, delivered_since: datetime | None = None
) -> Callable[[Connection], list[tuple[str, datetime, str]]]:
    """(id, received_at, state) of submissions Mailgun accepted but that have no outcome yet,
    and, with `delivered_since`, those delivered since then (a delayed bounce may follow)."""

    def query(conn: Connection) -> list[tuple[str, datetime, str]]:
        wanted = submissions.c.state == states.ACCEPTED
        if delivered_since is not None:
            wanted = or_(
                wanted,
                and_(
                    submissions.c.state == states.DELIVERED,
                    submissions.c.final_at >= delivered_since,
                ),
            )
        rows = conn.execute(
            select(submissions.c.id, submissions.c.received_at, submissions.c.state)
            .where(wanted)
            .order_by(submissions.c.received_at)
            .limit(limit)
        )
        return [(r[0], as_utc(r[1]), r[2]) for r in rows]

    return query


def mark_unknown(submission_id: str, now: datetime) -> Callable[[Connection], bool]:
    """Final `unknown`: Mailgun's logs no longer say what happened; the body stays for review."""

    def job(conn: Connection) -> bool:
        result = conn.execute(
            update(submissions)
            .where(submissions.c.id == submission_id, submissions.c.state == states.ACCEPTED)
            .values(
                state=states.UNKNOWN,
                final_at=now,
                last_error="no delivery outcome in Mailgun's logs within their retention",
                updated_at=now,
            )
        )
        return bool(result.rowcount)

    return job
