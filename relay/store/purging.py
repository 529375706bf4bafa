"""The purge as one database job: every retention rule of relay.minimise.retention, counted
or applied.

Each rule is a pair (what it selects, what it does); a dry run only counts, a real run applies
every rule in one transaction and appends one audit entry holding the counts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, false, func, not_, select, true, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from relay import states
from relay.minimise import retention
from relay.minimise.retention import Bounds, PurgeReport
from relay.store import audit
from relay.store.tables import (
    audit_log,
    consent_events,
    idempotency_keys,
    opposition,
    proof_nonces,
    prospects,
    rights_register,
    subject_requests,
    submissions,
)


def _count(conn: Connection, table: Any, where: ColumnElement[bool]) -> int:
    return int(conn.execute(select(func.count()).select_from(table).where(where)).scalar_one())


def _deleted(conn: Connection, table: Any, where: ColumnElement[bool]) -> int:
    return int(conn.execute(delete(table).where(where)).rowcount or 0)


def _expired(now: datetime) -> ColumnElement[bool]:
    """Records past their expiry, except restricted ones: art. 18(1)(c) restriction keeps data
    for a legal claim, so they stay until the restriction is lifted."""
    return and_(prospects.c.expires_at <= now, prospects.c.restricted.is_(false()))


def restricted_kept_job(now: datetime) -> Callable[[Connection], int]:
    """Restricted records past their expiry (kept by the purge; listed so none is forgotten)."""

    def query(conn: Connection) -> int:
        where = and_(prospects.c.expires_at <= now, prospects.c.restricted.is_(true()))
        return _count(conn, prospects, where)

    return query


def _wheres(now: datetime, bounds: Bounds) -> dict[str, tuple[Any, ColumnElement[bool]]]:
    expired_macs = select(prospects.c.email_mac).where(_expired(now))
    live_macs = select(prospects.c.email_mac)
    log_cutoff = retention.delivery_log_cutoff(now)
    in_log = submissions.c.received_at >= log_cutoff  # rows the first rule does not delete
    quarantined = submissions.c.state == states.QUARANTINED
    # The rules select disjoint rows, so the dry run's counts equal the real run's even though
    # the real run applies them one after the other.
    return {
        "delivery_log_rows": (submissions, submissions.c.received_at < log_cutoff),
        "bodies_wiped": (
            submissions,
            and_(
                in_log,
                ~quarantined,  # a quarantined body is kept for its own bound (below)
                submissions.c.body_enc.is_not(None),
                submissions.c.received_at < retention.body_cutoff(now, bounds.body_days),
            ),
        ),
        "consent_events": (
            consent_events,
            (consent_events.c.subject_mac.in_(expired_macs))
            | and_(
                not_(consent_events.c.subject_mac.in_(live_macs)),
                consent_events.c.occurred_at <= retention.orphan_consent_cutoff(now),
            ),
        ),
        "submissions_unlinked": (
            submissions,
            and_(in_log, ~quarantined, submissions.c.subject_mac.in_(expired_macs)),
        ),
        "prospects": (prospects, _expired(now)),
        "opposition_entries": (opposition, opposition.c.keep_until <= now),
        "audit_entries": (
            audit_log,
            audit_log.c.at < retention.audit_cutoff(now, bounds.audit_months),
        ),
        "requests": (
            subject_requests,
            and_(
                subject_requests.c.completed_at.is_not(None),
                subject_requests.c.completed_at
                < retention.request_log_cutoff(now, bounds.request_years),
            ),
        ),
        "idempotency_keys": (
            idempotency_keys,
            idempotency_keys.c.created_at < now - timedelta(hours=bounds.idempotency_hours),
        ),
        "rights_register_entries": (
            rights_register,
            rights_register.c.recorded_at < retention.rights_register_cutoff(now),
        ),
        "quarantined": (
            submissions,
            and_(
                in_log,
                quarantined,
                submissions.c.received_at
                < retention.quarantine_cutoff(now, bounds.quarantine_days),
            ),
        ),
        "proof_nonces": (proof_nonces, proof_nonces.c.expires_at <= now),
    }


def count_job(now: datetime, bounds: Bounds) -> Callable[[Connection], PurgeReport]:
    """What a purge at `now` would remove, touching nothing (`relay purge --dry-run`)."""

    def query(conn: Connection) -> PurgeReport:
        counts = {name: _count(conn, t, w) for name, (t, w) in _wheres(now, bounds).items()}
        return PurgeReport(**counts)

    return query


def purge_job(now: datetime, bounds: Bounds, *, actor: str) -> Callable[[Connection], PurgeReport]:
    """Apply every rule at `now`; the audit log gets the counts (never what was removed)."""

    def job(conn: Connection) -> PurgeReport:
        counts: dict[str, int] = {}
        for name, (table, where) in _wheres(now, bounds).items():
            if name == "submissions_unlinked":
                result = conn.execute(update(submissions).where(where).values(subject_mac=None))
                counts[name] = int(result.rowcount or 0)
            elif name == "bodies_wiped":
                result = conn.execute(
                    update(submissions).where(where).values(body_enc=None, body_wiped_at=now)
                )
                counts[name] = int(result.rowcount or 0)
            else:
                counts[name] = _deleted(conn, table, where)
        report = PurgeReport(**counts)
        if report.total:  # an hourly "nothing to do" would only bury the entries that matter
            audit.add_entry(conn, now, actor, "purge", None, json.dumps(report.as_dict()))
        return report

    return job
