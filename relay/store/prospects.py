"""The minimal prospect record and its consent history, found by keyed hash of the email.

A prospect row holds only what the person typed into a form (name, company, phone, email, each
sealed with AAD ``prospect:<email_mac>:<field>`` so a ciphertext cannot be moved to another row
or field), the dates, the legal basis of the last interaction, status and expiry. Never the
message text, never an IP address.

Consent events are appended, never updated; each carries the SHA-256 of the previous event of
the same person (``prev_hash``), so an altered or removed event breaks the chain. The chain
covers every field but ``subject_mac``, which key rotation re-hashes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, case, delete, false, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, RowMapping

from relay.crypto import normalise_email
from relay.retention import CLIENT, PROSPECT, opposition_keep_until, prospect_expiry
from relay.store.tables import UTC_TS, consent_events, consent_wordings, opposition, prospects

if TYPE_CHECKING:
    from relay.crypto import KeyRing

FIELDS = ("email", "name", "company", "phone")
GRANTED = "granted"
WITHDRAWN = "withdrawn"
MERGED = "merged"
RESTRICTED = "restricted"


def normalise(email: str) -> str:
    """The one spelling of an address relay stores and hashes."""
    return normalise_email(email)


def aad(email_mac: str, field: str) -> bytes:
    """What binds a prospect ciphertext to its row (by the person's keyed hash) and field."""
    return f"prospect:{email_mac}:{field}".encode()


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
    insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
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


def _fast_upsert(conn: Connection, p: ProspectUpsert, now: datetime) -> None:
    """The common case in one statement: no consent event to chain and one key in the ring (so
    the record, if any, is under this very hash). The WHERE leaves a restricted record as is."""
    conn.execute(
        _fast_statement(conn.dialect.name),
        {
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
        },
    )


def upsert(conn: Connection, p: ProspectUpsert, submission_id: str, now: datetime) -> str:
    """Create or refresh the record for an accepted submission (in the accept transaction).

    A restricted record is left exactly as it is, consent included (RESTRICTED is returned);
    the submission itself is still stored and delivered by the caller.
    """
    if len(p.lookup_macs) == 1:
        _fast_upsert(conn, p, now)
        if p.consent is None:
            return MERGED
        restricted = conn.execute(
            select(prospects.c.restricted).where(prospects.c.email_mac == p.email_mac)
        ).scalar_one()
        if restricted:
            return RESTRICTED
    elif _slow_upsert(conn, p, now) == RESTRICTED:
        return RESTRICTED
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
        conn.execute(delete(opposition).where(opposition.c.subject_mac.in_(p.lookup_macs)))
    return MERGED


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


def append_event(conn: Connection, *, subject_mac: str, **fields: Any) -> None:
    """Append one consent event, chained to the person's previous one."""
    last = conn.execute(
        select(consent_events)
        .where(consent_events.c.subject_mac == subject_mac)
        .order_by(consent_events.c.id.desc())
        .limit(1)
    ).first()
    values = {"purpose": "marketing", **fields}
    values["prev_hash"] = None if last is None else event_hash(last._mapping)
    row = dict.fromkeys(_CHAINED) | values | {"subject_mac": subject_mac}
    conn.execute(insert(consent_events), row)  # parameters, not .values(): cached statement


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
        for w in missing:
            conn.execute(
                insert(consent_wordings).values(
                    form_id=w.form_id,
                    version=w.version,
                    text=w.text,
                    sha256=wording_sha256(w.text),
                    created_at=now,
                )
            )
        return []

    return job
