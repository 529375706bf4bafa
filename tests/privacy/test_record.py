"""The prospect record: created and refreshed with each submission, expiring by itself."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from tests.conftest import invoke
from tests.helpers import VALID, post_form, post_json
from tests.privacy.support import at, export, raw_bytes, rows

EMAIL = VALID["email"]
D0 = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def test_submission_creates_minimal_record(client, cli, clock):
    """An accepted submission creates the record: fields, dates, basis, expiry; no message."""
    with at(clock, D0):
        post_json(client)
        data = export(cli, EMAIL)
    prospect = data["prospect"]
    assert prospect == {
        "email": EMAIL,
        "name": VALID["name"],
        "company": VALID["company"],
        "phone": "+33612345678",
        "first_seen_at": D0.isoformat(),
        "last_interaction_at": D0.isoformat(),
        "last_legal_basis": "legitimate_interest",
        "status": "prospect",
        "relationship": "prospect",
        "restricted": False,
        "expires_at": "2029-11-25T09:30:00+00:00",
    }
    assert data["schema"] == "relay.subject-export/2"
    assert data["marketing"]["consent"] == "none"
    [sub] = data["submissions"]
    assert sub["message"] == VALID["message"]
    assert sub["form"] == "contact"
    assert sub["delivery_state"] == "queued"
    assert sub["message_status"] == "held encrypted until delivery"
    assert data["processing"]["recipients"]


def test_database_holds_no_plaintext(client, settings, clock):
    """The record's fields are encrypted: the raw database file holds none of them."""
    with at(clock, D0):
        post_json(client, name="Zacharie Canari", company="CanariCorp", email="canari@x.fr")
    blob = raw_bytes(settings.var_dir)
    for canary in (b"Zacharie Canari", b"CanariCorp", b"canari@x.fr", b"612345678"):
        assert canary not in blob


def test_only_prospect_initiated_contacts_move_the_expiry(client, cli, clock):
    """A second submission moves the expiry; an export or a withdrawal does not."""
    with at(clock, D0):
        post_json(client)
    later = D0 + timedelta(days=400)
    with at(clock, later):
        post_form(client, form_id="quote", name="Jeanne M.")
        data = export(cli, EMAIL)
    assert data["prospect"]["last_interaction_at"] == later.isoformat()
    assert data["prospect"]["expires_at"] == (later.replace(year=later.year + 3)).isoformat()
    assert data["prospect"]["name"] == "Jeanne M."
    assert data["prospect"]["last_legal_basis"] == "contract"
    assert data["prospect"]["first_seen_at"] == D0.isoformat()
    with at(clock, D0 + timedelta(days=500)):
        invoke(cli, "consent", "withdraw", EMAIL)
        again = export(cli, EMAIL)
    assert again["prospect"]["expires_at"] == data["prospect"]["expires_at"]
    assert again["prospect"]["last_interaction_at"] == later.isoformat()


def test_admin_touch_and_client_status(client, cli, clock):
    """`relay subject touch` records a contact; `--client` keeps the record 5 years."""
    with at(clock, D0):
        post_json(client)
    with at(clock, D0 + timedelta(days=10)):
        result = invoke(cli, "subject", "touch", EMAIL, "--at", "2027-01-10")
        assert "2030-01-10" in result.output
        result = invoke(cli, "subject", "touch", EMAIL, "--at", "2028-02-29", "--client")
        assert "2033-02-28" in result.output
        assert export(cli, EMAIL)["prospect"]["relationship"] == "client"
    invoke(cli, "subject", "touch", "nobody@x.fr", expect=1)


def test_marketing_consent_event_is_provable(client, cli, settings, clock):
    """A ticked box appends one `granted` event whose hash is the stored wording's SHA-256."""
    with at(clock, D0):
        post_json(client, newsletter="on")
        data = export(cli, EMAIL)
    [event] = data["consent_events"]
    wording = "I agree to receive news about Biosera products by email."
    assert event["event"] == "granted"
    assert event["source"] == "form:contact"
    assert event["wording_version"] == "v1"
    assert event["wording_text"] == wording
    assert event["wording_sha256"] == hashlib.sha256(wording.encode()).hexdigest()
    assert event["notice_version"] == "2026-03-20"
    assert (event["field"], event["value"]) == ("newsletter", "on")
    assert event["occurred_at"] == D0.isoformat()
    assert data["marketing"] == {
        "consent": "granted",
        "on_opposition_list": False,
        "consent_chain_verified": True,
    }
    stored = rows(settings.var_dir, "SELECT text, sha256 FROM consent_wordings")
    assert stored == [(wording, hashlib.sha256(wording.encode()).hexdigest())]


def test_unticked_box_records_no_grant(client, cli, clock):
    """Without the box the submission says consent not given and no event is appended."""
    with at(clock, D0):
        post_json(client)
        data = export(cli, EMAIL)
    assert data["consent_events"] == []
    assert data["submissions"][0]["marketing_consent_given"] is False


def test_consent_chain_detects_tampering(client, cli, settings, clock):
    """Each event names the hash of the previous one: an edited event breaks the chain."""
    with at(clock, D0):
        post_json(client, newsletter="on")
        invoke(cli, "consent", "withdraw", EMAIL)
        post_json(client, newsletter="on")
        data = export(cli, EMAIL)
    assert [e["event"] for e in data["consent_events"]] == ["granted", "withdrawn", "granted"]
    assert data["marketing"]["consent_chain_verified"] is True
    import sqlite3

    conn = sqlite3.connect(settings.var_dir / "relay.db")
    conn.execute("UPDATE consent_events SET wording_version = 'v0' WHERE id = 1")
    conn.commit()
    conn.close()
    with at(clock, D0):
        assert export(cli, EMAIL)["marketing"]["consent_chain_verified"] is False


def test_no_ip_address_is_written_anywhere(settings, clock, caplog):
    """A submission from a known address leaves no trace of it in the database or the logs."""
    import logging

    from starlette.testclient import TestClient

    from relay.app import create_app

    caplog.set_level(logging.DEBUG)
    app = create_app(settings, clock=clock)
    with at(clock, D0), TestClient(app, client=("203.0.113.77", 50000)) as client:
        response = post_json(client, newsletter="on")
    assert "set-cookie" not in response.headers
    assert b"203.0.113" not in raw_bytes(settings.var_dir)
    assert "203.0.113" not in caplog.text
    assert EMAIL not in caplog.text
    assert VALID["name"] not in caplog.text
