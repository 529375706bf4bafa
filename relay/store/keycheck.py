"""Does RELAY_SECRET_KEY hold every key the stored data needs? Asked before any answer about it.

Why: people are found by a keyed hash of their address. With a wrong or retired key the
hash matches nothing, so a lookup would answer "we hold nothing about you" — a false answer
to an access request. Every ciphertext names the key that sealed it (relay.crypto), so the
key ids present in the database are known without decrypting anything: a reader asks first,
and fails naming the key id it lacks. `relay check` also opens a sample of rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from relay.crypto import KEY_ID_BYTES, DecryptionFailed, KeyRing
from relay.store import prospects as records
from relay.store.outbox import body_context
from relay.store.tables import prospects, submissions

#: Rows `relay check` opens: the newest ones of each kind.
SAMPLE = 50


class MissingKey(DecryptionFailed):
    """Data in the database was sealed by a key RELAY_SECRET_KEY does not hold."""

    def __init__(self, key_ids: list[str]) -> None:
        self.key_ids = key_ids
        super().__init__(
            f"the database holds data sealed by key id(s) {', '.join(key_ids)}, which "
            "RELAY_SECRET_KEY does not hold; nothing was read (add the key, newest first, "
            "and keep older keys listed until `relay keys rotate` has re-sealed the data)"
        )


def stored_key_ids(conn: Connection) -> set[str]:
    """The ids of every key that sealed a prospect record or a waiting message body."""
    found: set[str] = set()
    for column in (prospects.c.email_enc, submissions.c.body_enc):
        head = func.substr(column, 2, KEY_ID_BYTES)
        for (key_id,) in conn.execute(select(head).where(column.is_not(None)).distinct()):
            found.add(bytes(key_id).hex())
    return found


def missing_key_ids(conn: Connection, keyring: KeyRing) -> list[str]:
    """Key ids present in the database and absent from the key ring, sorted."""
    return sorted(stored_key_ids(conn) - set(keyring.key_ids))


def require_keys(keyring: KeyRing) -> Callable[[Connection], None]:
    """A store job that raises MissingKey unless every stored key id is in the ring."""

    def job(conn: Connection) -> None:
        missing = missing_key_ids(conn, keyring)
        if missing:
            raise MissingKey(missing)

    return job


def sample_problems(keyring: KeyRing, size: int = SAMPLE) -> Callable[[Connection], list[str]]:
    """Open the newest `size` prospect records and message bodies; one line per problem."""

    def job(conn: Connection) -> list[str]:
        problems: list[str] = []
        missing = missing_key_ids(conn, keyring)
        if missing:
            problems.append(str(MissingKey(missing)))
        known = set(keyring.key_ids)  # rows under a missing key are already reported above
        rows = conn.execute(
            select(prospects).order_by(prospects.c.id.desc()).limit(size)
        ).mappings()
        for row in rows:
            for field in records.FIELDS:
                token = row[f"{field}_enc"]
                if token is None or KeyRing.key_id_of(token) not in known:
                    continue
                try:
                    keyring.open(token, records.aad(row["email_mac"], field))
                except DecryptionFailed as exc:
                    problems.append(f"prospect {row['id']} {field}: {exc}")
        bodies = conn.execute(
            select(submissions.c.id, submissions.c.body_enc)
            .where(submissions.c.body_enc.is_not(None))
            .order_by(submissions.c.received_at.desc())
            .limit(size)
        ).all()
        for sub_id, token in bodies:
            if KeyRing.key_id_of(token) not in known:
                continue
            try:
                json.loads(keyring.open(token, body_context(sub_id)))
            except DecryptionFailed as exc:
                problems.append(f"submission {sub_id} body: {exc}")
            except ValueError:
                problems.append(f"submission {sub_id} body: not valid JSON once opened")
        return problems

    return job
