"""The accept path on PostgreSQL, the multi-instance mode's database: real server, no mocks."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from relay.app import create_app
from tests.helpers import post_json

pytestmark = pytest.mark.postgres


def test_submissions_are_stored_in_postgresql(settings_factory, postgres_url, clock):
    """With RELAY_DATABASE_URL on PostgreSQL, the schema is migrated and submissions committed."""
    settings = settings_factory(database_url=postgres_url, auto_migrate=True)
    with TestClient(create_app(settings, clock=clock), base_url="http://relay.test") as client:
        first = post_json(client)
        second = post_json(client, name="Autre")
    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["id"] != second.json()["id"]
