"""The audit log (who did what, with counts and references only) and the request register.

Every data-subject action records a request (received, due, completed, who) and one audit
entry. Neither ever holds what was exported, erased or typed: a request points at its person
by keyed hash only, and an audit entry carries an action name, a reference and counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, or_, select, update
from sqlalchemy.engine import Connection

from relay.minimise.retention import request_due
from relay.store.tables import audit_log, subject_requests

DUE_SOON = timedelta(days=7)
#: How the outcome of a refused request starts.
REFUSED = "refused"


def add_entry(
    conn: Connection,
    now: datetime,
    actor: str,
    action: str,
    target: str | None,
    detail: str | None = None,
) -> None:
    """Append one audit entry (inside the caller's transaction)."""
    conn.execute(
        insert(audit_log).values(at=now, actor=actor, action=action, target=target, detail=detail)
    )


@dataclass(frozen=True)
class Request:
    """One row of the data-subject request register."""

    id: int
    kind: str
    received_at: datetime
    due_at: datetime
    completed_at: datetime | None
    actor: str
    outcome: str | None

    def overdue(self, now: datetime) -> bool:
        return self.completed_at is None and self.due_at < now

    @property
    def late(self) -> bool:
        """Completed, but after its due date (art. 12(3)): the register must show it."""
        return self.completed_at is not None and self.completed_at > self.due_at

    @property
    def refused(self) -> bool:
        """Answered with a refusal (the action was refused as asked, the reason recorded)."""
        return (self.outcome or "").startswith(REFUSED)

    def status(self, now: datetime) -> str:
        """open / due soon / OVERDUE / done / done late / refused (/ refused late)."""
        if self.completed_at is None:
            if self.overdue(now):
                return "OVERDUE"
            return "due soon" if self.due_soon(now) else "open"
        done = "refused" if self.refused else "done"
        return f"{done} late" if self.late else done

    def due_soon(self, now: datetime) -> bool:
        """Open and due within a week: time to answer (or to tell the person of an extension)."""
        return self.completed_at is None and now <= self.due_at < now + DUE_SOON


class UnknownRequest(LookupError):
    """A --request id that is not in the register (or belongs to another person)."""


def open_request(
    conn: Connection,
    *,
    kind: str,
    subject_mac: str | None,
    received_at: datetime,
    actor: str,
) -> int:
    """Register a request; its deadline is received + 1 calendar month."""
    result = conn.execute(
        insert(subject_requests).values(
            kind=kind,
            subject_mac=subject_mac,
            received_at=received_at,
            due_at=request_due(received_at),
            actor=actor,
        )
    )
    key = result.inserted_primary_key
    assert key is not None  # noqa: S101 - an insert always has a primary key
    return int(key[0])


def complete_request(
    conn: Connection, request_id: int, *, now: datetime, actor: str, outcome: str
) -> None:
    """Mark a request answered, by whom and how (an outcome text made of counts)."""
    result = conn.execute(
        update(subject_requests)
        .where(subject_requests.c.id == request_id)
        .values(completed_at=now, actor=actor, outcome=outcome)
    )
    if not result.rowcount:
        raise UnknownRequest(request_id)


@dataclass(frozen=True)
class Registered:
    """What the register says of one request before it is completed."""

    kind: str
    subject_mac: str | None
    completed: bool


def registered(conn: Connection, request_id: int) -> Registered | None:
    """The kind, person (keyed hash) and state of a registered request; None if unknown."""
    row = conn.execute(
        select(
            subject_requests.c.kind,
            subject_requests.c.subject_mac,
            subject_requests.c.completed_at,
        ).where(subject_requests.c.id == request_id)
    ).first()
    return None if row is None else Registered(row[0], row[1], row[2] is not None)


def _row(row: object) -> Request:
    return Request(*row)  # type: ignore[misc] # a Row unpacks into the dataclass fields


_COLUMNS = (
    subject_requests.c.id,
    subject_requests.c.kind,
    subject_requests.c.received_at,
    subject_requests.c.due_at,
    subject_requests.c.completed_at,
    subject_requests.c.actor,
    subject_requests.c.outcome,
)


def requests_of(conn: Connection, macs: list[str]) -> list[Request]:
    """A person's own entries in the register (for their export), oldest first."""
    rows = conn.execute(
        select(*_COLUMNS)
        .where(subject_requests.c.subject_mac.in_(macs))
        .order_by(subject_requests.c.received_at, subject_requests.c.id)
    ).all()
    return [_row(r) for r in rows]


def list_requests(since: datetime) -> Callable[[Connection], list[Request]]:
    """Open requests (all of them) and those completed since `since`, by deadline."""

    def query(conn: Connection) -> list[Request]:
        rows = conn.execute(
            select(*_COLUMNS)
            .where(
                or_(
                    subject_requests.c.completed_at.is_(None),
                    subject_requests.c.completed_at >= since,
                )
            )
            .order_by(subject_requests.c.due_at, subject_requests.c.id)
        ).all()
        return [_row(r) for r in rows]

    return query
