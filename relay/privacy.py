"""Data-subject rights (GDPR arts. 15-21) as functions the CLI and the admin pages both call.

Each action runs in one transaction that also records the request in the register (received,
due = received + 1 calendar month, completed, who) and one audit entry with counts only. A
person is found by the keyed hash of their email under every key of the ring, so records
hashed before a key rotation are found too.

Restriction (art. 18): a restricted record is frozen; rectify, touch and mark-client refuse,
and a new submission from the person is delivered but not merged into it. Withdrawal of
consent still works on a restricted record: it reduces processing, it changes no field.

`truncate_ip` is the one way relay shortens an address, for the rare place something about a
client must be kept; the result is *truncated*, still personal data, not anonymous.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select, update
from sqlalchemy.engine import Connection, RowMapping

from relay import states, subject_export
from relay.crypto import KeyRing
from relay.errors import SubjectError
from relay.retention import CLIENT, PROSPECT, prospect_expiry
from relay.store import Store, audit, consent, rights_register
from relay.store import prospects as records
from relay.store.tables import consent_events, prospects, submissions

T = TypeVar("T")
#: The reason an unsent submission is given when its person is erased (no alert is raised).
ERASED = "erased at the person's request"


def truncate_ip(ip: str, v4_prefix: int = 24, v6_prefix: int = 48) -> str:
    """The network part of an address: IPv4 /24, IPv6 /48; IPv4-mapped IPv6 counts as IPv4.

    Raises ValueError for anything that is not an IP address.
    """
    address = ipaddress.ip_address(ip.split("%", 1)[0].strip())
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = v4_prefix if address.version == 4 else v6_prefix
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


# --- the register ------------------------------------------------------------------------


def _run_request(
    conn: Connection,
    *,
    kind: str,
    mac: str | None,
    macs: list[str] | None = None,
    actor: str,
    now: datetime,
    request_id: int | None,
    received_at: datetime | None,
    counts: dict[str, int],
) -> int:
    """Record the request (new or given) as completed, and one audit entry with the counts."""
    macs = macs or ([mac] if mac else [])
    if request_id is None:
        request_id = audit.open_request(
            conn, kind=kind, subject_mac=mac, received_at=received_at or now, actor=actor
        )
    else:
        exists, whose = audit.request_subject(conn, request_id)
        if not exists:
            msg = f"there is no request {request_id} in the register (see `relay subject requests`)"
            raise SubjectError(msg)
        if whose is not None and mac is not None and whose not in macs:
            msg = f"request {request_id} concerns another address"
            raise SubjectError(msg)
    detail = json.dumps(counts, sort_keys=True)
    audit.complete_request(conn, request_id, now=now, actor=actor, outcome=f"{kind}: {detail}")
    audit.add_entry(conn, now, actor, f"subject.{kind}", f"request:{request_id}", detail)
    return request_id


async def open_request(
    store: Store,
    keyring: KeyRing,
    email: str,
    *,
    actor: str,
    now: datetime,
    kind: str,
    received_at: datetime,
) -> int:
    """Register a request as received (not yet answered); its deadline starts at receipt."""

    def job(conn: Connection) -> int:
        request_id = audit.open_request(
            conn, kind=kind, subject_mac=keyring.mac(email), received_at=received_at, actor=actor
        )
        audit.add_entry(conn, now, actor, "request.received", f"request:{request_id}", None)
        return request_id

    return await store.write(job)


async def export_subject(
    store: Store,
    keyring: KeyRing,
    email: str,
    *,
    actor: str,
    now: datetime,
    request_id: int | None = None,
    received_at: datetime | None = None,
) -> dict[str, Any]:
    """Everything relay holds about `email` (arts. 15 and 20), as JSON-ready data."""
    macs = keyring.macs(email)

    def job(conn: Connection) -> dict[str, Any]:
        row = records.find_row(conn, macs)
        events = consent.events_of(macs)(conn)
        subs = subject_export.submissions_of(conn, keyring, macs)
        export = {
            "schema": "relay.subject-export/1",
            "generated_at": now.isoformat(),
            "controller": subject_export.CONTROLLER,
            "subject": {"email": records.normalise(email)},
            "prospect": None if row is None else subject_export.prospect_dict(keyring, row),
            "marketing": {
                "consent": consent.consent_state(events),
                "on_opposition_list": consent.is_opposed(conn, macs),
                "consent_chain_verified": consent.chain_ok(events),
            },
            "consent_events": subject_export.events_export(events),
            "submissions": subs,
            "processing": subject_export.PROCESSING,
        }
        counts = {"prospect": int(row is not None), "submissions": len(subs)}
        counts["consent_events"] = len(events)
        _run_request(
            conn,
            kind="export",
            mac=macs[0],
            macs=macs,
            actor=actor,
            now=now,
            request_id=request_id,
            received_at=received_at,
            counts=counts,
        )
        return export

    return await store.write(job)


async def find_prospect(
    store: Store, keyring: KeyRing, email: str, *, actor: str, now: datetime
) -> dict[str, Any] | None:
    """The record of `email` for an admin lookup; the view itself is audited (not a request)."""
    macs = keyring.macs(email)

    def job(conn: Connection) -> dict[str, Any] | None:
        row = records.find_row(conn, macs)
        audit.add_entry(
            conn, now, actor, "prospect.view", None, json.dumps({"found": int(bool(row))})
        )
        if row is None:
            return None
        out = subject_export.prospect_dict(keyring, row)
        events = consent.events_of(macs)(conn)
        out["consent"] = consent.consent_state(events)
        out["on_opposition_list"] = consent.is_opposed(conn, macs)
        return out

    return await store.write(job)


# --- changing a person's data --------------------------------------------------------------


def _write_job(
    store: Store,
    kind: str,
    macs: list[str],
    actor: str,
    now: datetime,
    request_id: int | None,
    received_at: datetime | None,
    body: Callable[[Connection], tuple[T, dict[str, int]]],
) -> Callable[[Connection], T]:
    def job(conn: Connection) -> T:
        result, counts = body(conn)
        _run_request(
            conn,
            kind=kind,
            mac=macs[0],
            macs=macs,
            actor=actor,
            now=now,
            request_id=request_id,
            received_at=received_at,
            counts=counts,
        )
        return result

    return job


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


def erase_rows(conn: Connection, macs: list[str], now: datetime) -> dict[str, int]:
    """The erasure itself, by keyed hashes: `erase_subject`, and `relay db restore` when it
    re-applies an erasure made after the backup (relay.store.rights_register)."""
    mine = submissions.c.subject_mac.in_(macs)
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
    unlinked = conn.execute(update(submissions).where(mine).values(subject_mac=None))
    events = conn.execute(consent_events.delete().where(consent_events.c.subject_mac.in_(macs)))
    gone = conn.execute(prospects.delete().where(prospects.c.email_mac.in_(macs)))
    counts = {
        "prospects": int(gone.rowcount or 0),
        "consent_events": int(events.rowcount or 0),
        "messages_erased": int(bodies.rowcount or 0),
        "undelivered_cancelled": int(unsent.rowcount or 0),
        "delivery_log_rows_unlinked": int(unlinked.rowcount or 0),
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
    request_id: int | None = None,
    received_at: datetime | None = None,
) -> dict[str, int]:
    """Art. 17: delete the record, its consent history and any message; unlink the log rows.

    Idempotent (a second run removes nothing). The keyed hash goes on the opposition list so
    the person is not re-enrolled in marketing without a new consent.
    """
    macs = keyring.macs(email)

    def body(conn: Connection) -> tuple[dict[str, int], dict[str, int]]:
        counts = erase_rows(conn, macs, now)
        rights_register.note(conn, rights_register.ERASE, macs, now)  # issue 12
        return counts, counts

    return await store.write(
        _write_job(store, "erase", macs, actor, now, request_id, received_at, body)
    )


def _valid_email(address: str) -> str:
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        msg = "the new address is not a valid email address"
        raise SubjectError(msg) from None


def _live_row(conn: Connection, macs: list[str]) -> RowMapping | None:
    row = records.find_row(conn, macs)
    if row is not None and row["restricted"]:
        msg = "the record is restricted: unrestrict it first (nothing changes it while restricted)"
        raise SubjectError(msg)
    return row


async def rectify_subject(
    store: Store,
    keyring: KeyRing,
    email: str,
    *,
    actor: str,
    now: datetime,
    name: str | None = None,
    company: str | None = None,
    phone: str | None = None,
    new_email: str | None = None,
    request_id: int | None = None,
    received_at: datetime | None = None,
) -> bool:
    """Art. 16: correct fields of the record; False if there is no record. Refused if restricted."""
    macs = keyring.macs(email)

    def body(conn: Connection) -> tuple[bool, dict[str, int]]:
        row = _live_row(conn, macs)
        if row is None:
            return False, {"rectified": 0}
        old = row["email_mac"]
        values = {
            f: subject_export.open_field(keyring, row[f"{f}_enc"], old, f) for f in records.FIELDS
        }
        changes = {"name": name, "company": company, "phone": phone, "email": new_email}
        for field, value in changes.items():
            if value is not None:
                values[field] = _valid_email(value) if field == "email" else value.strip()
        new_mac = old
        if new_email is not None:
            new_macs = keyring.macs(values["email"] or "")
            other = records.find_row(conn, new_macs)
            if other is not None and other["id"] != row["id"]:
                msg = "the new address already has a record; erase or rectify that one first"
                raise SubjectError(msg)
            new_mac = new_macs[0]
            conn.execute(
                update(submissions)
                .where(submissions.c.subject_mac.in_(macs))
                .values(subject_mac=new_mac)
            )
            records.rehash(conn, old, new_mac)
        sealed = {
            f"{f}_enc": (
                None if v in (None, "") else keyring.seal(v.encode(), records.aad(new_mac, f))
            )
            for f, v in values.items()
        }
        conn.execute(
            update(prospects)
            .where(prospects.c.id == row["id"])
            .values(email_mac=new_mac, updated_at=now, **sealed)
        )
        return True, {"rectified": sum(v is not None for v in changes.values())}

    return await store.write(
        _write_job(store, "rectify", macs, actor, now, request_id, received_at, body)
    )


async def restrict_subject(
    store: Store,
    keyring: KeyRing,
    email: str,
    *,
    actor: str,
    now: datetime,
    restricted: bool,
    request_id: int | None = None,
    received_at: datetime | None = None,
) -> bool:
    """Art. 18: mark the record restricted (frozen) or lift it; False if there is no record."""
    macs = keyring.macs(email)

    def body(conn: Connection) -> tuple[bool, dict[str, int]]:
        result = conn.execute(
            update(prospects)
            .where(prospects.c.email_mac.in_(macs))
            .values(restricted=restricted, updated_at=now)
        )
        found = bool(result.rowcount)
        kind = rights_register.RESTRICT if restricted else rights_register.UNRESTRICT
        rights_register.note(conn, kind, macs, now)  # issue 12
        return found, {"records": int(found)}

    kind = "restrict" if restricted else "unrestrict"
    return await store.write(
        _write_job(store, kind, macs, actor, now, request_id, received_at, body)
    )


async def withdraw_consent(
    store: Store,
    keyring: KeyRing,
    email: str,
    *,
    actor: str,
    now: datetime,
    source: str,
    request_id: int | None = None,
    received_at: datetime | None = None,
) -> bool:
    """Art. 7(3) / 21(2): a `withdrawn` event and an opposition entry; False if already so."""
    macs = keyring.macs(email)

    def body(conn: Connection) -> tuple[bool, dict[str, int]]:
        events = consent.events_of(macs)(conn)
        already = consent.consent_state(events) == consent.WITHDRAWN
        added = consent.oppose(conn, macs[0], macs, now)
        if not already:
            consent.append_event(
                conn, subject_mac=macs[0], event=consent.WITHDRAWN, occurred_at=now, source=source
            )
        changed = added or not already
        rights_register.note(conn, rights_register.WITHDRAW, macs, now)  # issue 12
        return changed, {"withdrawn": int(not already), "opposition_added": int(added)}

    return await store.write(
        _write_job(store, "withdraw", macs, actor, now, request_id, received_at, body)
    )


async def touch_subject(
    store: Store,
    keyring: KeyRing,
    email: str,
    *,
    actor: str,
    now: datetime,
    at: datetime | None = None,
    client_since: datetime | None = None,
) -> datetime | None:
    """Record a contact the person initiated (a reply, a meeting): moves last interaction.

    With `client_since`, the person became a client: expiry becomes last activity + 5 years.
    Returns the new expiry, or None if there is no record. Refused if restricted.
    """
    macs = keyring.macs(email)
    when = at or now

    def job(conn: Connection) -> datetime | None:
        row = _live_row(conn, macs)
        if row is None:
            return None
        last = max(row["last_interaction_at"], when)
        status = CLIENT if client_since is not None else row["status"]
        if client_since is not None:
            last = max(last, client_since)
        expires = prospect_expiry(last, status)
        conn.execute(
            update(prospects)
            .where(prospects.c.id == row["id"])
            .values(last_interaction_at=last, status=status, expires_at=expires, updated_at=now)
        )
        action = "prospect.client" if status == CLIENT and row["status"] == PROSPECT else "touch"
        audit.add_entry(conn, now, actor, f"prospect.{action.split('.')[-1]}", None, None)
        return expires

    return await store.write(job)
