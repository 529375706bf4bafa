"""Art. 17 erasure, and the list of copies relay handed on that it cannot erase itself.

Erasure deletes the record, its consent history and any message; unlinks the delivery-log
rows and blanks their free texts (what a receiving server said about the person); deletes the
file transport's files for them; then checkpoints the database so nothing erased stays in
SQLite's write-ahead log. Like every right, it closes its request in the register.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from relay import states
from relay.crypto import KeyRing
from relay.mail.eml import remove_files
from relay.rights import register
from relay.store import Store, consent, rights_register
from relay.store.tables import (
    consent_events,
    delivery_attempts,
    delivery_events,
    prospects,
    submissions,
)

ERASED = states.ERASED
log = logging.getLogger("relay.privacy")


async def relayed_emails(store: Store, keyring: KeyRing, email: str) -> list[dict[str, Any]]:
    """The emails relay handed on for this person (date, form, provider id, state): so an
    admin can delete the copies in the Microsoft 365 mailbox, which relay cannot reach."""
    macs = keyring.macs(email)

    def query(conn: Connection) -> list[dict[str, Any]]:
        rows = conn.execute(
            select(
                submissions.c.received_at,
                submissions.c.form_id,
                submissions.c.provider_message_id,
                submissions.c.state,
            )
            .where(submissions.c.subject_mac.in_(macs), submissions.c.state.not_in(states.DUE))
            .order_by(submissions.c.received_at)
        ).all()
        return [
            {"received_at": r[0].isoformat(), "form": r[1], "message_id": r[2], "state": r[3]}
            for r in rows
        ]

    return await store.read(query)


def submission_ids(conn: Connection, macs: list[str]) -> list[str]:
    """The ids of the person's submissions (their mail files are named after them)."""
    mine = submissions.c.subject_mac.in_(macs)
    return [r[0] for r in conn.execute(select(submissions.c.id).where(mine)).all()]


def erase_rows(conn: Connection, macs: list[str], now: datetime) -> dict[str, int]:
    """The erasure itself, by keyed hashes: `erase_subject`, and `relay db restore` when it
    re-applies an erasure made after the backup was taken (relay.store.rights_register)."""
    ids = submission_ids(conn, macs)
    mine = submissions.c.subject_mac.in_(macs)
    texts = 0
    if ids:
        texts += conn.execute(
            update(delivery_events)
            .where(
                delivery_events.c.submission_id.in_(ids),
                delivery_events.c.description.is_not(None),
            )
            .values(description=None)
        ).rowcount
        texts += conn.execute(
            update(delivery_attempts)
            .where(
                delivery_attempts.c.submission_id.in_(ids),
                delivery_attempts.c.error.is_not(None),
            )
            .values(error=None)
        ).rowcount
    unsent = conn.execute(
        update(submissions)
        .where(mine, submissions.c.state.in_((*states.DUE, states.QUARANTINED)))
        .values(state=states.FAILED, last_error=ERASED, final_at=now)
    )
    bodies = conn.execute(
        update(submissions)
        .where(mine, submissions.c.body_enc.is_not(None))
        .values(body_enc=None, body_wiped_at=now, updated_at=now)
    )
    if ids:  # the last error may quote the receiving server about this person
        conn.execute(
            update(submissions)
            .where(mine, submissions.c.last_error != ERASED)
            .values(last_error=None)
        )
    unlinked = conn.execute(update(submissions).where(mine).values(subject_mac=None))
    events = conn.execute(consent_events.delete().where(consent_events.c.subject_mac.in_(macs)))
    gone = conn.execute(prospects.delete().where(prospects.c.email_mac.in_(macs)))
    counts = {
        "prospects": int(gone.rowcount or 0),
        "consent_events": int(events.rowcount or 0),
        "messages_erased": int(bodies.rowcount or 0),
        "undelivered_cancelled": int(unsent.rowcount or 0),
        "delivery_log_rows_unlinked": int(unlinked.rowcount or 0),
        "delivery_texts_erased": int(texts or 0),
    }
    counts["opposition_added"] = int(consent.oppose(conn, macs[0], macs, now))
    return counts


async def erase_subject(
    store: Store,
    keyring: KeyRing,
    email: str,
    *,
    actor: str,
    now: datetime,
    mail_dir: Path | None = None,
    request_id: int | None = None,
    received_at: datetime | None = None,
) -> dict[str, int]:
    """Art. 17: delete the record, its consent history and any message; unlink the log rows.

    The texts of the person's delivery events and attempts (what a receiving server answered)
    go too; so do the files the file transport wrote for them (under `mail_dir`). The database
    then checkpoints (SQLite: the write-ahead log is truncated) so nothing erased stays
    recoverable in it. Idempotent (a second run removes nothing). The keyed hash goes on the
    opposition list so the person is not re-enrolled in marketing without a new consent.
    """
    macs = keyring.macs(email)
    ids: list[str] = []

    def body(conn: Connection) -> tuple[dict[str, int], dict[str, int]]:
        ids[:] = submission_ids(conn, macs)  # before erase_rows unlinks them
        counts = erase_rows(conn, macs, now)
        rights_register.note(conn, rights_register.ERASE, macs, now)  # for `relay db restore`
        return counts, counts

    counts = await register.answer(
        store,
        "erase",
        macs,
        actor=actor,
        now=now,
        request_id=request_id,
        received_at=received_at,
        body=body,
    )
    counts["mail_files_deleted"] = remove_files(mail_dir, ids) if mail_dir is not None else 0
    if not await store.checkpoint():
        log.warning(
            "the write-ahead log could not be truncated after an erasure (readers were busy); "
            "the next purge or erasure truncates it"
        )
    return counts
