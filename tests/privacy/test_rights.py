"""Data-subject rights through the real CLI: erase, rectify, restrict, withdraw, the register."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from relay.crypto import KeyRing
from tests.conftest import TEST_KEY, invoke
from tests.helpers import VALID, post_json
from tests.privacy.support import at, export, raw_bytes, rows

EMAIL = VALID["email"]
D0 = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def test_erase_removes_everything_and_is_idempotent(client, cli, settings, clock):
    """Erase deletes record, consent history and message, unlinks the log; a rerun finds nothing."""
    with at(clock, D0):
        post_json(client, newsletter="on", name="Zoé Canari", phone="+33 6 99 88 77 66")
        result = invoke(cli, "subject", "erase", EMAIL.upper())
    assert "prospects: 1" in result.output
    assert "consent_events: 1" in result.output
    assert "messages_erased: 1" in result.output
    assert "delivery_log_rows_unlinked: 1" in result.output
    assert "Microsoft 365" not in result.output  # nothing was handed on yet: no copies
    with at(clock, D0):
        again = invoke(cli, "subject", "erase", EMAIL)
        data = export(cli, EMAIL)
    assert "nothing to erase" in again.output
    assert data["prospect"] is None
    assert data["submissions"] == []
    assert data["consent_events"] == []
    assert data["marketing"]["on_opposition_list"] is True
    # the delivery-log row stays, without body or link; it was cancelled before sending
    assert rows(settings.var_dir, "SELECT body_enc, subject_mac, state FROM submissions") == [
        (None, None, "failed")
    ]
    # the opposition list holds a keyed hash and dates, nothing else
    [(mac, _added, keep)] = rows(settings.var_dir, "SELECT * FROM opposition")
    assert mac == KeyRing.from_text(TEST_KEY).mac(EMAIL)
    assert keep.startswith("2029-11-25")
    invoke(cli, "subject", "requests")  # keeps the file in a checkpointed state
    blob = raw_bytes(settings.var_dir)
    assert b"Canari" not in blob
    assert b"99887766" not in blob


def test_erased_person_needs_a_new_consent(client, cli, clock):
    """After withdraw + erase, a submission without the box does not re-enrol; ticking does."""
    with at(clock, D0):
        post_json(client, newsletter="on")
        invoke(cli, "consent", "withdraw", EMAIL)
        invoke(cli, "subject", "erase", EMAIL)
        post_json(client)
        data = export(cli, EMAIL)
    assert data["marketing"] == {
        "consent": "none",
        "on_opposition_list": True,
        "consent_chain_verified": True,
    }
    assert data["prospect"] is not None
    with at(clock, D0 + timedelta(days=1)):
        post_json(client, newsletter="on")
        data = export(cli, EMAIL)
    assert data["marketing"]["consent"] == "granted"
    assert data["marketing"]["on_opposition_list"] is False


def test_withdraw_is_idempotent(client, cli, clock):
    """A second withdrawal changes nothing and says so."""
    with at(clock, D0):
        post_json(client, newsletter="on")
        assert "consent withdrawn" in invoke(cli, "consent", "withdraw", EMAIL).output
        assert "already withdrawn" in invoke(cli, "consent", "withdraw", EMAIL).output
        data = export(cli, EMAIL)
    assert [e["event"] for e in data["consent_events"]] == ["granted", "withdrawn"]
    assert data["consent_events"][1]["source"].startswith("cli")


def test_rectify(client, cli, clock):
    """Rectify changes the given fields; a new email moves the record and its history."""
    with at(clock, D0):
        post_json(client, newsletter="on")
        invoke(cli, "subject", "rectify", EMAIL, "--company", "Martin SA", "--phone", "")
        data = export(cli, EMAIL)
        assert data["prospect"]["company"] == "Martin SA"
        assert data["prospect"]["phone"] is None
        invoke(cli, "subject", "rectify", EMAIL, "--new-email", "j.martin@example.fr")
        moved = export(cli, "j.martin@example.fr")
        old = export(cli, EMAIL)
    assert moved["prospect"]["email"] == "j.martin@example.fr"
    assert moved["prospect"]["name"] == VALID["name"]
    assert [e["event"] for e in moved["consent_events"]] == ["granted"]
    assert len(moved["submissions"]) == 1
    assert old["prospect"] is None


def test_rectify_errors(client, cli, clock):
    """No field, no record, or a new address that is someone else's: clear refusals."""
    with at(clock, D0):
        post_json(client)
        post_json(client, email="other@example.fr")
        none = invoke(cli, "subject", "rectify", EMAIL, expect=2)
        missing = invoke(cli, "subject", "rectify", "nobody@x.fr", "--name", "X", expect=1)
        taken = invoke(
            cli, "subject", "rectify", EMAIL, "--new-email", "other@example.fr", expect=1
        )
        invalid = invoke(
            cli, "subject", "rectify", EMAIL, "--new-email", "not an address", expect=1
        )
    assert "at least one of" in none.output
    assert "no record" in missing.output
    assert "already has a record" in taken.output
    assert "not a valid email address" in invalid.output


