"""The prospect record, rights and purge on PostgreSQL (the multi-instance mode's database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from starlette.testclient import TestClient

from relay.app import create_app
from tests.conftest import TEST_KEY, TEST_KEY_2, invoke
from tests.helpers import VALID, post_json
from tests.privacy.support import at, export

pytestmark = pytest.mark.postgres

EMAIL = VALID["email"]
D0 = datetime(2028, 2, 29, 12, tzinfo=UTC)


def test_record_rights_and_purge_on_postgresql(
    settings_factory, postgres_url, cli, clock, monkeypatch
):
    """Upsert (fast path and consent path), restriction, erasure and purge behave the same."""
    settings = settings_factory(database_url=postgres_url, auto_migrate=True)
    monkeypatch.setenv("RELAY_DATABASE_URL", postgres_url)
    monkeypatch.setenv("RELAY_AUTO_MIGRATE", "true")
    with at(clock, D0), TestClient(create_app(settings, clock=clock)) as client:
        post_json(client)
        post_json(client, newsletter="on", company="")
        data = export(cli, EMAIL)
        assert data["prospect"]["company"] == VALID["company"]
        assert data["prospect"]["expires_at"] == "2031-02-28T12:00:00+00:00"
        assert data["marketing"]["consent"] == "granted"
        invoke(cli, "subject", "restrict", EMAIL)
        clock.now = D0 + timedelta(days=1)
        post_json(client, name="Other")
        assert export(cli, EMAIL)["prospect"]["name"] == VALID["name"]
        invoke(cli, "subject", "unrestrict", EMAIL)
    with at(clock, datetime(2031, 3, 2, tzinfo=UTC)):
        result = invoke(cli, "purge", "--json")
        assert '"prospects": 1' in result.output
        assert export(cli, EMAIL)["prospect"] is None


def test_rotation_and_erasure_on_postgresql(
    settings_factory, postgres_url, cli, clock, monkeypatch
):
    """Two-key rotation then erasure, on PostgreSQL."""
    old = settings_factory(database_url=postgres_url, auto_migrate=True, secret_key=TEST_KEY_2)
    monkeypatch.setenv("RELAY_DATABASE_URL", postgres_url)
    with at(clock, D0), TestClient(create_app(old, clock=clock)) as client:
        post_json(client, newsletter="on")
    monkeypatch.setenv("RELAY_SECRET_KEY", f"{TEST_KEY},{TEST_KEY_2}")
    with at(clock, D0):
        invoke(cli, "keys", "rotate")
    monkeypatch.setenv("RELAY_SECRET_KEY", TEST_KEY)
    with at(clock, D0):
        assert export(cli, EMAIL)["prospect"]["name"] == VALID["name"]
        erased = invoke(cli, "subject", "erase", EMAIL)
        assert "prospects: 1" in erased.output
        assert "nothing to erase" in invoke(cli, "subject", "erase", EMAIL).output
