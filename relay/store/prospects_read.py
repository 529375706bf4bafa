"""Read one prospect for the DPO's lookup page: find by keyed hash, open the sealed fields.

Why a separate reader: the lookup page shows the record with its submissions and consent
history without recording a data-subject request; the fields are opened exactly as
relay.store.prospects seals them (bound to the email hash and the field name).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from relay.crypto import DecryptionFailed, KeyRing
from relay.store.prospects import aad
from relay.store.tables import consent_events, prospects, submissions

SEALED = ("email", "name", "company", "phone")


@dataclass(frozen=True)
class ProspectRecord:
    """What relay holds about one person, opened for the DPO's eyes only."""

    id: int
    fields: dict[str, str | None]
    first_seen_at: datetime
    last_interaction_at: datetime
    last_legal_basis: str
    status: str
    restricted: bool
    expires_at: datetime
    consent: list[dict[str, Any]]
    submissions: list[dict[str, Any]]


def find_prospect(email_macs: list[str]) -> Callable[[Connection], dict[str, Any] | None]:
    """The prospect row (sealed) whose email hashes to one of `email_macs`, with its history."""

    def query(conn: Connection) -> dict[str, Any] | None:
        row = conn.execute(select(prospects).where(prospects.c.email_mac.in_(email_macs))).first()
        consent = [
            dict(r)
            for r in conn.execute(
                select(
                    consent_events.c.event,
                    consent_events.c.purpose,
                    consent_events.c.occurred_at,
                    consent_events.c.form_id,
                    consent_events.c.wording_version,
                )
                .where(consent_events.c.subject_mac.in_(email_macs))
                .order_by(consent_events.c.occurred_at)
            ).mappings()
        ]
        subs = [
            dict(r)
            for r in conn.execute(
                select(
                    submissions.c.id,
                    submissions.c.form_id,
                    submissions.c.received_at,
                    submissions.c.state,
                    submissions.c.legal_basis,
                )
                .where(submissions.c.subject_mac.in_(email_macs))
                .order_by(submissions.c.received_at.desc())
            ).mappings()
        ]
        if row is None and not subs and not consent:
            return None
        return {
            "row": None if row is None else dict(row._mapping),
            "consent": consent,
            "subs": subs,
        }

    return query


def open_prospect(found: dict[str, Any], keyring: KeyRing) -> ProspectRecord | None:
    """Decrypt the sealed fields; a field that cannot be opened shows as None, never raw."""
    row = found["row"]
    if row is None:
        return None
    fields: dict[str, str | None] = {}
    for name in SEALED:
        token = row.get(f"{name}_enc")
        if token is None:
            fields[name] = None
            continue
        try:
            fields[name] = keyring.open(token, aad(row["email_mac"], name)).decode("utf-8")
        except (DecryptionFailed, UnicodeDecodeError):
            fields[name] = "(cannot be decrypted with the current keys)"
    return ProspectRecord(
        id=row["id"],
        fields=fields,
        first_seen_at=row["first_seen_at"],
        last_interaction_at=row["last_interaction_at"],
        last_legal_basis=row["last_legal_basis"],
        status=row["status"],
        restricted=bool(row["restricted"]),
        expires_at=row["expires_at"],
        consent=found["consent"],
        submissions=found["subs"],
    )
