"""Quarantined submissions: never delivered by themselves; listed, released or deleted by an
admin (CLI and /admin, audited); purged after their retention; in a DPO's export."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from relay.app import create_app
from relay.store.proofs import use_once
from tests.admin_helpers import USERS, Admin
from tests.conftest import invoke
from tests.defence_helpers import DEFENCE_FORMS_TOML
from tests.deliveries_helpers import drained, write
from tests.fakes import FakeTransport
from tests.helpers import VALID, post_json
from tests.privacy.support import at, export

SPAM = {"message": "Best casino in town", "newsletter": "on"}


@pytest.fixture(name="forms_file")
def fixture_forms_file(tmp_path: Path) -> Path:
    path = tmp_path / "forms.toml"
    path.write_text(DEFENCE_FORMS_TOML, encoding="utf-8")
    return path


@pytest.fixture(name="settings")
def fixture_settings(settings_factory: Any) -> Any:
    return settings_factory(admin_users=USERS)


@pytest.fixture(name="client")
def fixture_client(settings, clock) -> Iterator[TestClient]:
    with TestClient(create_app(settings, clock=clock), base_url="http://localhost") as client:
        yield client


def quarantined(client: TestClient, **fields: Any) -> str:
    response = post_json(client, "filtered", **{**SPAM, **fields})
    return str(response.json()["id"])


def db(settings, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(settings.var_dir / "relay.db")
    try:
        return list(conn.execute(sql, params))
    finally:
        conn.close()


def state(settings, sid: str) -> str | None:
    found = db(settings, "SELECT state FROM submissions WHERE id = ?", sid)
    return found[0][0] if found else None


def audited(settings, action: str) -> list[str]:
    return [r[0] for r in db(settings, "SELECT target FROM audit_log WHERE action = ?", action)]


def test_the_dispatcher_never_claims_a_quarantined_submission(settings_factory, clock):
    """With delivery running, the clean submission is sent and the quarantined one stays."""
    transport = FakeTransport()
    settings = settings_factory(dispatch_in_serve=True)
    with TestClient(create_app(settings, clock=clock, transport=transport)) as client:
        held = quarantined(client)
        clean = post_json(client, "filtered").json()["id"]
        drained(client)
        clock.now += timedelta(days=1)
        drained(client)  # a pass a day later: still not claimed
    assert [e.submission_id for e in transport.sent] == [clean]
    assert state(settings, held) == "quarantined"


# --- /admin -------------------------------------------------------------------------------


def test_admin_lists_quarantined_submissions_with_the_rule(client):
    """The delivery log filtered on `quarantined` shows the row and the rule that caught it."""
    sid = quarantined(client)
    admin = Admin(client)
    admin.login("vera")
    page = admin.get("/admin/deliveries?state=quarantined")
    assert page.status_code == 200
    assert sid in page.text
    assert '<td class="caught">blocked_word</td>' in page.text
    detail = admin.get(f"/admin/deliveries/{sid}")
    assert 'id="caught-by">blocked_word<' in detail.text
    assert f'action="/admin/deliveries/{sid}/release"' in detail.text


def test_admin_release_delivers_and_records_it_like_any_other(settings_factory, clock):
    """Released: queued, sent by the dispatcher, prospect and consent recorded, audited."""
    transport = FakeTransport()
    settings = settings_factory(admin_users=USERS, dispatch_in_serve=True)
    app = create_app(settings, clock=clock, transport=transport)
    with TestClient(app, base_url="http://localhost") as client:
        sid = quarantined(client)
        assert db(settings, "SELECT count(*) FROM prospects") == [(0,)]
        admin = Admin(client)
        admin.login("vera")
        response = admin.post(f"/admin/deliveries/{sid}/release")
        assert "Released" in admin.get(response.headers["location"]).text
        drained(client)
        again = admin.post(f"/admin/deliveries/{sid}/release")
        assert again.headers["location"].endswith("?notice=q_not_quarantined")
        assert "It is not quarantined." in admin.get(again.headers["location"]).text
    assert transport.sent[0].submission_id == sid
    assert db(settings, "SELECT count(*) FROM prospects") == [(1,)]
    assert db(settings, "SELECT event, submission_id FROM consent_events") == [("granted", sid)]
    assert db(settings, "SELECT event FROM delivery_events WHERE submission_id = ?", sid) == [
        ("released",)
    ]
    assert audited(settings, "quarantine.release") == [sid]


def test_admin_delete_removes_it_for_good_and_is_audited(client, settings):
    """Deleted: the row is gone, the audit log says who deleted which id."""
    sid = quarantined(client)
    admin = Admin(client)
    admin.login("vera")
    response = admin.post(f"/admin/deliveries/{sid}/delete")
    assert "state=quarantined" in response.headers["location"]
    assert state(settings, sid) is None
    assert audited(settings, "quarantine.delete") == [sid]


@pytest.mark.parametrize(
    ("path", "status"),
    [("release", 303), ("delete", 303), ("explode", 404)],
)
def test_admin_quarantine_actions_refuse_what_is_not_quarantined(client, settings, path, status):
    """A queued submission is neither released nor deleted; an unknown action is 404."""
    sid = post_json(client, "filtered").json()["id"]
    admin = Admin(client)
    admin.login("vera")
    response = admin.post(f"/admin/deliveries/{sid}/{path}", expect=status)
    if status == 303:
        assert response.headers["location"].endswith("?notice=q_not_quarantined")
    assert state(settings, sid) == "queued"


def test_admin_quarantine_actions_need_the_form_token(client, settings):
    """Without the CSRF token the action is refused (403) and nothing changes."""
    sid = quarantined(client)
    admin = Admin(client)
    admin.login("vera")
    response = client.post(f"/admin/deliveries/{sid}/delete", data={"csrf": "wrong"})
    assert response.status_code == 403
    assert state(settings, sid) == "quarantined"


# --- CLI ----------------------------------------------------------------------------------


def test_cli_lists_releases_and_deletes_quarantined_submissions(client, cli, settings):
    """`relay deliveries --state quarantined`, `release`, `delete`: each says what it did."""
    held, spam = quarantined(client), quarantined(client)
    listed = invoke(cli, "deliveries", "--state", "quarantined")
    assert "caught: blocked_word" in listed.output
    as_json = json.loads(invoke(cli, "deliveries", "--state", "quarantined", "--json").output)
    assert {(r["id"], r["quarantine_reason"]) for r in as_json} == {
        (held, "blocked_word"),
        (spam, "blocked_word"),
    }
    released = invoke(cli, "deliveries", "release", held)
    assert (released.exit_code, state(settings, held)) == (0, "queued")
    assert "released" in released.output
    deleted = invoke(cli, "deliveries", "delete", spam)
    assert (deleted.exit_code, state(settings, spam)) == (0, None)
    assert audited(settings, "quarantine.release") == [held]
    assert audited(settings, "quarantine.delete") == [spam]


@pytest.mark.parametrize(
    ("command", "target", "message"),
    [
        ("release", "queued", "it is not quarantined"),
        ("delete", "queued", "it is not quarantined"),
        ("release", "missing", "no such submission"),
        ("delete", "missing", "no such submission"),
    ],
)
def test_cli_quarantine_commands_refuse_with_a_reason(client, cli, command, target, message):
    """Only quarantined submissions are released or deleted; otherwise exit 1 with the reason."""
    sid = post_json(client, "filtered").json()["id"] if target == "queued" else "nope"
    result = invoke(cli, "deliveries", command, sid, expect=1)
    assert message in result.output


def test_an_erasure_cancels_a_quarantined_submission(client, cli, settings):
    """The person's erasure wipes the body and cancels it: it can no longer be released."""
    sid = quarantined(client)
    invoke(cli, "subject", "erase", VALID["email"])
    assert state(settings, sid) == "failed"
    assert db(settings, "SELECT body_enc FROM submissions") == [(None,)]
    result = invoke(cli, "deliveries", "release", sid, expect=1)
    assert "not quarantined" in result.output