def test_restricted_record_is_frozen(client, cli, clock):
    """Restricted: rectify and touch refuse; a new submission is accepted but not merged, and
    its ticked box is recorded as a grant (the email, the record and the export agree)."""
    with at(clock, D0):
        post_json(client)
        invoke(cli, "subject", "restrict", EMAIL)
    later = D0 + timedelta(days=30)
    with at(clock, later):
        refused = invoke(cli, "subject", "rectify", EMAIL, "--name", "X", expect=1)
        invoke(cli, "subject", "touch", EMAIL, expect=1)
        post_json(client, name="Changed Name", newsletter="on")
        data = export(cli, EMAIL)
    assert "restricted" in refused.output
    assert data["prospect"]["status"] == "restricted"
    assert data["prospect"]["name"] == VALID["name"]
    assert data["prospect"]["last_interaction_at"] == D0.isoformat()
    assert [e["event"] for e in data["consent_events"]] == ["granted"]
    assert data["marketing"]["consent"] == "granted"
    assert len(data["submissions"]) == 2  # the new one is kept for delivery
    assert [s["marketing_consent_given"] for s in data["submissions"]] == [False, True]
    with at(clock, later):
        assert "lifted" in invoke(cli, "subject", "unrestrict", EMAIL).output
        invoke(cli, "subject", "rectify", EMAIL, "--name", "X")
    invoke(cli, "subject", "restrict", "nobody@x.fr", expect=1)


def test_show_is_audited(client, cli, settings, clock):
    """`relay subject show` prints the record and adds one audit entry, without content."""
    with at(clock, D0):
        post_json(client)
        result = invoke(cli, "subject", "show", EMAIL)
        invoke(cli, "subject", "show", "nobody@x.fr", expect=1)
    assert json.loads(result.output)["name"] == VALID["name"]
    audit = rows(settings.var_dir, "SELECT action, detail FROM audit_log WHERE action LIKE 'p%'")
    assert audit == [("prospect.view", '{"found": 1}'), ("prospect.view", '{"found": 0}')]


def test_every_command_records_a_request_and_an_audit_entry(client, cli, settings, clock):
    """Each subject command registers a completed request and one audit entry of counts."""
    with at(clock, D0):
        post_json(client)
        invoke(cli, "subject", "export", EMAIL, "--actor", "dpo@biosera")
        invoke(cli, "subject", "restrict", EMAIL)
        invoke(cli, "subject", "unrestrict", EMAIL)
        invoke(cli, "subject", "rectify", EMAIL, "--name", "J")
        invoke(cli, "consent", "withdraw", EMAIL)
        invoke(cli, "subject", "erase", EMAIL)
    requests = rows(
        settings.var_dir,
        "SELECT kind, actor, completed_at IS NOT NULL, due_at FROM subject_requests",
    )
    kinds = [r[0] for r in requests]
    assert kinds == ["export", "restrict", "unrestrict", "rectify", "withdraw", "erase"]
    assert requests[0][1] == "dpo@biosera"
    assert all(r[2] == 1 for r in requests)
    assert all(r[3].startswith("2026-12-25") for r in requests)
    audit = rows(settings.var_dir, "SELECT action, target, detail FROM audit_log")
    assert [a[0] for a in audit] == [f"subject.{k}" for k in kinds]
    blob = json.dumps(audit)
    assert EMAIL not in blob
    assert VALID["name"] not in blob


def test_request_register_and_overdue_exit_code(client, cli, clock):
    """A request received 31 Jan is due 28 Feb; past it and open, `requests` exits 1."""
    received = datetime(2027, 1, 31, 10, tzinfo=UTC)
    with at(clock, received):
        post_json(client)
        result = invoke(cli, "subject", "receive", "export", EMAIL, "--received", "2027-01-31")
    assert "due by 2027-02-28" in result.output
    request_id = result.output.split()[1]
    with at(clock, datetime(2027, 2, 10, tzinfo=UTC)):
        early = invoke(cli, "subject", "requests")
    with at(clock, datetime(2027, 2, 27, tzinfo=UTC)):
        listed = invoke(cli, "subject", "requests")
    assert "open" in early.output
    assert "due soon" in listed.output
    with at(clock, datetime(2027, 3, 1, tzinfo=UTC)):
        late = invoke(cli, "subject", "requests", "--json", expect=1)
        assert json.loads(late.stdout)[0]["status"] == "OVERDUE"
        invoke(cli, "subject", "export", EMAIL, "--request", request_id)
        after = invoke(cli, "subject", "requests")
        bad = invoke(cli, "subject", "export", EMAIL, "--request", "999", expect=1)
    assert "done" in after.output
    assert "no request 999" in bad.output
    with at(clock, datetime(2027, 3, 1, tzinfo=UTC)):
        invoke(cli, "subject", "receive", "erase", "other@x.fr")
        other = invoke(
            cli, "subject", "erase", EMAIL, "--request", str(int(request_id) + 1), expect=1
        )
    assert "concerns another address" in other.output


def test_requests_empty_and_export_to_file(client, cli, tmp_path):  # client: the database
    """No requests says so; `--output` writes the JSON to a private file."""
    assert "no open or recent requests" in invoke(cli, "subject", "requests").output
    target = tmp_path / "out.json"
    invoke(cli, "subject", "export", "nobody@x.fr", "--output", str(target))
    assert json.loads(target.read_text())["prospect"] is None
    assert target.stat().st_mode & 0o777 == 0o600


def test_erase_lists_the_copies_handed_to_the_mailbox(settings_factory, cli, clock):
    """Erasure lists the emails already relayed (date, form, id) for the Outlook clean-up."""
    from starlette.testclient import TestClient

    from relay.app import create_app
    from tests.deliveries_helpers import WEBHOOK_KEY, deliver, hook, submit

    settings = settings_factory(mailgun_webhook_signing_key=WEBHOOK_KEY)
    with at(clock, D0), TestClient(create_app(settings, clock=clock)) as client:
        sid = submit(client)
        deliver(client)
        hook(client, sid, "delivered", D0)
        result = invoke(cli, "subject", "erase", EMAIL)
    assert "Microsoft 365 mailbox" in result.output
    assert "Mailgun's logs" in result.output
    assert f"form contact  delivered  message id <{sid}@relay.localhost>" in result.output
