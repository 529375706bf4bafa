"""Release or delete a quarantined submission: what the CLI and /admin both call.

Release: the submission becomes `queued` (the dispatcher sends it) and is recorded as if it had
just been accepted: the prospect record is created or refreshed with the submission's date, and
a ticked marketing box gives its consent event. Delete: the row goes. Both write a timeline line
(release) and an audit line (who, what, which id), never the content.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from relay import states
from relay.accept.submission import Submission, validate_submission
from relay.config import FormConfig
from relay.crypto import DecryptionFailed, KeyRing
from relay.store import prospects
from relay.store.deliveries import write_audit
from relay.store.outbox import open_body
from relay.store.tables import delivery_attempts, delivery_events, submissions

# The same prospect refresh an accepted submission gets (pure apart from the key ring).
from relay.web.prospect import prospect_of

#: Outcomes: released | deleted | not_found | not_quarantined | body_gone | form_gone | unreadable
EXPLAIN = {
    "released": "released: it will be delivered shortly",
    "deleted": "deleted",
    "not_found": "no such submission",
    "not_quarantined": "it is not quarantined",
    "body_gone": "its body was wiped (erasure): it can only be deleted",
    "form_gone": "its form is no longer in the forms file: it can only be deleted",
    "unreadable": "its body cannot be opened with the current keys: it can only be deleted",
}


@dataclass(frozen=True)
class Result:
    outcome: str

    @property
    def done(self) -> bool:
        return self.outcome in ("released", "deleted")

    @property
    def explanation(self) -> str:
        return EXPLAIN[self.outcome]


def _reopen(
    keyring: KeyRing, form: FormConfig, sid: str, body: bytes, consent_given: bool
) -> prospects.ProspectUpsert | None:
    try:
        fields = open_body(keyring, sid, body)
    except (DecryptionFailed, ValueError):
        return None
    sub = validate_submission(fields, phone_region="FR")  # stored phones are E.164 already
    if not isinstance(sub, Submission):
        return None
    consent = form.marketing_consent
    raw = {consent.field: "on"} if consent is not None and consent_given else {}
    return prospect_of(keyring, form, sub, dict(raw))


def release(
    submission_id: str,
    now: datetime,
    *,
    actor: str,
    keyring: KeyRing,
    forms: dict[str, FormConfig],
) -> Callable[[Connection], Result]:
    """Queue a quarantined submission for delivery and record it like an accepted one."""

    def job(conn: Connection) -> Result:
        row = conn.execute(
            select(
                submissions.c.state,
                submissions.c.form_id,
                submissions.c.body_enc,
                submissions.c.consent_given,
                submissions.c.received_at,
            ).where(submissions.c.id == submission_id)
        ).first()
        if row is None:
            return Result("not_found")
        state, form_id, body, consent_given, received_at = row
        if state != states.QUARANTINED:
            return Result("not_quarantined")
        if body is None:
            return Result("body_gone")
        form = forms.get(form_id)
        if form is None:
            return Result("form_gone")
        prospect = _reopen(keyring, form, submission_id, body, bool(consent_given))
        if prospect is None:
            return Result("unreadable")
        conn.execute(
            update(submissions)
            .where(submissions.c.id == submission_id)
            .values(
                state=states.QUEUED,
                next_attempt_at=now,
                subject_mac=prospect.email_mac,
                updated_at=now,
            )
        )
        prospects.upsert(conn, prospect, submission_id, received_at)
        conn.execute(
            insert(delivery_events).values(
                submission_id=submission_id,
                event="released",
                description=f"from quarantine by {actor}",
                occurred_at=now,
                recorded_at=now,
                source="admin",
            )
        )
        write_audit(conn, now, actor, "quarantine.release", submission_id)
        return Result("released")

    return job


def remove(submission_id: str, now: datetime, *, actor: str) -> Callable[[Connection], Result]:
    """Delete a quarantined submission (and its timeline) for good."""

    def job(conn: Connection) -> Result:
        state = conn.execute(
            select(submissions.c.state).where(submissions.c.id == submission_id)
        ).scalar_one_or_none()
        if state is None:
            return Result("not_found")
        if state != states.QUARANTINED:
            return Result("not_quarantined")
        for table in (delivery_events, delivery_attempts):
            conn.execute(delete(table).where(table.c.submission_id == submission_id))
        conn.execute(delete(submissions).where(submissions.c.id == submission_id))
        write_audit(conn, now, actor, "quarantine.delete", submission_id)
        return Result("deleted")

    return job
