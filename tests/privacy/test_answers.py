"""Rights answered completely: restriction protects, the audit names whose data, the export is
the whole answer, the register tells the truth, rectification validates."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from relay.crypto import KeyRing
from tests.conftest import TEST_KEY, invoke
from tests.deliveries_helpers import deliver, drained, submit
from tests.helpers import VALID, post_json
from tests.privacy.support import at, export, rows

EMAIL = VALID["email"]
D0 = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
ROOT = Path(__file__).parent.parent.parent


# --- 4. consent signals agree -----------------------------------------------------------


def test_restricted_person_ticking_the_box_is_recorded_as_given_everywhere(
    settings_factory, cli, clock
):
    """A restricted person's ticked box: the email says given, the submission and the export
    say granted, and the consent event is recorded."""
    from starlette.testclient import TestClient

    from relay.app import create_app

    settings = settings_factory(dispatch_in_serve=True)
    with at(clock, D0):
        with TestClient(create_app(settings, clock=clock)) as client:
            post_json(client)
            invoke(cli, "subject", "restrict", EMAIL)
            sid = post_json(client, newsletter="on").json()["id"]
            drained(client)
        data = export(cli, EMAIL)
    text = (settings.var_dir / "mail" / f"{sid}.eml").read_text(encoding="utf-8")
    assert "Marketing consent: given" in text
    assert data["marketing"]["consent"] == "granted"
    assert data["submissions"][-1]["marketing_consent_given"] is True
    assert data["consent_events"][0]["submission_id"] == sid


# --- 5. restriction protects ----------------------------------------------------------


def test_restricted_record_outlives_its_expiry_until_lifted(client, cli, clock):
    """A restricted record is not purged at expiry; `relay purge --dry-run` lists it; once the
    restriction is lifted, the next purge removes it."""
    with at(clock, D0):
        post_json(client, newsletter="on")
        invoke(cli, "subject", "restrict", EMAIL)
    past = D0 + timedelta(days=3 * 366)
    with at(clock, past):
        dry = invoke(cli, "purge", "--dry-run")
        invoke(cli, "purge")
        kept = export(cli, EMAIL)
        invoke(cli, "subject", "unrestrict", EMAIL)
        purged = invoke(cli, "purge", "--json")
        gone = export(cli, EMAIL)
    assert "expired prospect records: 0" in dry.output
    assert "kept until the restriction is lifted: 1" in dry.output
    assert kept["prospect"]["restricted"] is True
    assert len(kept["consent_events"]) == 1
    report = json.loads(purged.output)
    assert (report["prospects"], report["consent_events"], report["restricted_kept"]) == (1, 1, 0)
    assert gone["prospect"] is None


# --- 6. the audit says whose data -------------------------------------------------------


def test_audit_targets_are_stable_and_never_reused(client, cli, settings, clock):
    """show and touch name the person by a keyed-hash reference; after an erasure a new person
    reuses the record number but never the reference."""
    keyring = KeyRing.from_text(TEST_KEY)
    other = "paul.durand@example.fr"
    with at(clock, D0):
        post_json(client)
        invoke(cli, "subject", "show", EMAIL)
        invoke(cli, "subject", "touch", EMAIL)
        invoke(cli, "subject", "erase", EMAIL)
        post_json(client, email=other)
        invoke(cli, "subject", "show", other)
    ids = rows(settings.var_dir, "SELECT id FROM prospects")
    audit = rows(settings.var_dir, "SELECT action, target FROM audit_log WHERE action != 'purge'")
    mine, theirs = keyring.subject_ref(EMAIL), keyring.subject_ref(other)
    assert ids == [(1,)]  # the number the erased person had
    assert audit == [
        ("prospect.view", mine),
        ("prospect.touch", mine),
        ("subject.erase", mine),
        ("prospect.view", theirs),
    ]
    assert mine != theirs


# --- 7. the export is the whole answer -----------------------------------------------------


def test_export_holds_register_timeline_retention_purposes_and_destinations(
    client, cli, settings, clock
):
    """The export adds the person's register entries, each submission's attempts and events,
    the retention of every kind of data, every purpose and where the data goes."""
    with at(clock, D0):
        sid = submit(client)
        deliver(client, 503)  # Mailgun busy: it may have the message; retried in 30 s
    with at(clock, D0 + timedelta(seconds=30)):
        deliver(client)
        invoke(cli, "subject", "receive", "export", EMAIL)
        data = export(cli, EMAIL)
    [entry] = data["requests"]
    assert (entry["kind"], entry["status"]) == ("export", "open")
    [submission] = data["submissions"]
    assert submission["id"] == sid
    assert [(s["kind"], s["what"]) for s in submission["delivery_timeline"]] == [
        ("received", "received"),
        ("attempt", "ambiguous"),
        ("attempt", "accepted"),
    ]
    retention = data["processing"]["retention"]
    for kind in ("message", "consent_events", "opposition_list", "request_register", "audit_log"):
        assert kind in retention
    assert "7 days" in retention["message"]
    purposes = " ".join(data["processing"]["purposes"])
    assert "rate limiting" in purposes
    assert "security" in purposes
    where = " ".join(data["processing"]["recipients"] + data["processing"]["where_your_data_goes"])
    assert "Mailgun (EU region" in where
    assert "Microsoft 365" in where


def test_export_gives_the_configured_bounds(client, cli, clock, monkeypatch):
    """The export's retention follows the settings: body days and audit months as configured."""
    monkeypatch.setenv("RELAY_BODY_RETENTION_DAYS", "3")
    monkeypatch.setenv("RELAY_AUDIT_RETENTION_MONTHS", "6")
    with at(clock, D0):
        post_json(client)
        retention = export(cli, EMAIL)["processing"]["retention"]
    assert "after 3 days at most" in retention["message"]
    assert retention["audit_log"].startswith("6 months")


