"""Durability: success is answered only after the commit; a failed commit is a 503, never a 2xx."""

from __future__ import annotations

import logging
import sqlite3

from starlette.testclient import TestClient

from relay.app import create_app
from tests.helpers import post_form, post_json


def test_commit_failure_is_503_with_retry_after_and_nothing_claimed(
    settings_factory, clock, caplog
):
    """While another process holds SQLite's write lock past the busy timeout, the client
    gets 503 with Retry-After (JSON and HTML) and the operator one error line each; once the
    lock is gone, posts succeed again."""
    caplog.set_level(logging.ERROR, logger="relay")
    settings = settings_factory(db_busy_timeout_ms=50)
    with TestClient(create_app(settings, clock=clock), base_url="http://relay.test") as client:
        post_json(client)
        blocker = sqlite3.connect(settings.var_dir / "relay.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            refused = post_json(client, name="Pendant le verrou", expect=503)
            refused_html = post_form(client, expect=503)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        post_json(client)
    assert refused.headers["retry-after"] == "5"
    assert refused.json()["errors"][0]["code"] == "STORE_UNAVAILABLE"
    assert refused_html.headers["retry-after"] == "5"
    errors = [(r.getMessage(), r.form) for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [("submission not stored", "contact")] * 2
    db = sqlite3.connect(settings.var_dir / "relay.db")
    assert db.execute("SELECT count(*) FROM submissions").fetchone()[0] == 2


def test_submissions_survive_a_restart(settings_factory, clock):
    """What was accepted is on disk: a new app on the same database sees every row."""
    settings = settings_factory()
    ids = []
    with TestClient(create_app(settings, clock=clock)) as client:
        ids = [post_json(client).json()["id"] for _ in range(5)]
    db = sqlite3.connect(settings.var_dir / "relay.db")
    stored = [r[0] for r in db.execute("SELECT id FROM submissions ORDER BY id")]
    assert stored == sorted(ids)


def test_ids_are_time_sortable_uuid7(client):
    """Submission ids are UUIDv7: version 7, and later ids sort after earlier ones."""
    import uuid

    ids = [post_json(client).json()["id"] for _ in range(3)]
    assert all(uuid.UUID(i).version == 7 for i in ids)
    assert ids == sorted(ids)


def test_database_runs_in_wal_mode(client, settings):
    """The embedded SQLite database is in WAL mode (readers never block the writer)."""
    post_json(client)
    db = sqlite3.connect(settings.var_dir / "relay.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
