"""The outbox side of the submissions table: accept a submission (with its idempotency key).

Functions here are synchronous Core on a `Connection`; the Store runs them in its writer
(writes) or on its pool (reads).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from relay import states
from relay.crypto import DecryptionFailed, KeyRing
from relay.store import prospects
from relay.store.bulk import BulkStatement
from relay.store.prospects import ProspectUpsert
from relay.store.tables import idempotency_keys, submissions

QUEUED = states.QUEUED
#: Built once: a statement object reused with new parameters hits SQLAlchemy's compiled cache.
_INSERT_SUBMISSION = insert(submissions)
_INSERT_IDEMPOTENCY = insert(idempotency_keys)
#: a group's simple accepts in one driver executemany (relay.store.bulk)
_BULK_SUBMISSIONS = BulkStatement(_INSERT_SUBMISSION)


def body_context(submission_id: str) -> bytes:
    """What a sealed body is bound to: copied to another row, it does not open."""
    return f"submission:{submission_id}".encode()


def seal_body(keyring: KeyRing, submission_id: str, fields: Mapping[str, Any]) -> bytes:
    """The submission's fields (name, email, phone, company, message) as one sealed JSON."""
    plain = json.dumps(dict(fields), ensure_ascii=False, separators=(",", ":"))
    return keyring.seal(plain.encode("utf-8"), body_context(submission_id))


def open_body(keyring: KeyRing, submission_id: str, token: bytes) -> dict[str, Any]:
    """The fields again; DecryptionFailed (unknown key, altered) or ValueError (not JSON)."""
    fields = json.loads(keyring.open(token, body_context(submission_id)))
    if not isinstance(fields, dict):
        msg = "a sealed body is not a JSON object"
        raise ValueError(msg)  # noqa: TRY004 - callers treat every malformed body alike
    return fields


#: Marks an idempotency answer stored sealed (rows written before carry the JSON in clear).
SEALED_ANSWER = "sealed:"


def seal_answer(keyring: KeyRing, key_mac: str, answer: str) -> str:
    """The first answer to an Idempotency-Key, sealed: its `next` may be a submitted `_next`
    URL whose query carries personal data, so nothing of it is kept in clear."""
    token = keyring.seal(answer.encode("utf-8"), f"idempotency:{key_mac}".encode())
    return SEALED_ANSWER + base64.urlsafe_b64encode(token).decode("ascii")


def open_answer(keyring: KeyRing, key_mac: str, stored: StoredAnswer) -> str:
    """The answer to replay; without the key that sealed it, the answer minus `next`."""
    if not stored.response.startswith(SEALED_ANSWER):
        return stored.response
    try:
        token = base64.urlsafe_b64decode(stored.response.removeprefix(SEALED_ANSWER))
        return keyring.open(token, f"idempotency:{key_mac}".encode()).decode("utf-8")
    except (DecryptionFailed, ValueError):
        return json.dumps({"ok": True, "id": stored.submission_id})


@dataclass(frozen=True)
class NewSubmission:
    """Everything stored for one accepted submission; `body_enc` is already sealed."""

    id: str
    form_id: str
    received_at: datetime
    legal_basis: str
    notice_version: str
    consent_given: bool
    consent_wording_version: str | None
    body_enc: bytes
    subject_mac: str
    #: the spam defence's rules when it is quarantined (state `quarantined`, never claimed)
    quarantine_reason: str | None = None

    @property
    def state(self) -> str:
        return QUEUED if self.quarantine_reason is None else states.QUARANTINED


@dataclass(frozen=True)
class Idempotency:
    """An Idempotency-Key, as its keyed hash, and the answer to keep for it."""

    key_mac: str
    status_code: int
    response: str
    not_before: datetime  # rows older than this are expired


@dataclass(frozen=True)
class StoredAnswer:
    """The first answer given for an idempotency key: replayed as it was."""

    submission_id: str
    status_code: int
    response: str


