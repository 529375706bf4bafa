"""POST /f/{form_id} through the HTTP interface: what is stored, CORS and idempotency (the
answer codes themselves: tests/test_answer_table.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3

import pytest

from relay.app import create_app
from relay.crypto import KeyRing
from relay.store.outbox import open_body
from tests.conftest import TEST_KEY, TEST_KEY_2
from tests.helpers import ORIGIN, VALID, post_form, post_json

JSON_HEADERS = {"Accept": "application/json", "Origin": ORIGIN}


def rows(settings, sql="SELECT * FROM submissions"):
    db = sqlite3.connect(settings.var_dir / "relay.db")
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute(sql)]
    finally:
        db.close()


# --- success -----------------------------------------------------------------------------


def test_accepted_submission_is_committed_with_its_legal_record(client, settings, clock):
    """Before the 202, the outbox row holds id, form, UTC time, basis, notice, consent (with its
    time), the state queued and the fields sealed under the key."""
    response = post_json(client, newsletter="on")
    [row] = rows(settings)
    now = clock.now.strftime("%Y-%m-%d %H:%M:%S")
    assert row["id"] == response.json()["id"]
    assert row["form_id"] == "contact"
    assert row["received_at"].startswith(now)
    assert row["legal_basis"] == "legitimate_interest"
    assert row["notice_version"] == "2026-03-20"
    assert (row["consent_given"], row["consent_wording_version"]) == (1, "v1")
    assert row["consent_at"].startswith(now)
    assert row["state"] == "queued"
    assert VALID["message"].encode() not in row["body_enc"]
    body = open_body(KeyRing.from_text(TEST_KEY), row["id"], row["body_enc"])
    assert (body["email"], body["message"]) == (VALID["email"], VALID["message"])


def test_consent_absent_is_recorded_as_not_given(client, settings):
    """An unticked box (field absent) is stored as consent not given, with the wording version."""
    post_form(client)
    [row] = rows(settings)
    assert (row["consent_given"], row["consent_wording_version"], row["consent_at"]) == (
        0,
        "v1",
        None,
    )


def test_contract_form_records_its_basis_and_redirects_to_success_url(client, settings):
    """A form declaring `contract` stores it; browsers go to the form's success_url."""
    response = post_form(client, "quote")
    assert response.headers["location"] == "https://www.example.com/merci"
    assert rows(settings)[0]["legal_basis"] == "contract"


def test_json_next_is_the_success_url(client):
    """For a JSON client, `next` is the form's success_url when it has one."""
    assert post_json(client, "quote").json()["next"] == "https://www.example.com/merci"


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ("https://www.example.com/thanks?x=1", "https://www.example.com/thanks?x=1"),
        ("https://evil.example.net/phish", "http://relay.test/f/contact/thanks"),
        ("javascript:alert(1)", "http://relay.test/f/contact/thanks"),
    ],
)
def test_next_field_redirects_only_to_allowed_origins(client, wanted, expected):
    """Formspree's `_next` is honoured only on the form's own origins: no open redirect."""
    response = post_form(client, _next=wanted)
    assert response.headers["location"] == expected


