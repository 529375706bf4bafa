"""`relay db backup` / `relay db restore`: consistent encrypted copies that keep erasures."""

from __future__ import annotations

import shutil
import sqlite3
import stat
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from relay.app import create_app
from tests.conftest import TEST_KEY, TEST_KEY_2, invoke, service_missing
from tests.helpers import VALID, post_json
from tests.privacy.support import at, export, rows

EMAIL = VALID["email"]
OTHER = "paul.durand@example.fr"
D0 = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
D1 = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


def submit(settings: Any, clock: Any, **fields: Any) -> None:
    with at(clock, D0), TestClient(create_app(settings, clock=clock)) as client:
        post_json(client, newsletter="on", **fields)


def test_backup_while_serving_is_a_consistent_encrypted_copy(client, settings, cli, tmp_path):
    """A backup taken while the app serves holds every accepted submission, is readable by
    SQLite on its own (one file, mode 0600), and holds no personal data in clear."""
    for _ in range(3):
        post_json(client)
    path = tmp_path / "backups" / "relay.db"
    path.parent.mkdir()
    result = invoke(cli, "db", "backup", str(path))
    post_json(client)  # still serving
    assert f"to {path}" in result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["relay.db"]
    copy = sqlite3.connect(path)
    assert copy.execute("SELECT count(*) FROM submissions").fetchone() == (3,)
    copy.close()
    raw = path.read_bytes()
    for value in (VALID["name"], EMAIL, VALID["company"], "devis"):
        assert value.encode() not in raw


def test_erased_after_the_backup_stays_erased_after_a_restore(settings, cli, clock, tmp_path):
    """Back up, erase a person, restore: the person is gone again (and someone else is not)."""
    submit(settings, clock)
    submit(settings, clock, email=OTHER)
    path = tmp_path / "before-erasure.db"
    invoke(cli, "db", "backup", str(path))
    with at(clock, D1):
        invoke(cli, "subject", "erase", EMAIL)
        result = invoke(cli, "db", "restore", str(path), "--yes")
        after, other = export(cli, EMAIL), export(cli, OTHER)
    assert "re-applied from the register" in result.output
    assert "1 erase" in result.output
    assert after["prospect"] is None
    assert after["submissions"] == []
    assert after["consent_events"] == []
    assert after["marketing"]["on_opposition_list"] is True
    assert other["prospect"]["email"] == OTHER
    bodies = rows(settings.var_dir, "SELECT count(*) FROM submissions WHERE body_enc IS NOT NULL")
    assert bodies == [(1,)]


def test_restore_reapplies_restriction_and_withdrawal(settings, cli, clock, tmp_path):
    """A restriction and a consent withdrawal made after the backup hold after the restore."""
    submit(settings, clock)
    path = tmp_path / "b.db"
    invoke(cli, "db", "backup", str(path))
    with at(clock, D1):
        invoke(cli, "subject", "restrict", EMAIL)
        invoke(cli, "consent", "withdraw", EMAIL)
        result = invoke(cli, "db", "restore", str(path), "--yes")
        data = export(cli, EMAIL)
    assert "1 restrict" in result.output
    assert "1 withdraw" in result.output
    assert data["prospect"]["restricted"] is True
    assert data["marketing"]["consent"] == "withdrawn"
    assert data["marketing"]["consent_chain_verified"] is True


def test_restore_twice_reapplies_nothing_new(settings, cli, clock, tmp_path):
    """The re-applied entries join the register: a second restore of a newer copy redoes none."""
    submit(settings, clock)
    old = tmp_path / "old.db"
    invoke(cli, "db", "backup", str(old))
    with at(clock, D1):
        invoke(cli, "subject", "erase", EMAIL)
        invoke(cli, "db", "restore", str(old), "--yes")
        newer = tmp_path / "newer.db"
        invoke(cli, "db", "backup", str(newer))
        result = invoke(cli, "db", "restore", str(newer), "--yes")
    assert "0 erase, 0 restrict, 0 unrestrict, 0 withdraw" in result.output
    assert rows(settings.var_dir, "SELECT kind FROM rights_register") == [("erase",)]