# --- retention and rights -----------------------------------------------------------------


def test_quarantined_rows_keep_their_body_until_their_own_bound_then_go(client, cli, clock):
    """Not wiped at the 7-day body bound; deleted after RELAY_QUARANTINE_RETENTION_DAYS (30)."""
    d0 = datetime(2026, 3, 1, 8, tzinfo=UTC)
    with at(clock, d0):
        quarantined(client)
    with at(clock, d0 + timedelta(days=8)):
        first = json.loads(invoke(cli, "purge", "--json").output)
        [sub] = export(cli, VALID["email"])["submissions"]
    assert (first["bodies_wiped"], first["quarantined"]) == (0, 0)
    assert sub["message"] == SPAM["message"]
    with at(clock, d0 + timedelta(days=31)):
        dry = json.loads(invoke(cli, "purge", "--json", "--dry-run").output)
        real = json.loads(invoke(cli, "purge", "--json").output)
        assert export(cli, VALID["email"])["submissions"] == []
    assert dry["quarantined"] == real["quarantined"] == 1


def test_used_proofs_are_purged_once_their_challenge_expired(client, cli, clock):
    """A proof-of-work record lives until its challenge's expiry, then the purge removes it."""
    d0 = datetime(2026, 3, 1, 8, tzinfo=UTC)
    write(client, use_once("a" * 64, d0 + timedelta(minutes=10)))
    with at(clock, d0 + timedelta(minutes=5)):
        assert json.loads(invoke(cli, "purge", "--json").output)["proof_nonces"] == 0
    with at(clock, d0 + timedelta(minutes=10)):
        assert json.loads(invoke(cli, "purge", "--json").output)["proof_nonces"] == 1


