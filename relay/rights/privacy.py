"""Data-subject rights (GDPR arts. 15-21) as functions the CLI and the admin pages both call.

Each action runs in one transaction that also closes the request in the register (received,
due = received + 1 calendar month, completed, who; relay.rights.register) and adds one audit entry
with counts only; a refused action is recorded as refused. A person is found by the keyed
hash of their normalised email (relay.crypto.normalise_email) under every key of the ring,
so records hashed before a key rotation are found too. Erasure is in relay.rights.erasure.

Restriction (art. 18): a restricted record is frozen; rectify, touch and mark-client refuse,
a new submission from the person is delivered but not merged into it, and the purge keeps it
past its expiry. Withdrawal of consent still works on a restricted record: it reduces
processing, it changes no field.

`truncate_ip` is the one way relay shortens an address, for the rare place something about a
client must be kept; the result is *truncated*, still personal data, not anonymous.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import update
from sqlalchemy.engine import Connection, RowMapping

from relay.crypto import KeyRing
from relay.minimise.retention import CLIENT, PROSPECT, Bounds, prospect_expiry
from relay.rights import rectification, register, subject_export
from relay.rights.register import ActionRefused
from relay.store import Store, audit, consent, rights_register
from relay.store import prospects as records
from relay.store.tables import (
    prospects,
    submissions,
)

T = TypeVar("T")
RESTRICTED_MSG = (
    "the record is restricted: unrestrict it first (nothing changes it while restricted)"
)


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
    mac = keyring.mac(email)

    def job(conn: Connection) -> int:
        request_id = audit.open_request(
            conn, kind=kind, subject_mac=mac, received_at=received_at, actor=actor
        )
        detail = json.dumps({"request": request_id, "kind": kind})
        audit.add_entry(conn, now, actor, "request.received", register.subject_ref(mac), detail)
        return request_id

    return await store.write(job)


async def export_subject(
    store: Store,
    keyring: KeyRing,
    email: str,
    *,
    actor: str,
    now: datetime,
    controller: dict[str, str | None],
    bounds: Bounds | None = None,
    request_id: int | None = None,
    received_at: datetime | None = None,
) -> dict[str, Any]:
    """Everything relay holds about `email` (arts. 15 and 20), as JSON-ready data.

    `found` says plainly whether relay holds anything at all under this address.
    """
    macs = keyring.macs(email)

    def body(conn: Connection) -> tuple[dict[str, Any], dict[str, int]]:
        row = records.find_row(conn, macs)
        events = consent.events_of(macs)(conn)
        subs = subject_export.submissions_of(conn, keyring, macs)
        opposed = consent.is_opposed(conn, macs)
        register_entries = subject_export.requests_export(audit.requests_of(conn, macs), now)
        export = {
            "schema": "relay.subject-export/2",
            "generated_at": now.isoformat(),
            "controller": controller,
            "subject": {"email": records.normalise(email)},
            "found": bool(row is not None or subs or events or opposed),
            "prospect": None if row is None else subject_export.prospect_dict(keyring, row),
            "marketing": {
                "consent": consent.consent_state(events),
                "on_opposition_list": opposed,
                "consent_chain_verified": consent.chain_ok(events),
            },
            "consent_events": subject_export.events_export(events),
            "submissions": subs,
            "requests": register_entries,
            "processing": subject_export.processing_info(bounds or Bounds()),
        }
        counts = {"prospect": int(row is not None), "submissions": len(subs)}
        counts["consent_events"] = len(events)
        return export, counts

    return await register.answer(
        store,
        "export",
        macs,
        actor=actor,
        now=now,
        request_id=request_id,
        received_at=received_at,
        body=body,
    )


async def find_prospect(
    store: Store, keyring: KeyRing, email: str, *, actor: str, now: datetime
) -> dict[str, Any] | None:
    """The record of `email` for an admin lookup; the view itself is audited (not a request)."""
    macs = keyring.macs(email)

    def job(conn: Connection) -> dict[str, Any] | None:
        row = records.find_row(conn, macs)
        audit.add_entry(
            conn,
            now,
            actor,
            "prospect.view",
            register.subject_ref(macs[0]),
            json.dumps({"found": int(bool(row))}),
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


def _live_row(conn: Connection, macs: list[str]) -> RowMapping:
    row = records.find_row(conn, macs)
    if row is None:
        msg = "no record for this address"
        raise ActionRefused(msg)
    if row["restricted"]:
        raise ActionRefused(RESTRICTED_MSG)
    return row


async def rectify_subject(
    store: Store,
    keyring: KeyRing,
    email: str,
    *,
    actor: str,
    now: datetime,
    phone_region: str = "FR",
    name: str | None = None,
    company: str | None = None,
    phone: str | None = None,
    new_email: str | None = None,
    request_id: int | None = None,
    received_at: datetime | None = None,
) -> bool:
    """Art. 16: correct fields of the record, validated as the form validates them.

    Refused (ActionRefused, recorded as refused) if there is no record, it is restricted, or a
    value is invalid (a required field emptied, a phone that is not one, a bad address).
    """
    macs = keyring.macs(email)
    changes = {"name": name, "company": company, "phone": phone, "email": new_email}

    def body(conn: Connection) -> tuple[bool, dict[str, int]]:
        clean = rectification.validate(changes, phone_region=phone_region)
        row = _live_row(conn, macs)
        old = row["email_mac"]
        values = {
            f: subject_export.open_field(keyring, row[f"{f}_enc"], old, f) for f in records.FIELDS
        }
        values.update(clean)
        new_mac = old
        if "email" in clean:
            new_macs = keyring.macs(clean["email"] or "")
            other = records.find_row(conn, new_macs)
            if other is not None and other["id"] != row["id"]:
                msg = "the new address already has a record; erase or rectify that one first"
                raise ActionRefused(msg)
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
        return True, {"rectified": len(clean)}

    return await register.answer(
        store,
        "rectify",
        macs,
        actor=actor,
        now=now,
        request_id=request_id,
        received_at=received_at,
        body=body,
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
    """Art. 18: mark the record restricted (frozen) or lift it; refused if there is no record."""
    macs = keyring.macs(email)

    def body(conn: Connection) -> tuple[bool, dict[str, int]]:
        result = conn.execute(
            update(prospects)
            .where(prospects.c.email_mac.in_(macs))
            .values(restricted=restricted, updated_at=now)
        )
        if not result.rowcount:
            msg = "no record for this address"
            raise ActionRefused(msg)
        kind = rights_register.RESTRICT if restricted else rights_register.UNRESTRICT
        rights_register.note(conn, kind, macs, now)  # re-applied by `relay db restore`
        return True, {"records": 1}

    return await register.answer(
        store,
        "restrict" if restricted else "unrestrict",
        macs,
        actor=actor,
        now=now,
        request_id=request_id,
        received_at=received_at,
        body=body,
    )


@dataclass(frozen=True)
class Withdrawal:
    """What a withdrawal did: `changed` (a new event or opposition entry) and `known` (relay
    held a record or consent history for the address before; if not, only the opposition
    list now names it, by keyed hash)."""

    changed: bool
    known: bool


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
) -> Withdrawal:
    """Art. 7(3) / 21(2): a `withdrawn` event and an opposition entry."""
    macs = keyring.macs(email)

    def body(conn: Connection) -> tuple[Withdrawal, dict[str, int]]:
        events = consent.events_of(macs)(conn)
        known = bool(events) or records.find_row(conn, macs) is not None
        already = consent.consent_state(events) == consent.WITHDRAWN
        added = consent.oppose(conn, macs[0], macs, now)
        if not already:
            consent.append_event(
                conn, subject_mac=macs[0], event=consent.WITHDRAWN, occurred_at=now, source=source
            )
        changed = added or not already
        rights_register.note(conn, rights_register.WITHDRAW, macs, now)  # for `relay db restore`
        counts = {"withdrawn": int(not already), "opposition_added": int(added)}
        counts["known"] = int(known)
        return Withdrawal(changed=changed, known=known), counts

    return await register.answer(
        store,
        "withdraw",
        macs,
        actor=actor,
        now=now,
        request_id=request_id,
        received_at=received_at,
        body=body,
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
        row = records.find_row(conn, macs)
        if row is None:
            return None
        if row["restricted"]:
            raise ActionRefused(RESTRICTED_MSG)
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
        action = "client" if status == CLIENT and row["status"] == PROSPECT else "touch"
        audit.add_entry(conn, now, actor, f"prospect.{action}", register.subject_ref(macs[0]))
        return expires

    return await store.write(job)