def test_restore_across_a_key_rotation(settings_factory, cli, clock, monkeypatch, tmp_path):
    """A backup made under the old key, a rotation, the old key dropped, an erasure under the
    new key only: restored with both keys listed, the person is still gone."""
    old = settings_factory(secret_key=TEST_KEY_2)
    submit(old, clock)
    path = tmp_path / "old-key.db"
    monkeypatch.setenv("RELAY_SECRET_KEY", TEST_KEY_2)
    invoke(cli, "db", "backup", str(path))
    monkeypatch.setenv("RELAY_SECRET_KEY", f"{TEST_KEY},{TEST_KEY_2}")
    invoke(cli, "keys", "rotate")
    monkeypatch.setenv("RELAY_SECRET_KEY", TEST_KEY)
    with at(clock, D1):
        assert "prospects: 1" in invoke(cli, "subject", "erase", EMAIL).output
    monkeypatch.setenv("RELAY_SECRET_KEY", f"{TEST_KEY},{TEST_KEY_2}")
    with at(clock, D1):
        result = invoke(cli, "db", "restore", str(path), "--yes")
        data = export(cli, EMAIL)
    assert "rotated the restored data to the newest key" in result.output
    assert data["prospect"] is None
    assert data["submissions"] == []


def test_restore_with_no_database_before_uses_register_from(settings, cli, clock, tmp_path):
    """On a new machine (no database), --register-from names the copy whose register to use;
    without it the restore says nothing was re-applied."""
    submit(settings, clock)
    backup = tmp_path / "b.db"
    invoke(cli, "db", "backup", str(backup))
    with at(clock, D1):
        invoke(cli, "subject", "erase", EMAIL)
    latest = tmp_path / "latest.db"
    invoke(cli, "db", "backup", str(latest))
    for path in settings.var_dir.glob("relay.db*"):
        path.unlink()
    plain = invoke(cli, "db", "restore", str(backup), "--yes")
    assert "no rights register to re-apply" in plain.output
    with at(clock, D1):
        result = invoke(cli, "db", "restore", str(backup), "--yes", "--register-from", str(latest))
        data = export(cli, EMAIL)
    assert "1 erase" in result.output
    assert data["prospect"] is None


def test_backup_refuses_to_overwrite(client, cli, tmp_path):
    """An existing file is never overwritten by a backup."""
    path = tmp_path / "exists.db"
    path.write_text("keep me")
    result = invoke(cli, "db", "backup", str(path), expect=1)
    assert "already exists; relay does not overwrite a file" in result.output
    assert path.read_text() == "keep me"


def test_backup_without_a_database_says_so(cli, tmp_path):
    """Before relay ever ran there is nothing to back up, and the command says so."""
    result = invoke(cli, "db", "backup", str(tmp_path / "b.db"), expect=1)
    assert "no database to back up" in result.output


def test_restore_refuses_a_file_that_is_not_a_backup(client, cli, tmp_path):
    """Restoring something that is not a relay database is refused, and nothing is replaced."""
    path = tmp_path / "notes.db"
    path.write_text("not sqlite at all")
    result = invoke(cli, "db", "restore", str(path), "--yes", expect=1)
    assert "is not a relay database backup" in result.output


def test_restore_asks_before_replacing(client, cli, settings, tmp_path):
    """Without --yes the restore asks, and answering no changes nothing: a submission made
    after the backup is still there."""
    path = tmp_path / "b.db"
    invoke(cli, "db", "backup", str(path))
    sid = post_json(client).json()["id"]
    result = invoke(cli, "db", "restore", str(path), input="n\n", expect=1)
    assert "replace" in result.output
    assert "Aborted" in result.output
    assert rows(settings.var_dir, "SELECT id FROM submissions") == [(sid,)]


def needs_pg_tools() -> None:
    """pg_dump and pg_restore (Debian's postgresql-client; `make test` installs it in CI)."""
    for name in ("pg_dump", "pg_restore"):
        if shutil.which(name) is None:
            service_missing(f"the `{name}` command", FileNotFoundError(name))


