"""`relay send-test` messages in the delivery log: a row marked `test`, with no person behind it.

The row has no body and no keyed hash: nothing is stored about anyone, no prospect is made.
It is claimed by the command itself (lease owner `send-test`) so no dispatcher sends it; if
the command dies, the lease expires and a dispatcher finds no body and marks it failed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from relay import states
from relay.config import FormConfig
from relay.store.tables import delivery_events, submissions

OWNER = "send-test"


def insert_test_send(
    submission_id: str, form: FormConfig, now: datetime, lease: timedelta
) -> Callable[[Connection], None]:
    """The write job adding the test row, already `sending` and leased to the command."""

    def job(conn: Connection) -> None:
        conn.execute(
            insert(submissions).values(
                id=submission_id,
                form_id=form.id,
                received_at=now,
                legal_basis=form.legal_basis.value,
                notice_version=form.notice_version,
                consent_given=False,
                state=states.SENDING,
                attempts=1,
                first_attempt_at=now,
                lease_owner=OWNER,
                lease_expires_at=now + lease,
                updated_at=now,
                test=True,
            )
        )

    return job


def last_event_description(submission_id: str) -> Callable[[Connection], str | None]:
    """What the receiving server said last (delivery-status of the newest event), if anything."""

    def query(conn: Connection) -> str | None:
        return conn.execute(
            select(delivery_events.c.description)
            .where(
                delivery_events.c.submission_id == submission_id,
                delivery_events.c.description.is_not(None),
            )
            .order_by(delivery_events.c.occurred_at.desc(), delivery_events.c.id.desc())
            .limit(1)
        ).scalar()

    return query
