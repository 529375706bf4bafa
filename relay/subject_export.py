"""What an export contains (arts. 15 and 20): the record, consent history, submissions and the
information the person is owed, shaped as JSON-ready data. Runs inside a store job.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, RowMapping

from relay import states
from relay.crypto import KeyRing
from relay.store import prospects as records
from relay.store.outbox import open_body
from relay.store.tables import submissions

CONTROLLER = {
    "name": "Biosera",
    "address": "15 Rue du Mans, 49300 Cholet, France",
    "contact": "biosera@mse-sas.fr",
}
PROCESSING = {
    "purposes": [
        "handle your inquiry or quote request",
        "record your marketing consent and its withdrawal",
        "prove compliance (legal basis, consent, requests)",
    ],
    "legal_bases": {
        "contract": "Art. 6(1)(b) GDPR",
        "legitimate_interest": "Art. 6(1)(f) GDPR",
        "marketing": "Art. 6(1)(a) GDPR (consent)",
    },
    "recipients": [
        "Biosera sales staff",
        "Mailgun (EU) - processor, email transmission",
        "Microsoft 365 - processor, mailbox",
        "hosting provider (EU) - processor",
    ],
    "retention": {
        "prospect": "3 years after your last interaction",
        "client": "5 years after your last activity",
        "message": "until delivered to our mailbox (bounded), then deleted from the relay",
        "delivery_log": "2 years, without personal data",
        "quarantine": "a message held as suspected spam: until released or deleted, "
        "at most 30 days",
    },
    "rights": "access, rectification, erasure, restriction, objection, portability, "
    "withdrawal of consent; complaint to the CNIL (https://www.cnil.fr)",
    "source": "provided by you via a form on our website",
}


def open_field(keyring: KeyRing, token: bytes | None, mac: str, field: str) -> str | None:
    if token is None:
        return None
    return keyring.open(token, records.aad(mac, field)).decode("utf-8")


def prospect_dict(keyring: KeyRing, row: RowMapping) -> dict[str, Any]:
    mac = row["email_mac"]
    return {
        "email": open_field(keyring, row["email_enc"], mac, "email"),
        "name": open_field(keyring, row["name_enc"], mac, "name"),
        "company": open_field(keyring, row["company_enc"], mac, "company"),
        "phone": open_field(keyring, row["phone_enc"], mac, "phone"),
        "first_seen_at": row["first_seen_at"].isoformat(),
        "last_interaction_at": row["last_interaction_at"].isoformat(),
        "last_legal_basis": row["last_legal_basis"],
        "status": RESTRICTED_STATUS if row["restricted"] else row["status"],
        "relationship": row["status"],
        "restricted": bool(row["restricted"]),
        "expires_at": row["expires_at"].isoformat(),
    }


RESTRICTED_STATUS = "restricted"


def body_of(keyring: KeyRing, row: RowMapping) -> dict[str, Any] | None:
    if row["body_enc"] is None:
        return None
    try:
        return open_body(keyring, row["id"], row["body_enc"])
    except ValueError:  # opened, but not JSON: say so rather than "deleted"
        return {"error": "the stored message could not be read"}
    # DecryptionFailed propagates: a message we hold but cannot open is an error, never None


def submissions_of(conn: Connection, keyring: KeyRing, macs: list[str]) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(submissions)
        .where(submissions.c.subject_mac.in_(macs))
        .order_by(submissions.c.received_at)
    ).all()
    out = []
    for r in rows:
        row = r._mapping
        body = body_of(keyring, row)
        wiped = row["body_wiped_at"]
        out.append(
            {
                "id": row["id"],
                "form": row["form_id"],
                "received_at": row["received_at"].isoformat(),
                "legal_basis": row["legal_basis"],
                "notice_version": row["notice_version"],
                "marketing_consent_given": bool(row["consent_given"]),
                "delivery_state": row["state"],
                "fields": body,
                "message": None if body is None else body.get("message"),
                "message_status": (
                    "held encrypted in quarantine (suspected spam) until released or deleted"
                    if body is not None and row["state"] == states.QUARANTINED
                    else "held encrypted until delivery"
                    if body is not None
                    else f"deleted on {wiped.date().isoformat()}"
                    if wiped is not None
                    else "deleted"
                ),
            }
        )
    return out


def events_export(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keep = (
        "event",
        "purpose",
        "occurred_at",
        "source",
        "form_id",
        "submission_id",
        "wording_version",
        "wording_sha256",
        "wording_text",
        "notice_version",
        "language",
        "field",
        "value",
    )
    return [
        {k: (e[k].isoformat() if isinstance(e[k], datetime) else e[k]) for k in keep}
        for e in events
    ]
