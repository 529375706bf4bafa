"""The operations commands (`relay check`, `relay db`, `relay keys`) and the trial key file."""

from __future__ import annotations

from starlette.testclient import TestClient

from relay.app import create_app
from relay.crypto import KeyRing
from tests.conftest import invoke


def test_check_reports_ok(cli):
    result = invoke(cli, "check")
    assert "forms file:" in result.output
    assert "2 form(s): contact, quote" in result.output


def test_check_lists_each_problem(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("RELAY_FORMS_FILE", str(tmp_path / "missing.toml"))
    monkeypatch.setenv("RELAY_SECRET_KEY", "too-short")
    result = invoke(cli, "check", expect=1)
    assert "forms file not found" in result.output
    assert "RELAY_SECRET_KEY" in result.output


def test_check_without_a_key_mentions_the_trial_key(cli, monkeypatch):
    monkeypatch.delenv("RELAY_SECRET_KEY")
    result = invoke(cli, "check")
    assert "trial key file" in result.output


def test_bad_setting_is_named(cli, monkeypatch):
    monkeypatch.setenv("RELAY_WEBHOOK_MAX_AGE_SECONDS", "1")
    result = invoke(cli, "deliveries", expect=1)
    assert "RELAY_WEBHOOK_MAX_AGE_SECONDS" in result.output


def test_db_upgrade_and_current(cli, settings):
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    upgraded = invoke(cli, "db", "upgrade")
    assert "database at revision" in upgraded.output
    current = invoke(cli, "db", "current")
    assert "current: " in current.output
    assert "empty" not in current.output


def test_keys_generate_prints_a_usable_key(cli):
    key = invoke(cli, "keys", "generate").output.strip()
    assert KeyRing.from_text(key).current_key_id


def test_trial_key_file_is_created_once_and_reused(settings_factory, clock):
    """Without RELAY_SECRET_KEY a trial key is written under var/ and read back next time."""
    settings = settings_factory(secret_key=None)
    with TestClient(create_app(settings, clock=clock)):
        pass
    first = settings.key_file.read_text()
    with TestClient(create_app(settings, clock=clock)):
        pass
    assert settings.key_file.read_text() == first