def find_answer(key_mac: str, not_before: datetime) -> Callable[[Connection], StoredAnswer | None]:
    def query(conn: Connection) -> StoredAnswer | None:
        row = conn.execute(
            select(
                idempotency_keys.c.submission_id,
                idempotency_keys.c.status_code,
                idempotency_keys.c.response,
            ).where(
                idempotency_keys.c.key_mac == key_mac,
                idempotency_keys.c.created_at >= not_before,
            )
        ).first()
        return None if row is None else StoredAnswer(row[0], row[1], row[2])

    return query


def _submission_params(sub: NewSubmission) -> dict[str, Any]:
    return {
        "id": sub.id,
        "form_id": sub.form_id,
        "received_at": sub.received_at,
        "legal_basis": sub.legal_basis,
        "notice_version": sub.notice_version,
        "consent_given": sub.consent_given,
        "consent_wording_version": sub.consent_wording_version,
        "consent_at": sub.received_at if sub.consent_given else None,
        "body_enc": sub.body_enc,
        "subject_mac": sub.subject_mac,
        "state": sub.state,
        "attempts": 0,
        "next_attempt_at": sub.received_at if sub.quarantine_reason is None else None,
        "updated_at": sub.received_at,
        "test": False,  # given, not defaulted: the driver's executemany computes no default
        "quarantine_reason": sub.quarantine_reason,
    }


@dataclass(frozen=True)
class AcceptJob:
    """The write job for one accepted submission: the outbox row, the idempotency answer and
    the prospect record (created or refreshed, with its consent event) commit together.

    Calling it runs it alone. The group writer hands all the AcceptJobs of one group to
    `run_many`, which writes the common ones with one executemany per table: the per-statement
    cost of SQLAlchemy is then paid once per group instead of once per submission.
    """

    sub: NewSubmission
    idem: Idempotency | None = None
    prospect: ProspectUpsert | None = None

    def __call__(self, conn: Connection) -> StoredAnswer | None:
        """Returns the earlier answer instead, storing nothing, when the key was already used."""
        idem = self.idem
        if idem is not None:
            earlier = find_answer(idem.key_mac, idem.not_before)(conn)
            if earlier is not None:
                return earlier
            conn.execute(delete(idempotency_keys).where(idempotency_keys.c.key_mac == idem.key_mac))
        conn.execute(_INSERT_SUBMISSION, _submission_params(self.sub))
        if idem is not None:
            conn.execute(
                _INSERT_IDEMPOTENCY,
                {
                    "key_mac": idem.key_mac,
                    "form_id": self.sub.form_id,
                    "submission_id": self.sub.id,
                    "created_at": self.sub.received_at,
                    "status_code": idem.status_code,
                    "response": idem.response,
                },
            )
        if self.prospect is not None:
            prospects.upsert(conn, self.prospect, self.sub.id, self.sub.received_at)
        return None

    @property
    def simple(self) -> bool:
        """No idempotency key and no consent event: nothing to read or chain first."""
        return self.idem is None and (self.prospect is None or prospects.is_fast(self.prospect))

    @staticmethod
    def run_many(conn: Connection, jobs: Sequence[AcceptJob]) -> list[StoredAnswer | None]:
        """All of a group's accepts: simple ones in bulk, the others one by one, in order."""
        simple = [job for job in jobs if job.simple]
        if simple:
            _BULK_SUBMISSIONS.execute(conn, [_submission_params(job.sub) for job in simple])
            prospects.fast_upsert_many(
                conn,
                [(job.prospect, job.sub.received_at) for job in simple if job.prospect],
            )
        return [None if job.simple else job(conn) for job in jobs]


def accept(
    sub: NewSubmission,
    idem: Idempotency | None = None,
    prospect: ProspectUpsert | None = None,
) -> AcceptJob:
    """The write job for one accepted submission (see AcceptJob)."""
    return AcceptJob(sub, idem, prospect)


def idempotency_window(now: datetime, hours: int) -> datetime:
    return now - timedelta(hours=hours)
