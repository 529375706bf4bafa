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
from relay.minimise.retention import Bounds
from relay.store import prospects as records
from relay.store.audit import Request
from relay.store.deliveries import timeline
from relay.store.outbox import open_body
from relay.store.tables import submissions

PROCESSING: dict[str, Any] = {
    "purposes": [
        "handle your inquiry or quote request",
        "record your marketing consent and its withdrawal",
        "prove compliance (legal basis, consent, requests)",
        "protect the service against abuse: rate limiting (a daily keyed hash of your IP "
        "address, in memory only, at most 48 hours; never stored)",
        "security: access control and an audit log of who viewed or changed your data",
    ],
    "legal_bases": {
        "contract": "Art. 6(1)(b) GDPR",
        "legitimate_interest": "Art. 6(1)(f) GDPR",
        "marketing": "Art. 6(1)(a) GDPR (consent)",
        "security": "Art. 6(1)(f) GDPR (Recital 49)",
        "compliance_records": "Art. 6(1)(c) and 6(1)(f) GDPR",
    },
    "recipients": [
        "our sales staff",
        "Mailgun (EU region, api.eu.mailgun.net) - processor, email transmission; keeps its "
        "own sending logs for a few days",
        "Microsoft 365 - processor, the mailbox that receives your message",
        "hosting provider (EU) - processor",
    ],
    "where_your_data_goes": [
        "your message is sent through Mailgun's EU region to our Microsoft 365 mailbox",
        "no transfer outside the EU is intended",
    ],
    "retention": {
        "prospect": "3 years after your last interaction",
        "client": "5 years after your last activity",
        "restricted_record": "kept while restricted, until the restriction is lifted",
        "message": "until delivered to our mailbox, deleted from the relay after 7 days at most",
        "quarantine": "a message held as suspected spam: until released or deleted, "
        "at most 30 days",
        "delivery_log": "2 years, without your name or address",
        "consent_events": "as long as your record (3 years after the last event if none)",
        "opposition_list": "3 years, as a keyed hash of your address only",
        "request_register": "5 years after each request is answered, keyed hash only",
        "audit_log": "12 months, references and counts only",
        "mailbox": "per the Microsoft 365 mailbox's own retention policy",
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


def processing_info(bounds: Bounds) -> dict[str, Any]:
    """PROCESSING with the configured bounds (body, audit log, register, quarantine) in its
    retention."""
    days = f"{bounds.body_days:g}"
    retention = {
        **PROCESSING["retention"],
        "message": f"until delivered to our mailbox, deleted from the relay after {days} days "
        "at most",
        "request_register": f"{bounds.request_years} years after each request is answered, "
        "keyed hash only",
        "audit_log": f"{bounds.audit_months} months, references and counts only",
        "quarantine": "a message held as suspected spam: until released or deleted, at most "
        f"{bounds.quarantine_days:g} days",
    }
    return {**PROCESSING, "retention": retention}


def controller_info(name: str | None, address: str | None, contact: str | None) -> dict[str, Any]:
    """The controller's identity and privacy contact, from the settings (art. 13/15)."""
    return {"name": name, "address": address, "contact": contact}


def requests_export(entries: list[Request], now: datetime) -> list[dict[str, Any]]:
    """The person's own entries in the request register."""
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "received_at": r.received_at.isoformat(),
            "due_at": r.due_at.isoformat(),
            "completed_at": r.completed_at.isoformat() if r.completed_at else None,
            "status": r.status(now),
        }
        for r in entries
    ]


def _timeline(conn: Connection, submission_id: str) -> list[dict[str, Any]]:
    found = timeline(submission_id)(conn)
    if found is None:  # pragma: no cover - the row was read in the same transaction
        return []
    return [
        {
            "at": step.at.isoformat(),
            "kind": step.kind,
            "what": step.what,
            "detail": step.detail,
        }
        for step in found.steps
    ]


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
                "delivery_timeline": _timeline(conn, row["id"]),
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
