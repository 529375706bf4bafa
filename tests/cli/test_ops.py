"""`relay check`, `relay db`, `relay keys`, through the real CLI."""

from __future__ import annotations

import sqlite3

import pytest

from relay.crypto import KeyRing
from relay.store.db import head_revision
from tests.conftest import FORMS_TOML, invoke


def test_check_passes_on_valid_configuration(cli):
    result = invoke(cli, "check")
    assert "2 form(s): contact, quote" in result.output


def test_check_fails_naming_file_field_and_problem(cli, settings, tmp_path, monkeypatch):
    bad = tmp_path / "bad.toml"
    bad.write_text(FORMS_TOML.replace('legal_basis = "contract"', 'legal_basis = "maybe"'))
    monkeypatch.setenv("RELAY_FORMS_FILE", str(bad))
    result = invoke(cli, "check", expect=1)
    assert f"{bad}: forms[1].legal_basis: Input should be 'contract' or 'legitimate_interest'" in (
        result.output
    )


def test_check_fails_on_bad_setting_and_key(cli, monkeypatch):
    monkeypatch.setenv("RELAY_SECRET_KEY", "c2hvcnQ")
    result = invoke(cli, "check", expect=1)
    assert "at least 32" in result.output
    monkeypatch.setenv("RELAY_PHONE_DEFAULT_REGION", "france")
    result = invoke(cli, "check", expect=1)
    assert "RELAY_PHONE_DEFAULT_REGION" in result.output


def test_check_mentions_the_trial_key_when_no_key_is_set(cli, monkeypatch):
    monkeypatch.delenv("RELAY_SECRET_KEY")
    result = invoke(cli, "check")
    assert "RELAY_SECRET_KEY not set" in result.output


def test_db_upgrade_creates_the_schema_and_is_idempotent(cli, settings):
    first = invoke(cli, "db", "upgrade")
    second = invoke(cli, "db", "upgrade")
    assert first.exit_code == second.exit_code == 0
    assert f"database at revision {head_revision()}" in second.output
    db = sqlite3.connect(settings.var_dir / "relay.db")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"submissions", "delivery_attempts", "prospects", "alembic_version"} <= tables
    assert "current: " + str(head_revision()) in invoke(cli, "db", "current").output


def test_db_current_on_empty_database(cli, settings):
    """An existing database without a schema is "empty"; a missing one is an error."""
    assert "no database at" in invoke(cli, "db", "current", expect=1).output
    settings.var_dir.mkdir(parents=True)
    (settings.var_dir / "relay.db").touch()
    assert "current: empty" in invoke(cli, "db", "current").output


def test_db_upgrade_reports_unreachable_database(cli, monkeypatch):
    monkeypatch.setenv("RELAY_DATABASE_URL", "postgresql+asyncpg://nobody@127.0.0.1:1/none")
    result = invoke(cli, "db", "upgrade", expect=1)
    assert "database" in result.output.lower()


@pytest.mark.postgres
def test_db_upgrade_on_postgresql(cli, postgres_url, monkeypatch):
    monkeypatch.setenv("RELAY_DATABASE_URL", postgres_url)
    result = invoke(cli, "db", "upgrade")
    assert f"database at revision {head_revision()}" in result.output


def test_keys_generate_prints_a_usable_key(cli):
    result = invoke(cli, "keys", "generate")
    KeyRing.from_text(result.output.strip())
