"""The minimal prospect record and its consent history, found by keyed hash of the email.

A prospect row holds only what the person typed into a form (name, company, phone, email, each
sealed with AAD ``prospect:<email_mac>:<field>`` so a ciphertext cannot be moved to another row
or field), the dates, the legal basis of the last interaction, status and expiry. Never the
message text, never an IP address.
Consent events, the opposition list and wordings are in relay.store.consent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, case, false, func, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from relay.crypto import normalise_email
from relay.minimise.retention import CLIENT, PROSPECT, prospect_expiry
from relay.store.bulk import BulkStatement
from relay.store.consent import GRANTED, ConsentGrant, append_event, lift_opposition
from relay.store.db import insert_for
from relay.store.tables import UTC_TS, consent_events, opposition, prospects

if TYPE_CHECKING:
    from relay.crypto import KeyRing

FIELDS = ("email", "name", "company", "phone")
MERGED = "merged"
RESTRICTED = "restricted"


def normalise(email: str) -> str:
    """The one spelling of an address relay stores and hashes."""
    return normalise_email(email)


def aad(email_mac: str, field: str) -> bytes:
    """What binds a prospect ciphertext to its row (by the person's keyed hash) and field."""
    return f"prospect:{email_mac}:{field}".encode()


@dataclass(frozen=True)
class ProspectUpsert:
    """The prospect side of one accepted submission, already sealed (built by the web layer).

    `lookup_macs` are the email's keyed hashes under every key (newest first = `email_mac`), so
    a record hashed before a key rotation is still found. `keyring` is used only on that rare
    path, to re-seal the old row's fields under the new hash.
    """

    email_mac: str
    lookup_macs: tuple[str, ...]
    email_enc: bytes
    name_enc: bytes
    company_enc: bytes | None
    phone_enc: bytes | None
    legal_basis: str
    consent: ConsentGrant | None
    keyring: KeyRing


def find_row(conn: Connection, macs: Sequence[str]) -> RowMapping | None:
    row = conn.execute(select(prospects).where(prospects.c.email_mac.in_(list(macs)))).first()
    return None if row is None else row._mapping


def _reseal(keyring: KeyRing, token: bytes | None, old: str, new: str, field: str) -> bytes | None:
    if token is None:
        return None
    return keyring.seal(keyring.open(token, aad(old, field)), aad(new, field))


def rehash(conn: Connection, old: str, new: str) -> None:
    """Move everything linked to a person's old keyed hash onto the new one."""
    conn.execute(
        update(consent_events).where(consent_events.c.subject_mac == old).values(subject_mac=new)
    )
    conn.execute(update(opposition).where(opposition.c.subject_mac == old).values(subject_mac=new))


_FAST: dict[str, Any] = {}
_RESTRICTED = select(prospects.c.restricted).where(prospects.c.email_mac == bindparam("mac"))
_FAST_COLUMNS = (
    "email_mac",
    "email_enc",
    "name_enc",
    "company_enc",
    "phone_enc",
    "first_seen_at",
    "last_interaction_at",
    "last_legal_basis",
    "status",
    "restricted",
    "expires_at",
    "updated_at",
)


def _fast_statement(dialect: str) -> Any:
    """INSERT … ON CONFLICT (email_mac) DO UPDATE, built once per dialect with bound
    parameters: building a statement with `.values(**row)` costs more CPU than running it."""
    if dialect in _FAST:
        return _FAST[dialect]
    insert_fn = insert_for(dialect)
    stmt = insert_fn(prospects).values({name: bindparam(name) for name in _FAST_COLUMNS})
    new, old = stmt.excluded, prospects.c
    later_on_record = old.last_interaction_at > new.last_interaction_at
    stmt = stmt.on_conflict_do_update(
        index_elements=[old.email_mac],
        set_={
            "email_enc": new.email_enc,
            "name_enc": new.name_enc,
            "company_enc": func.coalesce(new.company_enc, old.company_enc),
            "phone_enc": func.coalesce(new.phone_enc, old.phone_enc),
            "last_interaction_at": case(
                (later_on_record, old.last_interaction_at), else_=new.last_interaction_at
            ),
            "last_legal_basis": new.last_legal_basis,
            "expires_at": case(
                (later_on_record, old.expires_at),
                (old.status == CLIENT, bindparam("client_expires_at", type_=UTC_TS)),
                else_=new.expires_at,
            ),
            "updated_at": new.updated_at,
        },
        where=old.restricted.is_(false()),
    )
    _FAST[dialect] = stmt
    return stmt


def is_fast(p: ProspectUpsert) -> bool:
    """The common case: no consent event to chain and one key in the ring (so the record, if
    any, is under this very hash): one INSERT … ON CONFLICT statement does it all."""
    return len(p.lookup_macs) == 1 and p.consent is None


def _fast_params(p: ProspectUpsert, now: datetime) -> dict[str, Any]:
    return {
        "email_mac": p.email_mac,
        "email_enc": p.email_enc,
        "name_enc": p.name_enc,
        "company_enc": p.company_enc,
        "phone_enc": p.phone_enc,
        "first_seen_at": now,
        "last_interaction_at": now,
        "last_legal_basis": p.legal_basis,
        "status": PROSPECT,
        "restricted": False,
        "expires_at": prospect_expiry(now),
        "updated_at": now,
        "client_expires_at": prospect_expiry(now, CLIENT),
    }


def _fast_upsert(conn: Connection, p: ProspectUpsert, now: datetime) -> None:
    """One record in one statement. The WHERE leaves a restricted record as it is."""
    conn.execute(_fast_statement(conn.dialect.name), _fast_params(p, now))


def fast_upsert_many(conn: Connection, items: Sequence[tuple[ProspectUpsert, datetime]]) -> None:
    """Several `is_fast` refreshes in one executemany (in order: the same person twice in one
    group ends with the later values), for the group-commit writer."""
    if items:
        params = [_fast_params(p, now) for p, now in items]
        _fast_bulk(conn.dialect.name).execute(conn, params)


_BULK: dict[str, BulkStatement] = {}


def _fast_bulk(dialect: str) -> BulkStatement:
    """The fast upsert as one driver executemany (relay.store.bulk), built once per dialect."""
    bulk = _BULK.get(dialect)
    if bulk is None:
        bulk = _BULK[dialect] = BulkStatement(_fast_statement(dialect))
    return bulk


def upsert(conn: Connection, p: ProspectUpsert, submission_id: str, now: datetime) -> str:
    """Create or refresh the record for an accepted submission (in the accept transaction).

    A restricted record is left exactly as it is (RESTRICTED is returned); the submission
    itself is still stored and delivered by the caller. A ticked box is recorded as a grant
    either way: it is the person's own act, it changes no field of the frozen record, and the
    email to sales, the submission's consent flag and the export then all say "given"
    (docs/privacy.md, "Restricted person, new submission").
    """
    outcome = MERGED
    if len(p.lookup_macs) == 1:
        _fast_upsert(conn, p, now)
        if p.consent is None:
            return MERGED
        if conn.execute(_RESTRICTED, {"mac": p.email_mac}).scalar_one():
            outcome = RESTRICTED
    else:
        outcome = _slow_upsert(conn, p, now)
    if p.consent is not None:
        c = p.consent
        append_event(
            conn,
            subject_mac=p.email_mac,
            event=GRANTED,
            occurred_at=now,
            source=f"form:{c.form_id}",
            form_id=c.form_id,
            submission_id=submission_id,
            wording_version=c.wording_version,
            wording_sha256=c.wording_sha256,
            notice_version=c.notice_version,
            language=c.language,
            field=c.field,
            value=c.value,
        )
        # a fresh positive act on the form supersedes an earlier opposition
        lift_opposition(conn, p.lookup_macs)
    return outcome


def _slow_upsert(conn: Connection, p: ProspectUpsert, now: datetime) -> str:
    """Several keys in the ring: the record may be under an older key's hash; move it."""
    row = find_row(conn, p.lookup_macs)
    if row is None:
        conn.execute(
            insert(prospects).values(
                email_mac=p.email_mac,
                email_enc=p.email_enc,
                name_enc=p.name_enc,
                company_enc=p.company_enc,
                phone_enc=p.phone_enc,
                first_seen_at=now,
                last_interaction_at=now,
                last_legal_basis=p.legal_basis,
                status=PROSPECT,
                restricted=False,
                expires_at=prospect_expiry(now),
                updated_at=now,
            )
        )
    elif row["restricted"]:
        return RESTRICTED
    else:
        old = row["email_mac"]
        company, phone = p.company_enc, p.phone_enc
        if company is None:
            company = _reseal(p.keyring, row["company_enc"], old, p.email_mac, "company")
        if phone is None:
            phone = _reseal(p.keyring, row["phone_enc"], old, p.email_mac, "phone")
        if old != p.email_mac:
            rehash(conn, old, p.email_mac)
        last = max(row["last_interaction_at"], now)
        conn.execute(
            update(prospects)
            .where(prospects.c.id == row["id"])
            .values(
                email_mac=p.email_mac,
                email_enc=p.email_enc,
                name_enc=p.name_enc,
                company_enc=company,
                phone_enc=phone,
                last_interaction_at=last,
                last_legal_basis=p.legal_basis,
                expires_at=prospect_expiry(last, row["status"]),
                updated_at=now,
            )
        )
    return MERGED
