"""Key rotation: re-seal every stored ciphertext under the newest key, re-hash every email MAC.

After `relay keys rotate`, nothing stored needs an older key to be read, and every record is
found by the newest key's hash. The one exception is an opposition entry (or a consent event)
of someone relay holds no other data about: only a hash is left, so it cannot be re-hashed.
Those stay matchable while the older key is still listed in RELAY_SECRET_KEY (lookups try
every key); the report counts them so the operator knows when the old key may go.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from relay.crypto import KeyRing
from relay.store import prospects as records
from relay.store.outbox import body_context
from relay.store.tables import consent_events, opposition, prospects, subject_requests, submissions


@dataclass(frozen=True)
class RotationReport:
    prospects_resealed: int
    bodies_resealed: int
    hashes_moved: int
    old_ciphertexts_left: int
    orphan_hashes: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _move_hash(conn: Connection, old: str, new: str) -> None:
    records.rehash(conn, old, new)
    conn.execute(
        update(submissions).where(submissions.c.subject_mac == old).values(subject_mac=new)
    )
    conn.execute(
        update(subject_requests)
        .where(subject_requests.c.subject_mac == old)
        .values(subject_mac=new)
    )


def _prospects(conn: Connection, keyring: KeyRing, current: set[str]) -> tuple[int, int]:
    resealed = moved = 0
    for r in conn.execute(select(prospects)).all():
        row = r._mapping
        old = row["email_mac"]
        email = keyring.open(row["email_enc"], records.aad(old, "email")).decode("utf-8")
        new = keyring.mac(email)
        current.add(new)
        tokens = {f: row[f"{f}_enc"] for f in records.FIELDS}
        stale = any(
            t is not None and KeyRing.key_id_of(t) != keyring.current_key_id
            for t in tokens.values()
        )
        if not stale and old == new:
            continue
        sealed = {
            f"{f}_enc": None
            if t is None
            else keyring.seal(keyring.open(t, records.aad(old, f)), records.aad(new, f))
            for f, t in tokens.items()
        }
        conn.execute(
            update(prospects).where(prospects.c.id == row["id"]).values(email_mac=new, **sealed)
        )
        resealed += 1
        if old != new:
            _move_hash(conn, old, new)
            moved += 1
    return resealed, moved


def _bodies(conn: Connection, keyring: KeyRing, current: set[str]) -> tuple[int, int]:
    resealed = moved = 0
    rows = conn.execute(
        select(submissions.c.id, submissions.c.body_enc, submissions.c.subject_mac).where(
            submissions.c.body_enc.is_not(None)
        )
    ).all()
    for sub_id, token, old in rows:
        context = body_context(sub_id)
        plain = keyring.open(token, context)
        email = json.loads(plain).get("email")
        new = keyring.mac(email) if isinstance(email, str) else old
        if new is not None:
            current.add(new)
        if old is not None and new is not None and old != new:
            _move_hash(conn, old, new)
            moved += 1
        if KeyRing.key_id_of(token) != keyring.current_key_id:
            conn.execute(
                update(submissions)
                .where(submissions.c.id == sub_id)
                .values(body_enc=keyring.seal(plain, context))
            )
            resealed += 1
    return resealed, moved


def rotate_job(keyring: KeyRing) -> Callable[[Connection], RotationReport]:
    """Re-seal and re-hash everything in one transaction (all or nothing)."""

    def job(conn: Connection) -> RotationReport:
        current: set[str] = set()
        p_sealed, p_moved = _prospects(conn, keyring, current)
        b_sealed, b_moved = _bodies(conn, keyring, current)
        left = 0
        for column in (prospects.c.email_enc, submissions.c.body_enc):
            for (token,) in conn.execute(select(column).where(column.is_not(None))):
                left += KeyRing.key_id_of(token) != keyring.current_key_id
        hashed_only = {m for (m,) in conn.execute(select(opposition.c.subject_mac))}
        hashed_only |= {m for (m,) in conn.execute(select(consent_events.c.subject_mac))}
        orphans = len(hashed_only - current)
        return RotationReport(p_sealed, b_sealed, p_moved + b_moved, left, orphans)

    return job