@pytest.mark.postgres
def test_postgresql_backup_erase_restore(
    settings_factory, cli, clock, monkeypatch, postgres_url, tmp_path
):
    """On PostgreSQL the same holds, through pg_dump and pg_restore: back up while serving,
    erase a person, restore, and the person is gone again."""
    needs_pg_tools()
    settings = settings_factory(database_url=postgres_url, auto_migrate=True)
    submit(settings, clock)
    submit(settings, clock, email=OTHER)
    monkeypatch.setenv("RELAY_DATABASE_URL", postgres_url)
    path = tmp_path / "relay.dump"
    invoke(cli, "db", "backup", str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with at(clock, D1):
        invoke(cli, "subject", "erase", EMAIL)
        result = invoke(cli, "db", "restore", str(path), "--yes")
        after, other = export(cli, EMAIL), export(cli, OTHER)
    assert "1 erase" in result.output
    assert after["prospect"] is None
    assert other["prospect"]["email"] == OTHER


@pytest.mark.postgres
def test_postgresql_refuses_a_file_that_is_not_a_dump(cli, monkeypatch, postgres_url, tmp_path):
    """pg_restore's refusal is passed on, and the command exits 1."""
    needs_pg_tools()
    monkeypatch.setenv("RELAY_DATABASE_URL", postgres_url)
    monkeypatch.setenv("RELAY_AUTO_MIGRATE", "true")
    path = tmp_path / "not.dump"
    path.write_text("not a dump")
    result = invoke(cli, "db", "restore", str(path), "--yes", expect=1)
    assert "pg_restore failed" in result.output


def test_postgresql_unreachable_says_what_pg_dump_said(cli, monkeypatch, tmp_path):
    """A database pg_dump cannot reach: exit 1 with its words, and no file left behind."""
    needs_pg_tools()
    monkeypatch.setenv("RELAY_DATABASE_URL", "postgresql+asyncpg://relay:secret@127.0.0.1:1/relay")
    path = tmp_path / "b.dump"
    result = invoke(cli, "db", "backup", str(path), expect=1)
    assert "pg_dump failed" in result.output
    assert "secret" not in result.output
    assert not path.exists()


def test_backup_into_a_missing_folder_says_so_and_leaves_nothing(client, cli, tmp_path):
    """A target folder that does not exist: exit 1 naming the path, no partial file left."""
    path = tmp_path / "missing" / "b.db"
    result = invoke(cli, "db", "backup", str(path), expect=1)
    assert f"cannot write the backup to {path}" in result.output
    assert not path.parent.exists()


def test_an_in_memory_database_cannot_be_backed_up(cli, monkeypatch, tmp_path):
    """A SQLite URL with no file has nothing to copy, and the command says so."""
    monkeypatch.setenv("RELAY_DATABASE_URL", "sqlite+aiosqlite:///:memory:")
    result = invoke(cli, "db", "backup", str(tmp_path / "b.db"), expect=1)
    assert "names no SQLite file" in result.output


def test_register_from_must_be_a_relay_database(client, cli, tmp_path):
    """--register-from pointing at something else is refused before anything is replaced."""
    backup = tmp_path / "b.db"
    invoke(cli, "db", "backup", str(backup))
    other = tmp_path / "other.txt"
    other.write_text("no")
    result = invoke(
        cli, "db", "restore", str(backup), "--yes", "--register-from", str(other), expect=1
    )
    assert f"{other} is not a relay database backup" in result.output


def test_restore_without_the_keys_is_refused(client, cli, settings, monkeypatch, tmp_path):
    """With no RELAY_SECRET_KEY and no trial key file the restore stops and says why."""
    backup = tmp_path / "b.db"
    invoke(cli, "db", "backup", str(backup))
    monkeypatch.delenv("RELAY_SECRET_KEY")
    settings.key_file.unlink(missing_ok=True)
    result = invoke(cli, "db", "restore", str(backup), "--yes", expect=1)
    assert "RELAY_SECRET_KEY is not set" in result.output


def test_the_register_refuses_an_unknown_kind():
    """relay.store.rights_register only records the four kinds a restore knows how to redo."""
    from relay.store.rights_register import note

    with pytest.raises(ValueError, match="unknown register kind 'export'"):
        note(None, "export", ["mac"], D0)  # type: ignore[arg-type]