def test_art30_entry_matches_the_body_bound_in_the_code():
    """docs/privacy.md gives the outbox body bound the code applies (7 days), not 30."""
    doc = (ROOT / "docs" / "privacy.md").read_text(encoding="utf-8")
    assert "at most 30 days" not in doc
    assert "at most 7 days" in doc


# --- 8. the register tells the truth --------------------------------------------------------


def test_a_request_is_closed_only_by_the_action_it_asked_for(client, cli, settings, clock):
    """An erase request cannot be closed by an export, nor twice; an objection by a withdrawal."""
    with at(clock, D0):
        post_json(client)
        erase_id = invoke(cli, "subject", "receive", "erase", EMAIL).output.split()[1]
        object_id = invoke(cli, "subject", "receive", "object", EMAIL).output.split()[1]
        wrong = invoke(cli, "subject", "export", EMAIL, "--request", erase_id, expect=1)
        invoke(cli, "subject", "erase", EMAIL, "--request", erase_id)
        twice = invoke(cli, "subject", "erase", EMAIL, "--request", erase_id, expect=1)
        invoke(cli, "consent", "withdraw", EMAIL, "--request", object_id)
    assert "asks for erase, not export" in wrong.output
    assert "already completed" in twice.output
    done = rows(settings.var_dir, "SELECT kind, completed_at IS NOT NULL FROM subject_requests")
    assert done == [("erase", 1), ("object", 1)]


def test_late_and_refused_requests_show_as_such(client, cli, settings, clock):
    """A request completed after its due date is listed as late; a refused action is recorded
    and listed as refused, with its reason."""
    with at(clock, D0):
        post_json(client)
        late_id = invoke(cli, "subject", "receive", "export", EMAIL).output.split()[1]
        invoke(cli, "subject", "restrict", EMAIL)
    with at(clock, D0 + timedelta(days=40)):
        invoke(cli, "subject", "export", EMAIL, "--request", late_id)
        invoke(cli, "subject", "rectify", EMAIL, "--name", "Jeanne M.", expect=1)
        listed = json.loads(invoke(cli, "subject", "requests", "--json").output)
    statuses = {r["kind"]: r["status"] for r in listed}
    assert statuses == {"export": "done late", "restrict": "done", "rectify": "refused"}
    [(outcome,)] = rows(
        settings.var_dir, "SELECT outcome FROM subject_requests WHERE kind = 'rectify'"
    )
    assert outcome.startswith("refused: rectify: the record is restricted")
    actions = [a for (a,) in rows(settings.var_dir, "SELECT action FROM audit_log")]
    assert "subject.rectify.refused" in actions


# --- 9. rectification validates ---------------------------------------------------------------


def test_rectified_phone_is_normalised(client, cli, clock):
    """A rectified phone is stored in E.164, as the form stores it."""
    with at(clock, D0):
        post_json(client)
        invoke(cli, "subject", "rectify", EMAIL, "--phone", "06 98 76 54 32")
        data = export(cli, EMAIL)
    assert data["prospect"]["phone"] == "+33698765432"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--phone", "call me maybe", "the phone is refused"),
        ("--phone", "12", "the phone is refused"),
        ("--name", "   ", "the name is refused: This field must not be empty."),
        ("--name", "Jeanne\nMartin", "the name is refused: This field contains line breaks"),
        ("--company", "x" * 201, "the company is refused: This field is too long"),
        ("--new-email", "", "the new email is refused: This field must not be empty."),
        ("--new-email", "not-an-address", "the new email is refused: This is not a valid"),
    ],
)
def test_rectification_refuses_what_the_form_refuses(
    client, cli, settings, clock, option, value, message
):
    """Invalid values are refused with the form's reason, recorded as refused, nothing changed."""
    with at(clock, D0):
        post_json(client)
        result = invoke(cli, "subject", "rectify", EMAIL, option, value, expect=1)
        data = export(cli, EMAIL)
    assert message in result.output
    assert data["prospect"]["name"] == VALID["name"]
    assert data["prospect"]["phone"] == "+33612345678"
    [(outcome,)] = rows(
        settings.var_dir, "SELECT outcome FROM subject_requests WHERE kind='rectify'"
    )
    assert outcome.startswith("refused")


def test_rectification_may_empty_optional_fields(client, cli, clock):
    """Company and phone may be emptied (given as "")."""
    with at(clock, D0):
        post_json(client)
        invoke(cli, "subject", "rectify", EMAIL, "--company", "", "--phone", "")
        data = export(cli, EMAIL)
    assert (data["prospect"]["company"], data["prospect"]["phone"]) == (None, None)
