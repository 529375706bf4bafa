"""The rights register: erasures, restrictions and withdrawals as keyed hashes and dates.

Why: a restored backup brings back whoever was erased after it was taken (CNIL expects the
erasure to be applied again). Every data-subject action that removes or freezes data adds one
entry here, in its own transaction; `relay db restore` re-applies the entries the backup does
not hold. An entry holds the person's email hashed under every key of the ring at the time,
never the address, so the register is no new copy of personal data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from relay.store import consent
from relay.store.tables import prospects, rights_register

ERASE = "erase"
RESTRICT = "restrict"
UNRESTRICT = "unrestrict"
WITHDRAW = "withdraw"
KINDS = (ERASE, RESTRICT, UNRESTRICT, WITHDRAW)


@dataclass(frozen=True)
class Entry:
    """One action: what, on whose keyed hashes, when. Equal entries are the same action."""

    kind: str
    macs: tuple[str, ...]
    recorded_at: datetime


def note(conn: Connection, kind: str, macs: Sequence[str], now: datetime) -> None:
    """Add one entry, in the transaction of the action itself."""
    if kind not in KINDS:
        msg = f"unknown register kind {kind!r}"
        raise ValueError(msg)
    conn.execute(
        insert(rights_register).values(kind=kind, subject_macs=" ".join(macs), recorded_at=now)
    )


def entries(conn: Connection) -> list[Entry]:
    """Every entry, oldest first."""
    rows = conn.execute(
        select(
            rights_register.c.kind, rights_register.c.subject_macs, rights_register.c.recorded_at
        ).order_by(rights_register.c.recorded_at, rights_register.c.id)
    ).all()
    return [Entry(kind, tuple(macs.split()), at) for kind, macs, at in rows]


def missing(live: Sequence[Entry], restored: Sequence[Entry]) -> list[Entry]:
    """The entries of `live` that `restored` lacks (made after the backup), oldest first."""
    known = set(restored)
    return sorted((e for e in live if e not in known), key=lambda e: e.recorded_at)


Eraser = Callable[[Connection, list[str], datetime], object]


def apply(conn: Connection, todo: Sequence[Entry], now: datetime, erase: Eraser) -> dict[str, int]:
    """Apply `todo` again, in order; each is idempotent, so applying twice changes nothing more.

    `erase` is the erasure itself (relay.rights.erasure.erase_rows), so a restore erases exactly as
    `relay subject erase` does.
    """
    counts = dict.fromkeys(KINDS, 0)
    for entry in todo:
        macs = list(entry.macs)
        if entry.kind == ERASE:
            erase(conn, macs, now)
        elif entry.kind in (RESTRICT, UNRESTRICT):
            conn.execute(
                update(prospects)
                .where(prospects.c.email_mac.in_(macs))
                .values(restricted=entry.kind == RESTRICT, updated_at=now)
            )
        else:
            withdraw(conn, macs, entry.recorded_at)
        counts[entry.kind] += 1
    return counts


def record(conn: Connection, todo: Sequence[Entry]) -> None:
    """Add entries (re-applied after a restore) to the register, with their original dates."""
    for entry in todo:
        note(conn, entry.kind, entry.macs, entry.recorded_at)


def withdraw(conn: Connection, macs: list[str], at: datetime) -> None:
    """A consent withdrawal again: on the opposition list, and a `withdrawn` event if the
    history does not end with one already."""
    consent.oppose(conn, macs[0], macs, at)
    if consent.consent_state(consent.events_of(macs)(conn)) != consent.WITHDRAWN:
        consent.append_event(
            conn, subject_mac=macs[0], event=consent.WITHDRAWN, occurred_at=at, source="restore"
        )
