"""The request register's rules, applied inside a data-subject action's transaction.

A request is closed only by the action it asked for (an objection by a withdrawal), once; a
refused action closes it as refused, with the reason; completion after the due date shows as
late (relay.store.audit.Request.status). Every close adds one audit entry whose target is the
person's stable reference (`subject:` + the keyed hash's first 16 hex digits: record numbers
are reused after an erasure, a keyed hash is not) and whose detail holds counts only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy.engine import Connection

from relay.errors import SubjectError
from relay.store import Store, audit

T = TypeVar("T")

#: Which actions may close a request of each kind.
CLOSED_BY = {
    "export": frozenset({"export"}),
    "erase": frozenset({"erase"}),
    "rectify": frozenset({"rectify"}),
    "restrict": frozenset({"restrict"}),
    "unrestrict": frozenset({"unrestrict"}),
    "withdraw": frozenset({"withdraw"}),
    "object": frozenset({"withdraw"}),
}
KINDS = tuple(CLOSED_BY)


class RequestMismatch(SubjectError):
    """A --request that does not exist, is closed, concerns someone else or asked otherwise."""


class ActionRefused(SubjectError):
    """The action must be refused as asked (restricted record, invalid value); recorded so."""


def subject_ref(mac: str) -> str:
    """The audit target naming a person: stable, never reused, not identifying by itself."""
    return f"subject:{mac[:16]}"


def closes(requested: str, action: str) -> bool:
    """Whether `action` answers a request of kind `requested`."""
    return action in CLOSED_BY.get(requested, frozenset())


def check_request(conn: Connection, request_id: int, action: str, macs: Sequence[str]) -> None:
    """Raise RequestMismatch unless request `request_id` may be closed by `action` for `macs`."""
    entry = audit.registered(conn, request_id)
    if entry is None:
        msg = f"there is no request {request_id} in the register (see `relay subject requests`)"
        raise RequestMismatch(msg)
    if entry.completed:
        msg = f"request {request_id} is already completed"
        raise RequestMismatch(msg)
    if entry.subject_mac is not None and entry.subject_mac not in macs:
        msg = f"request {request_id} concerns another address"
        raise RequestMismatch(msg)
    if not closes(entry.kind, action):
        msg = (
            f"request {request_id} asks for {entry.kind}, not {action}: it is closed by that action"
        )
        raise RequestMismatch(msg)


def close(
    conn: Connection,
    *,
    kind: str,
    macs: Sequence[str],
    actor: str,
    now: datetime,
    request_id: int | None,
    received_at: datetime | None,
    counts: dict[str, int] | None = None,
    refused: str | None = None,
) -> int:
    """Record the request (new or given) as completed, or refused with `refused` as reason."""
    mac = macs[0]
    if request_id is None:
        request_id = audit.open_request(
            conn, kind=kind, subject_mac=mac, received_at=received_at or now, actor=actor
        )
    else:
        check_request(conn, request_id, kind, macs)
    if refused is None:
        detail = json.dumps(counts or {}, sort_keys=True)
        outcome, action = f"{kind}: {detail}", f"subject.{kind}"
    else:
        detail = json.dumps({"refused": refused})
        outcome, action = f"{audit.REFUSED}: {kind}: {refused}", f"subject.{kind}.refused"
    audit.complete_request(conn, request_id, now=now, actor=actor, outcome=outcome)
    entry = json.dumps({"request": request_id, **json.loads(detail)}, sort_keys=True)
    audit.add_entry(conn, now, actor, action, subject_ref(mac), entry)
    return request_id


async def answer(
    store: Store,
    kind: str,
    macs: list[str],
    *,
    actor: str,
    now: datetime,
    request_id: int | None,
    received_at: datetime | None,
    body: Callable[[Connection], tuple[T, dict[str, int]]],
) -> T:
    """Run `body` and close the request in one transaction; a refusal is recorded as refused
    (in its own transaction, the action's changes rolled back) and then raised."""

    def job(conn: Connection) -> T:
        if request_id is not None:
            check_request(conn, request_id, kind, macs)
        result, counts = body(conn)
        close(
            conn,
            kind=kind,
            macs=macs,
            actor=actor,
            now=now,
            request_id=request_id,
            received_at=received_at,
            counts=counts,
        )
        return result

    try:
        return await store.write(job)
    except ActionRefused as exc:
        reason = str(exc)

        def refuse(conn: Connection) -> int:
            return close(
                conn,
                kind=kind,
                macs=macs,
                actor=actor,
                now=now,
                request_id=request_id,
                received_at=received_at,
                refused=reason,
            )

        await store.write(refuse)
        raise
