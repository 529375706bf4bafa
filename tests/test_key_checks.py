"""A key that cannot open the stored data is an error naming its id, never an empty answer;
a mistyped RELAY_VAR_DIR is an error, never a new empty database."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from relay.app import create_app
from relay.crypto import KeyRing
from tests.admin_helpers import USERS, Admin
from tests.conftest import TEST_KEY, TEST_KEY_2, invoke
from tests.helpers import VALID, post_json

OLD_ID = KeyRing.from_text(TEST_KEY).current_key_id


def test_export_with_a_wrong_key_fails_naming_the_key_it_lacks(client, cli, monkeypatch):
    """`relay subject export` under a key that sealed nothing here exits 1 naming the key id."""
    post_json(client)
    monkeypatch.setenv("RELAY_SECRET_KEY", TEST_KEY_2)
    for command in (("subject", "export", VALID["email"]), ("subject", "show", VALID["email"])):
        result = invoke(cli, *command, expect=1)
        assert OLD_ID in result.output
        assert "RELAY_SECRET_KEY does not hold" in result.output
        assert "submissions" not in result.output


def test_export_with_the_old_key_still_listed_works(client, cli, monkeypatch):
    """With the new key first and the old one after it, the export finds the person."""
    post_json(client)
    monkeypatch.setenv("RELAY_SECRET_KEY", f"{TEST_KEY_2},{TEST_KEY}")
    result = invoke(cli, "subject", "export", VALID["email"])
    assert VALID["email"] in result.output


def test_check_opens_a_sample_and_fails_on_a_missing_key(client, cli, monkeypatch):
    """`relay check` passes with the right key and fails naming the key id with a wrong one."""
    post_json(client)
    invoke(cli, "check")
    monkeypatch.setenv("RELAY_SECRET_KEY", TEST_KEY_2)
    result = invoke(cli, "check", expect=1)
    assert OLD_ID in result.output


def test_admin_lookup_with_a_wrong_key_says_so(settings_factory, clock):
    """The DPO's lookup names the missing key id instead of answering "no match"."""
    first = create_app(settings_factory(admin_users=USERS), clock=clock)
    with TestClient(first, base_url="http://localhost") as client:
        post_json(client)
    wrong = create_app(settings_factory(admin_users=USERS, secret_key=TEST_KEY_2), clock=clock)
    with TestClient(wrong, base_url="http://localhost") as client:
        admin = Admin(client)
        admin.login("diane")
        page = admin.post("/admin/prospects", {"email": VALID["email"]}, expect=503)
    assert OLD_ID in page.text
    assert "no match" not in page.text.lower()


def test_a_mistyped_var_dir_fails_instead_of_creating_a_database(
    client, cli, monkeypatch, tmp_path
):
    """Commands that read the database exit 1 naming the path, and create nothing."""
    typo = Path(tmp_path) / "vra"
    monkeypatch.setenv("RELAY_VAR_DIR", str(typo))
    for command in (
        ("subject", "export", VALID["email"]),
        ("deliveries",),
        ("purge", "--dry-run"),
        ("db", "current"),
    ):
        result = invoke(cli, *command, expect=1)
        assert f"no database at {typo / 'relay.db'}" in result.output
    assert not (typo / "relay.db").exists()


def test_check_names_a_row_that_does_not_open(client, cli, settings):
    """A stored ciphertext altered on disk is named (row and field) by `relay check`."""
    import sqlite3

    post_json(client)
    with sqlite3.connect(settings.var_dir / "relay.db") as conn:
        [(token,)] = conn.execute("SELECT name_enc FROM prospects").fetchall()
        altered = bytes(token[:-1]) + bytes([token[-1] ^ 1])
        conn.execute("UPDATE prospects SET name_enc = ?", (altered,))
    result = invoke(cli, "check", expect=1)
    assert "prospect 1 name: ciphertext failed authentication" in result.output
    assert VALID["name"] not in result.output


def test_a_legacy_clear_idempotency_answer_is_still_replayed():
    """Rows written before sealing (at most one TTL old) replay as they were."""
    from relay.store.outbox import StoredAnswer, open_answer

    stored = StoredAnswer("sid", 202, '{"ok": true, "id": "sid"}')
    assert open_answer(KeyRing.from_text(TEST_KEY), "mac", stored) == stored.response


def test_rotation_without_the_old_key_fails_naming_it(client, cli, monkeypatch):
    """`relay keys rotate` with the sealing key dropped exits 1 naming its id, changing nothing."""
    post_json(client)
    monkeypatch.setenv("RELAY_SECRET_KEY", TEST_KEY_2)
    result = invoke(cli, "keys", "rotate", expect=1)
    assert OLD_ID in result.output
    monkeypatch.setenv("RELAY_SECRET_KEY", TEST_KEY)
    assert VALID["email"] in invoke(cli, "subject", "export", VALID["email"]).output
