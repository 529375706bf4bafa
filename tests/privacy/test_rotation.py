"""`relay keys rotate`: everything re-sealed under the newest key, lookups re-hashed."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.conftest import TEST_KEY, TEST_KEY_2, invoke
from tests.helpers import VALID, post_json
from tests.privacy.support import at, export, rows

EMAIL = VALID["email"]
D0 = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def test_rotation_with_two_keys(settings_factory, cli, clock, monkeypatch):
    """Data sealed under the old key is readable with both listed, rotated, then the old key
    can go: the record, its history and the undelivered message are still found and read."""
    from starlette.testclient import TestClient

    from relay.app import create_app

    old = settings_factory(secret_key=TEST_KEY_2)
    with at(clock, D0), TestClient(create_app(old, clock=clock)) as client:
        post_json(client, newsletter="on")
    monkeypatch.setenv("RELAY_SECRET_KEY", f"{TEST_KEY},{TEST_KEY_2}")
    with at(clock, D0):
        before = export(cli, EMAIL)  # found under the old key's hash, read with the old key
        invoke(cli, "consent", "withdraw", "nobody-else@x.fr")
        result = invoke(cli, "keys", "rotate")
    assert before["prospect"]["name"] == VALID["name"]
    assert "re-encrypted 1 prospect record(s) and 1 outbox bod(y/ies)" in result.output
    assert "every stored ciphertext is now under the newest key" in result.output
    assert "1 person(s) known only by a hash" in result.output
    monkeypatch.setenv("RELAY_SECRET_KEY", TEST_KEY)
    with at(clock, D0):
        after = export(cli, EMAIL)
        again = invoke(cli, "keys", "rotate")
    assert after["prospect"] == before["prospect"]
    assert after["submissions"][0]["message"] == VALID["message"]
    assert [e["event"] for e in after["consent_events"]] == ["granted"]
    assert after["marketing"]["consent_chain_verified"] is True
    assert "re-encrypted 0 prospect record(s)" in again.output
    audit = rows(old.var_dir, "SELECT action FROM audit_log WHERE action = 'keys.rotate'")
    assert len(audit) == 2


def test_submission_after_key_added_but_before_rotation_keeps_the_record(
    settings_factory, cli, clock, monkeypatch
):
    """A new key listed first: the next submission finds the old-hash record and moves it."""
    from starlette.testclient import TestClient

    from relay.app import create_app

    with (
        at(clock, D0),
        TestClient(create_app(settings_factory(secret_key=TEST_KEY_2), clock=clock)) as client,
    ):
        post_json(client, newsletter="on")
    both = settings_factory(secret_key=f"{TEST_KEY},{TEST_KEY_2}")
    with at(clock, D0), TestClient(create_app(both, clock=clock)) as client:
        post_json(client, phone="", company="")
    monkeypatch.setenv("RELAY_SECRET_KEY", f"{TEST_KEY},{TEST_KEY_2}")
    with at(clock, D0):
        data = export(cli, EMAIL)
    assert data["prospect"]["phone"] == "+33612345678"  # re-sealed from the old row
    assert data["prospect"]["company"] == VALID["company"]
    assert [e["event"] for e in data["consent_events"]] == ["granted"]
    assert len(data["submissions"]) == 2
