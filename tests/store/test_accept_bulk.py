"""A group of accepts is written in bulk, with the same result as writing them one by one."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from relay.accept.submission import Submission, validate_submission
from relay.config import load_forms
from relay.crypto import KeyRing
from relay.ids import new_submission_id
from relay.store import Store, outbox
from relay.store.tables import consent_events, idempotency_keys, prospects, submissions
from relay.web.prospect import prospect_of
from tests.conftest import TEST_KEY
from tests.helpers import VALID

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def job_for(forms_file: Path, email: str, *, ticked: bool = False, key: str | None = None):
    keyring = KeyRing.from_text(TEST_KEY)
    form = load_forms(forms_file)["contact"]
    raw = {**VALID, "email": email, **({"newsletter": "on"} if ticked else {})}
    sub = validate_submission(raw, phone_region="FR")
    assert isinstance(sub, Submission)
    prospect = prospect_of(keyring, form, sub, raw)
    row = outbox.NewSubmission(
        id=new_submission_id(),
        form_id="contact",
        received_at=NOW,
        legal_basis="legitimate_interest",
        notice_version="2026-03-20",
        consent_given=ticked,
        consent_wording_version="v1",
        body_enc=os.urandom(64),
        subject_mac=prospect.email_mac,
    )
    idem = None
    if key is not None:
        idem = outbox.Idempotency(key, 202, '{"ok": true}', NOW - timedelta(hours=24))
    return outbox.accept(row, idem, prospect)


def count(table):
    def query(conn: Connection) -> int:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    return query


def test_a_mixed_group_of_accepts_is_written_completely(tmp_path, forms_file):
    """Simple accepts (bulk), a ticked box (consent event), an idempotency key and its replay,
    and the same person twice, all in one group: every row is there exactly once."""
    _mixed_group(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}", forms_file)


@pytest.mark.postgres
def test_a_mixed_group_of_accepts_on_postgresql(postgres_url, forms_file):
    """The same on PostgreSQL (executemany of INSERT … ON CONFLICT through asyncpg)."""
    _mixed_group(postgres_url, forms_file)


def _mixed_group(url: str, forms_file: Path) -> None:
    jobs = [
        job_for(forms_file, "a@example.fr"),
        job_for(forms_file, "b@example.fr", ticked=True),
        job_for(forms_file, "a@example.fr"),  # the same person again in the same group
        job_for(forms_file, "c@example.fr", key="k1"),
        job_for(forms_file, "c@example.fr", key="k1"),  # replay: stores nothing
        job_for(forms_file, "d@example.fr"),
    ]

    async def go() -> tuple[list[object], dict[str, int], int]:
        store = await Store.open(url, migrate=True)
        try:
            results = await asyncio.gather(*(store.write(job) for job in jobs))
            counts = {
                "submissions": await store.read(count(submissions)),
                "prospects": await store.read(count(prospects)),
                "consent_events": await store.read(count(consent_events)),
                "idempotency_keys": await store.read(count(idempotency_keys)),
            }
            return list(results), counts, store.writer.batches
        finally:
            await store.close()

    results, counts, batches = asyncio.run(go())
    assert batches == 1
    assert results[:4] == [None, None, None, None]
    assert isinstance(results[4], outbox.StoredAnswer)
    assert results[5] is None
    assert counts == {
        "submissions": 5,
        "prospects": 4,
        "consent_events": 1,
        "idempotency_keys": 1,
    }
