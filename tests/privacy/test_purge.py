"""Retention runs by itself: purge boundaries to the day, leap years, dry run = real run."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.testclient import TestClient

from relay.app import create_app
from tests.conftest import invoke
from tests.helpers import VALID, post_json
from tests.privacy.support import at, export, rows

EMAIL = VALID["email"]


def purge(cli: Any, *args: str) -> dict[str, Any]:
    result = invoke(cli, "purge", "--json", *args)
    data: dict[str, Any] = json.loads(result.output)
    return data


def test_prospect_purged_the_day_after_expiry_not_before(client, cli, clock):
    """Leap day: kept at expiry - 1 s (28 Feb 2031), removed a day after; dry run agrees."""
    leap = datetime(2028, 2, 29, 12, tzinfo=UTC)
    with at(clock, leap):
        post_json(client, newsletter="on")
    expires = datetime(2031, 2, 28, 12, tzinfo=UTC)
    with at(clock, expires - timedelta(seconds=1)):
        assert export(cli, EMAIL)["prospect"]["expires_at"] == expires.isoformat()
        assert purge(cli, "--dry-run")["prospects"] == 0
        assert purge(cli)["prospects"] == 0
        assert export(cli, EMAIL)["prospect"] is not None
    with at(clock, expires + timedelta(days=1)):
        dry = purge(cli, "--dry-run")
        real = purge(cli)
        data = export(cli, EMAIL)
    assert dry == {**real, "dry_run": True}
    assert real["prospects"] == 1
    assert real["consent_events"] == 1
    assert real["delivery_log_rows"] == 0  # already gone at the first purge: 2 years
    assert data["prospect"] is None
    assert data["consent_events"] == []


def test_delivery_log_two_years_and_bodies_after_their_bound(client, cli, settings, clock):
    """Bodies go after RELAY_BODY_RETENTION_DAYS (7); delivery-log rows after 2 years (to the
    day), unlinked first."""
    d0 = datetime(2026, 3, 1, 8, tzinfo=UTC)
    with at(clock, d0):
        post_json(client)
    with at(clock, d0 + timedelta(days=6)):
        assert purge(cli)["bodies_wiped"] == 0
    with at(clock, d0 + timedelta(days=8)):
        assert purge(cli)["bodies_wiped"] == 1
        [sub] = export(cli, EMAIL)["submissions"]
    assert sub["message"] is None
    assert sub["message_status"] == "deleted on 2026-03-09"
    with at(clock, datetime(2028, 2, 29, 8, tzinfo=UTC)):
        assert purge(cli)["delivery_log_rows"] == 0
    with at(clock, datetime(2028, 3, 1, 8, 0, 1, tzinfo=UTC)):
        assert purge(cli)["delivery_log_rows"] == 1
    assert rows(settings.var_dir, "SELECT count(*) FROM submissions") == [(0,)]


def test_purge_is_audited_with_counts_only(client, cli, settings, clock):
    """The audit log gets one entry per purge that removed something: counts, no content."""
    with at(clock, datetime(2026, 1, 1, tzinfo=UTC)):
        post_json(client)
    with at(clock, datetime(2029, 1, 2, tzinfo=UTC)):
        result = invoke(cli, "purge")
    assert "removed 2 item(s)" in result.output
    assert "expired prospect records: 1" in result.output
    [(actor, detail)] = rows(
        settings.var_dir, "SELECT actor, detail FROM audit_log WHERE action = 'purge'"
    )
    assert actor == "cli"
    assert json.loads(detail)["prospects"] == 1


def test_opposition_entry_lasts_three_years(client, cli, clock):
    """The opposition entry is kept 3 years, then purged like the rest."""
    d0 = datetime(2026, 5, 5, tzinfo=UTC)
    with at(clock, d0):
        invoke(cli, "consent", "withdraw", "someone@x.fr")
    with at(clock, datetime(2029, 5, 4, tzinfo=UTC)):
        assert purge(cli)["opposition_entries"] == 0
    with at(clock, datetime(2029, 5, 6, tzinfo=UTC)):
        report = purge(cli)
    assert report["opposition_entries"] == 1
    assert report["consent_events"] == 1
    assert report["rights_register_entries"] == 1  # issue 12: the withdrawal's register entry


def test_housekeeper_purges_at_start_of_serve(settings, cli, clock):
    """Starting the app runs the Housekeeper: an expired record is gone without any command."""
    app = create_app(settings, clock=clock)
    with at(clock, datetime(2026, 1, 1, tzinfo=UTC)), TestClient(app) as first:
        post_json(first)
    with at(clock, datetime(2029, 1, 2, tzinfo=UTC)):
        with TestClient(create_app(settings, clock=clock)):
            pass
        assert export(cli, EMAIL)["prospect"] is None
