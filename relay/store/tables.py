"""Table definitions, nothing else. Alembic migrations under migrations/ create them.

Personal data appears only in columns ending in ``_enc`` (AES-GCM ciphertexts, see
relay.crypto) and as keyed hashes in columns ending in ``_mac``. No column ever holds an IP
address or message text in clear.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import false
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, whatever the backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            msg = "naive datetime given to the database; relay stores aware UTC only"
            raise ValueError(msg)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)  # noqa: S101 - the column type guarantees it
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UTC_TS = UTCDateTime()

#: The outbox and the delivery log in one row per submission. While `body_enc` is set the row
#: is the outbox entry (the encrypted fields); once delivery is final the body is wiped and
#: what stays is the delivery log: ids, form, legal record, state and timestamps.
submissions = Table(
    "submissions",
    metadata,
    Column("id", String(36), primary_key=True),  # UUIDv7: sorts by arrival
    Column("form_id", String(64), nullable=False),
    Column("received_at", UTC_TS, nullable=False),
    # the legal record (C1): basis, notice shown, consent given or not
    Column("legal_basis", String(32), nullable=False),
    Column("notice_version", String(64), nullable=False),
    Column("consent_given", Boolean, nullable=False, default=False),
    Column("consent_wording_version", String(64)),
    Column("consent_at", UTC_TS),
    # the encrypted submission (name, email, phone, company, message) and who it belongs to
    Column("body_enc", LargeBinary),
    Column("body_wiped_at", UTC_TS),
    Column("subject_mac", String(64)),  # keyed hash of the email; NULL once unlinked (erasure)
    # delivery
    Column("state", String(16), nullable=False),  # queued|retrying|sending|accepted|delivered|...
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTC_TS),
    Column("first_attempt_at", UTC_TS),
    Column("lease_owner", String(64)),
    Column("lease_expires_at", UTC_TS),
    Column("provider_message_id", String(255)),
    Column("last_error", Text),
    Column("last_event", String(32)),
    Column("last_event_at", UTC_TS),
    Column("final_at", UTC_TS),
    Column("updated_at", UTC_TS, nullable=False),
    # issue 12: a `relay send-test` message (no person behind it), not a submission
    Column("test", Boolean, nullable=False, default=False, server_default=false()),
    # spam defence: the rules that quarantined it (names only, e.g. "max_links,time_trap")
    Column("quarantine_reason", String(128)),
    Index("ix_submissions_due", "state", "next_attempt_at"),
    Index("ix_submissions_subject", "subject_mac"),
    Index("ix_submissions_form_received", "form_id", "received_at"),
    Index("ix_submissions_provider_message_id", "provider_message_id"),
)

#: One row per attempt to hand a submission to the transport. No personal data.
delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "submission_id",
        String(36),
        ForeignKey("submissions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("attempted_at", UTC_TS, nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("http_status", Integer),
    Column("duration_ms", Integer),
    Column("error", Text),
)

#: Provider events (webhooks, log reconciliation) on a submission's timeline. No personal data.
delivery_events = Table(
    "delivery_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "submission_id",
        String(36),
        ForeignKey("submissions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("provider_event_id", String(128), unique=True),  # idempotency of webhooks
    Column("event", String(32), nullable=False),
    Column("severity", String(16)),
    Column("reason", String(128)),
    Column("description", Text),
    Column("occurred_at", UTC_TS, nullable=False),
    Column("recorded_at", UTC_TS, nullable=False),
    Column("source", String(16), nullable=False),  # webhook | sync
)

#: Single-use webhook tokens (replay protection), kept past the freshness window.
webhook_tokens = Table(
    "webhook_tokens",
    metadata,
    Column("token", String(128), primary_key=True),
    Column("seen_at", UTC_TS, nullable=False, index=True),
)

#: Single-use record of ALTCHA proofs of work: a hash of the challenge's nonce, kept until the
#: challenge expires (then purged). Shared by every instance; no personal data.
proof_nonces = Table(
    "proof_nonces",
    metadata,
    Column("nonce_id", String(64), primary_key=True),
    Column("expires_at", UTC_TS, nullable=False, index=True),
)

#: First answers to Idempotency-Key requests, by keyed hash of (form, key); 24 h.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key_mac", String(64), primary_key=True),
    Column("form_id", String(64), nullable=False),
    Column("submission_id", String(36), nullable=False),
    Column("created_at", UTC_TS, nullable=False, index=True),
    Column("status_code", Integer, nullable=False),
    Column("response", Text, nullable=False),  # the JSON answer: ids and URLs only
)

#: The minimal prospect record (issue "Keep the policy's promises"), one per person.
prospects = Table(
    "prospects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email_mac", String(64), nullable=False, unique=True),
    Column("email_enc", LargeBinary, nullable=False),
    Column("name_enc", LargeBinary),
    Column("company_enc", LargeBinary),
    Column("phone_enc", LargeBinary),
    Column("first_seen_at", UTC_TS, nullable=False),
    Column("last_interaction_at", UTC_TS, nullable=False),
    Column("last_legal_basis", String(32), nullable=False),
    Column("status", String(16), nullable=False, default="prospect"),  # prospect|client
    Column("restricted", Boolean, nullable=False, default=False),
    Column("expires_at", UTC_TS, nullable=False, index=True),
    Column("updated_at", UTC_TS, nullable=False),
)

#: Exact consent wordings, one immutable row per (form, version): what the person was shown.
consent_wordings = Table(
    "consent_wordings",
    metadata,
    Column("form_id", String(64), primary_key=True),
    Column("version", String(64), primary_key=True),
    Column("text", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", UTC_TS, nullable=False),
)

#: Append-only consent events (grant / withdrawal), provable (C2).
consent_events = Table(
    "consent_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subject_mac", String(64), nullable=False, index=True),
    Column("event", String(16), nullable=False),  # granted | withdrawn
    Column("purpose", String(32), nullable=False, default="marketing"),
    Column("occurred_at", UTC_TS, nullable=False),
    Column("source", String(128), nullable=False),
    Column("form_id", String(64)),
    Column("submission_id", String(36)),
    Column("wording_version", String(64)),
    Column("wording_sha256", String(64)),
    Column("notice_version", String(64)),
    Column("language", String(16)),
    Column("field", String(64)),
    Column("value", String(64)),
    Column("prev_hash", String(64)),
)

#: Opposition list: only a keyed hash of the address, so nobody is re-enrolled silently (P4).
opposition = Table(
    "opposition",
    metadata,
    Column("subject_mac", String(64), primary_key=True),
    Column("added_at", UTC_TS, nullable=False),
    Column("keep_until", UTC_TS, nullable=False),
)

#: Who did what in admin pages and data-subject actions; counts and references, no content.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTC_TS, nullable=False, index=True),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(128)),
    Column("detail", Text),
)

#: The register of data-subject requests and their one-month deadlines (R1).
subject_requests = Table(
    "subject_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("subject_mac", String(64)),
    Column("received_at", UTC_TS, nullable=False),
    Column("due_at", UTC_TS, nullable=False),
    Column("completed_at", UTC_TS),
    Column("actor", String(128), nullable=False),
    Column("outcome", Text),
)

#: issue 12: every erasure, restriction (and its lifting) and consent withdrawal, as keyed hashes
#: and a date only, so `relay db restore` can re-apply those made after a backup was taken.
#: `subject_macs` is the person's email hashed under every key of the ring at the time
#: (space-separated), so a backup made before a key rotation is matched too.
rights_register = Table(
    "rights_register",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # erase | restrict | unrestrict | withdraw
    Column("subject_macs", Text, nullable=False),
    Column("recorded_at", UTC_TS, nullable=False),
)

#: Admin sessions, so that logging out (or an expiry) ends a session on the server too: the
#: cookie carries a random id, this table only its keyed hash. A copied cookie stops working
#: at logout.
admin_sessions = Table(
    "admin_sessions",
    metadata,
    Column("id_mac", String(64), primary_key=True),
    Column("user_name", String(64), nullable=False),
    Column("created_at", UTC_TS, nullable=False),
    Column("expires_at", UTC_TS, nullable=False, index=True),
)