def test_a_dpo_export_includes_quarantined_submissions(client, cli):
    """The person's export lists the quarantined submission, its state and its message."""
    sid = quarantined(client)
    data = export(cli, VALID["email"])
    [sub] = data["submissions"]
    assert (sub["id"], sub["delivery_state"], sub["message"]) == (
        sid,
        "quarantined",
        SPAM["message"],
    )
    assert data["prospect"] is None


def _wipe_body(client: TestClient, settings: Any, monkeypatch: Any, sid: str) -> None:
    """A direct write: no flow leaves a quarantined row without its body (erasure also makes
    it failed, the purge deletes it), so this checks release's own guard against one."""
    from sqlalchemy import update

    from relay.store.tables import submissions

    def job(conn: Any) -> int:
        query = update(submissions).where(submissions.c.id == sid).values(body_enc=None)
        return int(conn.execute(query).rowcount)

    assert write(client, job) == 1, f"no submission {sid} to wipe"


def _drop_form(client: TestClient, settings: Any, monkeypatch: Any, sid: str) -> None:
    settings.forms_file.write_text(DEFENCE_FORMS_TOML.split('[[forms]]\nid = "filtered"')[0])


def _other_key(client: TestClient, settings: Any, monkeypatch: Any, sid: str) -> None:
    from tests.conftest import TEST_KEY_2

    monkeypatch.setenv("RELAY_SECRET_KEY", TEST_KEY_2)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_wipe_body, "its body was wiped"),
        (_drop_form, "no longer in the forms file"),
        (_other_key, "cannot be opened with the current keys"),
    ],
)
def test_release_refuses_what_cannot_be_delivered(
    client, cli, settings, monkeypatch, make, message
):
    """No body, no form, or no key to open it: release says why; delete still works."""
    sid = quarantined(client)
    make(client, settings, monkeypatch, sid)
    result = invoke(cli, "deliveries", "release", sid, expect=1)
    assert message in result.output
    assert state(settings, sid) == "quarantined"
    invoke(cli, "deliveries", "delete", sid)


def test_release_reports_a_broken_configuration(client, cli, settings):
    """A forms file that no longer parses: exit 1 naming the problem, nothing changed."""
    sid = quarantined(client)
    settings.forms_file.write_text("not toml [")
    result = invoke(cli, "deliveries", "release", sid, expect=1)
    assert "not valid TOML" in result.output
    assert state(settings, sid) == "quarantined"


def test_admin_quarantine_actions_need_a_login(client, settings):
    """Without a session the action sends to the login page and changes nothing."""
    sid = quarantined(client)
    response = client.post(f"/admin/deliveries/{sid}/release", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/admin/login")
    assert state(settings, sid) == "quarantined"