def test_multipart_form_is_accepted(client, settings):
    """multipart/form-data with text fields only is accepted like a urlencoded form."""
    response = client.post(
        "/f/contact",
        files={k: (None, v) for k, v in VALID.items()},
        headers={"Accept": "text/html", "Origin": ORIGIN},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert len(rows(settings)) == 1


def test_unknown_fields_are_ignored_and_never_stored(client, settings):
    """Extra fields (tracking ids, telemetry) are dropped, not stored (_cc is refused: 422)."""
    post_json(client, utm_source="CANARY-EXTRA-FIELD")
    raw = (settings.var_dir / "relay.db").read_bytes()
    assert b"CANARY-EXTRA-FIELD" not in raw


def test_public_url_setting_builds_the_thank_you_link(settings_factory, clock):
    """With RELAY_PUBLIC_URL set, JSON `next` points at it, not at the request's host."""
    from starlette.testclient import TestClient

    app = create_app(settings_factory(public_url="https://forms.example.com/"), clock=clock)
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        assert post_json(client).json()["next"] == "https://forms.example.com/f/contact/thanks"


# --- refusals ----------------------------------------------------------------------------
# Each refusal's status, code, page, metric and empty store: rows of tests/test_answer_table.py.


def test_invalid_fields_json_answer_is_what_formspree_reads(client, settings):
    """422 with a string `error` and field errors with Formspree codes; nothing stored."""
    response = client.post(
        "/f/contact", json={"email": "nope", "message": "x"}, headers=JSON_HEADERS
    )
    assert response.status_code == 422
    body = response.json()
    assert body["ok"] is False
    assert isinstance(body["error"], str)
    assert {(e["field"], e["code"]) for e in body["errors"]} == {
        ("name", "REQUIRED_FIELD_MISSING"),
        ("email", "TYPE_EMAIL"),
    }
    assert rows(settings) == []


def test_invalid_fields_html_page_lists_each_problem_with_a_link_back(client):
    """Without error_url, a browser gets an accessible 422 page naming each field, and a link."""
    response = post_form(client, email="nope", message="", expect=422)
    assert response.headers["content-type"].startswith("text/html")
    assert "<strong>Email</strong>: This is not a valid email address." in response.text
    assert "<strong>Message</strong>: This field must not be empty." in response.text
    assert 'href="https://www.example.com/"' in response.text


def test_error_page_escapes_what_the_client_sent(client):
    """Nothing the client sent is echoed unescaped into the error page."""
    response = post_form(
        client, email="<script>alert(1)</script>", name="<b>x</b>\r\n", message="", expect=422
    )
    assert "<script>" not in response.text
    assert "<b>x</b>" not in response.text


# --- CORS ----------------------------------------------------------------------------------


def test_preflight_allows_formspree_headers_for_allowed_origin(client):
    """OPTIONS from an allowed origin allows POST and the headers Formspree's client sends."""
    response = client.options(
        "/f/contact",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,formspree-client",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ORIGIN
    allowed = response.headers["access-control-allow-headers"].lower()
    wanted = ("content-type", "formspree-client", "formspree-session-data", "idempotency-key")
    assert [h for h in wanted if h not in allowed] == []
    assert "POST" in response.headers["access-control-allow-methods"]


@pytest.mark.parametrize(
    ("path", "origin", "status"),
    [
        ("/f/contact", "https://evil.example.net", 403),
        ("/f/contact", None, 403),
        ("/f/nope", ORIGIN, 404),
    ],
)
def test_preflight_refusals(client, path, origin, status):
    """A preflight from a foreign origin or without one is 403, for an unknown form 404, none of
    them with CORS headers."""
    headers = {"Origin": origin} if origin else {}
    response = client.options(path, headers=headers)
    assert response.status_code == status
    assert "access-control-allow-origin" not in response.headers


def test_accepted_response_carries_cors_for_allowed_origin(client):
    """An accepted post from the form's own site carries that origin in Access-Control-Allow-Origin,
    varying by Origin."""
    response = post_json(client)
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["vary"] == "Origin"


def test_no_cookie_on_public_endpoints(client):
    """Public endpoints set no cookie (CNIL: no tracker without need)."""
    assert "set-cookie" not in post_json(client).headers
    assert "set-cookie" not in post_form(client).headers


def test_thanks_page_for_unknown_form_is_404(client):
    """The thank-you page of a form that does not exist is a 404."""
    assert client.get("/f/nope/thanks").status_code == 404


# --- idempotency ---------------------------------------------------------------------------


def test_idempotency_key_replays_the_first_answer_and_stores_nothing_new(client, settings):
    """The same Idempotency-Key within 24 h returns the first answer; one row only."""
    headers = {**JSON_HEADERS, "Idempotency-Key": "order-42"}
    first = client.post("/f/contact", json=VALID, headers=headers)
    second = client.post("/f/contact", json={**VALID, "name": "Other"}, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert len(rows(settings)) == 1


def test_idempotency_key_expires_after_24_hours(client, settings, clock):
    """After 24 h the same key is a new submission."""
    from datetime import timedelta

    headers = {**JSON_HEADERS, "Idempotency-Key": "order-42"}
    first = client.post("/f/contact", json=VALID, headers=headers).json()
    clock.now += timedelta(hours=24, seconds=1)
    second = client.post("/f/contact", json=VALID, headers=headers).json()
    assert first["id"] != second["id"]
    assert len(rows(settings)) == 2
    assert len(rows(settings, "SELECT * FROM idempotency_keys")) == 1


def test_idempotency_keys_are_per_form(client, settings):
    """The same Idempotency-Key on two forms gives two submissions, not a replay."""
    headers = {**JSON_HEADERS, "Idempotency-Key": "k"}
    a = client.post("/f/contact", json=VALID, headers=headers).json()
    b = client.post("/f/quote", json=VALID, headers=headers).json()
    assert a["id"] != b["id"]


def test_idempotency_key_is_stored_only_as_a_keyed_hash(client, settings):
    """The Idempotency-Key is stored only as its HMAC under the signing key, bound to the form,
    never in clear."""
    headers = {**JSON_HEADERS, "Idempotency-Key": "CANARY-IDEMPOTENCY-KEY"}
    assert client.post("/f/contact", json=VALID, headers=headers).status_code == 202
    [row] = rows(settings, "SELECT * FROM idempotency_keys")
    assert "CANARY" not in json.dumps(row, default=str)
    key = KeyRing.from_text(TEST_KEY).signing_key
    mac = hmac.new(key, b"idem|contact|CANARY-IDEMPOTENCY-KEY", hashlib.sha256).hexdigest()
    assert row["key_mac"] == mac


@pytest.mark.parametrize("key", ["", "x" * 256, b"cl\xc3\xa9"])
def test_invalid_idempotency_key_is_400(client, key):
    """An empty, too long or non-ASCII Idempotency-Key is 400 INVALID_IDEMPOTENCY_KEY."""
    headers = {**JSON_HEADERS, "Idempotency-Key": key}
    response = client.post("/f/contact", json=VALID, headers=headers)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "INVALID_IDEMPOTENCY_KEY"


def test_the_replayed_answer_keeps_no_submitted_value_in_clear(client, settings):
    """A `_next` carrying personal data is replayed intact but stored only sealed; without the
    key that sealed it, the replay still answers, minus `next`."""
    headers = {**JSON_HEADERS, "Idempotency-Key": "order-43"}
    wanted = "https://www.example.com/merci?email=CANARY-NEXT%40example.fr"
    first = client.post("/f/contact", json={**VALID, "_next": wanted}, headers=headers)
    second = client.post("/f/contact", json=VALID, headers=headers)
    assert first.json()["next"] == wanted
    assert second.json() == first.json()
    [row] = rows(settings, "SELECT * FROM idempotency_keys")
    stored = json.dumps(row, default=str)
    assert "CANARY" not in stored
    assert "merci" not in stored
    assert row["response"].startswith("sealed:")
    from relay.store.outbox import StoredAnswer, open_answer

    earlier = StoredAnswer(first.json()["id"], 202, row["response"])
    replay = open_answer(KeyRing.from_text(TEST_KEY_2), row["key_mac"], earlier)
    assert json.loads(replay) == {"ok": True, "id": first.json()["id"]}


# --- the dispatcher's signal -------------------------------------------------------------


def test_each_submission_is_counted_while_it_is_answered(client, monkeypatch):
    """A JSON post (through the flood gate), a form post (through Starlette) and a refused
    one each count as one visitor while relay answers them, and none once answered: what an
    in-process dispatcher reads to let them go first (relay.deliver.pacing.Visitors)."""
    from relay.web import submit

    visitors = client.app.state.deps.visitors
    seen: list[int] = []
    real = submit._accept

    async def watched(*args, **kwargs):
        seen.append(visitors.count)
        return await real(*args, **kwargs)

    monkeypatch.setattr(submit, "_accept", watched)
    post_json(client)
    post_form(client)
    post_json(client, email="not an address", expect=422)
    assert seen == [1, 1, 1]
    assert (visitors.count, visitors.waiting()) == (0, False)


def test_the_in_process_dispatcher_paces_itself_by_the_apps_visitors(settings_factory):
    """relay serve's dispatcher is given the app's count of visitors (not a pacer that only
    watches the loop): while one is counted, it keeps to its share."""
    app = create_app(settings_factory(dispatch_in_serve=True))
    from starlette.testclient import TestClient

    with TestClient(app) as client:
        dispatcher = client.app_state["dispatcher"]
        visitors = app.state.deps.visitors
        visitors.count = 1
        assert dispatcher._pacer._visitors() is True
        visitors.count = 0
        assert dispatcher._pacer._visitors() is False
