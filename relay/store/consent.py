"""Consent events (append-only, hash-chained), the opposition list and consent wordings.

Consent events are appended, never updated; each carries the SHA-256 of the previous event of
the same person (``prev_hash``), so an altered or removed event breaks the chain. The chain
covers every field but ``subject_mac``, which key rotation re-hashes. The opposition list
holds a keyed hash and dates, nothing else. A consent wording is stored once per
(form, version): what people agreed to stays provable after the forms file changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from relay.minimise.retention import opposition_keep_until
from relay.store.db import insert_for
from relay.store.tables import consent_events, consent_wordings, opposition

GRANTED = "granted"
WITHDRAWN = "withdrawn"


def wording_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ConsentGrant:
    """A ticked marketing box on an accepted submission: what the person was shown, and where."""

    form_id: str
    wording_version: str
    wording_sha256: str
    notice_version: str
    field: str
    value: str
    language: str | None = None


# --- consent events: append-only, chained ------------------------------------------------

_CHAINED = (
    "event",
    "purpose",
    "occurred_at",
    "source",
    "form_id",
    "submission_id",
    "wording_version",
    "wording_sha256",
    "notice_version",
    "language",
    "field",
    "value",
    "prev_hash",
)


def event_hash(event: dict[str, Any] | RowMapping) -> str:
    """SHA-256 over an event's fields (all but id and subject_mac), canonical JSON."""
    data = {}
    for name in _CHAINED:
        value = event.get(name)
        data[name] = value.isoformat() if isinstance(value, datetime) else value
    canon = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()


def _events(conn: Connection, macs: Sequence[str]) -> list[RowMapping]:
    rows = conn.execute(
        select(consent_events)
        .where(consent_events.c.subject_mac.in_(list(macs)))
        .order_by(consent_events.c.id)
    ).all()
    return [r._mapping for r in rows]


#: Built once: these run on the accept path (a ticked box), where building costs more than running.
_LAST_EVENT = (
    select(consent_events)
    .where(consent_events.c.subject_mac == bindparam("mac"))
    .order_by(consent_events.c.id.desc())
    .limit(1)
)
_INSERT_EVENT = insert(consent_events)
_LIFT_OPPOSITION = delete(opposition).where(
    opposition.c.subject_mac.in_(bindparam("macs", expanding=True))
)


def lift_opposition(conn: Connection, macs: Sequence[str]) -> None:
    """Remove a person from the opposition list (a new consent given on a form)."""
    conn.execute(_LIFT_OPPOSITION, {"macs": list(macs)})


def append_event(conn: Connection, *, subject_mac: str, **fields: Any) -> None:
    """Append one consent event, chained to the person's previous one."""
    last = conn.execute(_LAST_EVENT, {"mac": subject_mac}).first()
    values = {"purpose": "marketing", **fields}
    values["prev_hash"] = None if last is None else event_hash(last._mapping)
    row = dict.fromkeys(_CHAINED) | values | {"subject_mac": subject_mac}
    conn.execute(_INSERT_EVENT, row)


def chain_ok(events: Sequence[RowMapping | dict[str, Any]]) -> bool:
    """Whether each event names the hash of the one before it (the first names none)."""
    previous: str | None = None
    for event in events:
        if event.get("prev_hash") != previous:
            return False
        previous = event_hash(event)
    return True


def consent_state(events: Sequence[RowMapping | dict[str, Any]]) -> str:
    """granted / withdrawn / none: the last event decides."""
    return str(events[-1]["event"]) if events else "none"


def events_of(macs: Sequence[str]) -> Callable[[Connection], list[dict[str, Any]]]:
    """A person's consent events, oldest first, with the exact wording text they were shown."""

    def query(conn: Connection) -> list[dict[str, Any]]:
        out = []
        for event in _events(conn, macs):
            item = dict(event)
            text = None
            if event["form_id"] and event["wording_version"]:
                text = conn.execute(
                    select(consent_wordings.c.text).where(
                        consent_wordings.c.form_id == event["form_id"],
                        consent_wordings.c.version == event["wording_version"],
                    )
                ).scalar_one_or_none()
            item["wording_text"] = text
            out.append(item)
        return out

    return query


# --- opposition list: a keyed hash and dates, nothing else ---------------------------------


def oppose(conn: Connection, mac: str, macs: Sequence[str], now: datetime) -> bool:
    """Put a person on the opposition list (or extend their entry); True if newly added."""
    keep = opposition_keep_until(now)
    existing = conn.execute(
        select(opposition.c.subject_mac).where(opposition.c.subject_mac.in_(list(macs)))
    ).first()
    if existing is not None:
        conn.execute(
            update(opposition)
            .where(opposition.c.subject_mac == existing[0])
            .values(subject_mac=mac, keep_until=keep)
        )
        return False
    conn.execute(insert(opposition).values(subject_mac=mac, added_at=now, keep_until=keep))
    return True


def is_opposed(conn: Connection, macs: Sequence[str]) -> bool:
    row = conn.execute(
        select(opposition.c.subject_mac).where(opposition.c.subject_mac.in_(list(macs)))
    ).first()
    return row is not None


# --- consent wordings: stored once per (form, version) -------------------------------------


@dataclass(frozen=True)
class Wording:
    form_id: str
    version: str
    text: str


def _conflicts(conn: Connection, wordings: Sequence[Wording]) -> tuple[list[str], list[Wording]]:
    problems, missing = [], []
    for w in wordings:
        stored = conn.execute(
            select(consent_wordings.c.sha256).where(
                consent_wordings.c.form_id == w.form_id, consent_wordings.c.version == w.version
            )
        ).scalar_one_or_none()
        if stored is None:
            missing.append(w)
        elif stored != wording_sha256(w.text):
            problems.append(
                f"form {w.form_id!r}: marketing_consent.wording changed but wording_version "
                f"is still {w.version!r}; a changed wording needs a new wording_version "
                "(the old text stays the proof of what earlier people agreed to)"
            )
    return problems, missing


def wording_conflicts(wordings: Sequence[Wording]) -> Callable[[Connection], list[str]]:
    """For `relay check`: wordings whose text differs from the one stored for their version."""

    def query(conn: Connection) -> list[str]:
        return _conflicts(conn, wordings)[0]

    return query


def register_wordings_job(
    wordings: Sequence[Wording], now: datetime
) -> Callable[[Connection], list[str]]:
    """Store each new (form, version) wording once; return conflicts (and store nothing then)."""

    def job(conn: Connection) -> list[str]:
        problems, missing = _conflicts(conn, wordings)
        if problems:
            return problems
        if not missing:
            return []
        # Several instances start at once on one database: the first insert wins, the others
        # insert nothing (ON CONFLICT DO NOTHING), then every one checks what is stored.
        insert_fn = insert_for(conn.dialect.name)
        for w in missing:
            conn.execute(
                insert_fn(consent_wordings)
                .values(
                    form_id=w.form_id,
                    version=w.version,
                    text=w.text,
                    sha256=wording_sha256(w.text),
                    created_at=now,
                )
                .on_conflict_do_nothing(index_elements=["form_id", "version"])
            )
        return _conflicts(conn, missing)[0]

    return job
