"""`relay check`, `relay db`, `relay keys`, through the real CLI."""

from __future__ import annotations

import base64
import sqlite3

import pytest

from relay.crypto import KeyRing
from relay.store.db import head_revision
from tests.conftest import FORMS_TOML, invoke

_OK_FORMS = (
    "forms file: {forms}: 2 form(s): contact, quote\n"
    "  contact: keeps name*, email*, message*, phone, company, newsletter (marketing consent)\n"
    "  quote: keeps name*, email*, message*, phone, company\n"
)
_OK_HEAD = (
    "settings: ok (development)\n"
    "database: {var}/relay.db does not exist yet; relay serve creates it\n"
)
_OK_TRANSPORT = (
    "transport: files under {var}/mail (plain text, for trials; deleted after "
    "RELAY_BODY_RETENTION_DAYS)\n"
)
_KEY = "RELAY_SECRET_KEY: a key {problem} (generate one: relay keys generate)"
_BAD_BASIS = FORMS_TOML.replace('legal_basis = "contract"', 'legal_basis = "maybe"')


@pytest.mark.parametrize(
    ("environment", "forms", "exit_code", "output"),
    [
        ({}, None, 0, _OK_HEAD + _OK_FORMS + _OK_TRANSPORT),
        (
            {"RELAY_SECRET_KEY": None},
            None,
            0,
            _OK_HEAD
            + _OK_FORMS
            + "keys: RELAY_SECRET_KEY not set; the trial key file {var}/secret.key is used\n"
            + _OK_TRANSPORT,
        ),
        (
            {"RELAY_SECRET_KEY": "c2hvcnQ"},
            None,
            1,
            "Error: "
            + _KEY.format(problem="decodes to 5 bytes; at least 32 random bytes are needed")
            + "\n",
        ),
        (
            {"RELAY_SECRET_KEY": "too-short"},
            None,
            1,
            "Error: " + _KEY.format(problem="is not urlsafe base64") + "\n",
        ),
        (
            {"RELAY_FORMS_FILE": "{tmp}/missing.toml"},
            None,
            1,
            "Error: {tmp}/missing.toml: forms file not found (set RELAY_FORMS_FILE)\n",
        ),
        (
            {},
            _BAD_BASIS,
            1,
            "Error: {forms}: forms[1].legal_basis: Input should be 'contract' or "
            "'legitimate_interest'\n",
        ),
        (
            {"RELAY_PHONE_DEFAULT_REGION": "france"},
            None,
            1,
            "Error: settings: RELAY_PHONE_DEFAULT_REGION: String should match pattern "
            "'^[A-Z]{{2}}$'\n",
        ),
        (
            {"RELAY_ENVIRONMENT": "nowhere"},
            None,
            1,
            "Error: settings: RELAY_ENVIRONMENT: Input should be 'development' or 'production'\n",
        ),
        (
            {"RELAY_FORMS_FILE": "{tmp}/missing.toml", "RELAY_SECRET_KEY": "too-short"},
            None,
            1,
            "Error: {tmp}/missing.toml: forms file not found (set RELAY_FORMS_FILE)\n"
            + _KEY.format(problem="is not urlsafe base64")
            + "\n",
        ),
    ],
    ids=[
        "valid",
        "no key: the trial key file",
        "key too short",
        "key not base64",
        "no forms file",
        "bad field in the forms file",
        "bad setting",
        "unknown environment",
        "two problems, both listed",
    ],
)
def test_check_answers_each_configuration(
    cli, settings, monkeypatch, tmp_path, environment, forms, exit_code, output
):
    """`relay check` exits 0 with its report, or 1 listing exactly the problems, each naming
    the setting or the file, field and problem."""
    places = {"tmp": tmp_path, "var": settings.var_dir, "forms": settings.forms_file}
    for name, value in environment.items():
        if value is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, value.format(**places))
    if forms is not None:
        settings.forms_file.write_text(forms, encoding="utf-8")
    result = invoke(cli, "check", expect=exit_code)
    assert result.output == output.format(**places)


def test_a_bad_setting_stops_any_command_naming_it(cli, monkeypatch):
    """A setting out of its range stops any command (here `relay deliveries`) with exit 1,
    naming the variable."""
    monkeypatch.setenv("RELAY_WEBHOOK_MAX_AGE_SECONDS", "1")
    result = invoke(cli, "deliveries", expect=1)
    assert result.output.startswith("Error: settings: RELAY_WEBHOOK_MAX_AGE_SECONDS: ")


def test_db_upgrade_creates_the_schema_and_is_idempotent(cli, settings):
    """`relay db upgrade` creates relay's tables at the head revision, a second run changes nothing,
    and `db current` reports it."""
    invoke(cli, "db", "upgrade")
    second = invoke(cli, "db", "upgrade")
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
    """A database that cannot be reached stops `relay db upgrade` with exit 1, the URL, why, and
    what to check."""
    monkeypatch.setenv("RELAY_DATABASE_URL", "postgresql+asyncpg://nobody@127.0.0.1:1/none")
    result = invoke(cli, "db", "upgrade", expect=1)
    assert result.output == (
        "Error: cannot use the database at postgresql+asyncpg://nobody@127.0.0.1:1/none "
        "(connection refused): check RELAY_DATABASE_URL, and that the server is up and "
        "reachable from this host\n"
    )


@pytest.mark.postgres
def test_db_upgrade_on_postgresql(cli, postgres_url, monkeypatch):
    """On PostgreSQL, `relay db upgrade` brings an empty database to the head revision."""
    monkeypatch.setenv("RELAY_DATABASE_URL", postgres_url)
    result = invoke(cli, "db", "upgrade")
    assert f"database at revision {head_revision()}" in result.output


def test_keys_generate_prints_a_usable_key(cli):
    """`relay keys generate` prints one line: a urlsafe base64 key of 32 bytes relay accepts."""
    key, *rest = invoke(cli, "keys", "generate").output.splitlines()
    assert (rest, len(base64.urlsafe_b64decode(key + "="))) == ([], 32)
    assert KeyRing.from_text(key).current_key_id
