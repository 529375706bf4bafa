"""The accept path's refusals and variants, through the real app (the foundation's contract,
checked here because delivery depends on exactly what gets queued)."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from starlette.testclient import TestClient

from relay.app import create_app
from tests.helpers import ORIGIN, VALID, post_form, post_json

JSON_HEADERS = {"Accept": "application/json", "Origin": ORIGIN}


def test_unknown_form_is_404_in_json_and_html(client):
    assert post_json(client, "nope", expect=404).json()["errors"][0]["code"] == "FORM_NOT_FOUND"
    page = post_form(client, "nope", expect=404)
    assert "Form not found" in page.text


def test_a_foreign_origin_is_refused(client):
    response = client.post(
        "/f/contact", json=VALID, headers={**JSON_HEADERS, "Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers


def test_an_unsupported_media_type_is_415(client):
    response = client.post(
        "/f/contact", content=b"name=x", headers={**JSON_HEADERS, "Content-Type": "text/plain"}
    )
    assert (response.status_code, response.json()["errors"][0]["code"]) == (
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )


@pytest.mark.parametrize(
    ("content_type", "body", "code"),
    [
        ("application/json", b"{not json", "MALFORMED_BODY"),
        ("application/json", b"[1, 2]", "MALFORMED_BODY"),
        ("application/x-www-form-urlencoded", b"name=%FF%FE", "MALFORMED_BODY"),
        ("multipart/form-data", b"--x\r\n", "MALFORMED_BODY"),
        ("multipart/form-data; boundary=x", b"garbage without parts", "MALFORMED_BODY"),
        (
            "multipart/form-data; boundary=b",
            b'--b\r\nContent-Disposition: form-data; name="name"\r\n\r\n\xff\xfe\r\n--b--\r\n',
            "MALFORMED_BODY",
        ),
        (
            "multipart/form-data; boundary=b",
            b'--b\r\nContent-Disposition: form-data; name="cv"; filename="cv.pdf"\r\n\r\n'
            b"%PDF\r\n--b--\r\n",
            "NO_FILE_UPLOADS",
        ),
    ],
)
def test_malformed_bodies_are_400(client, content_type, body, code):
    """Each malformed body gets 400 with a code, and nothing is queued."""
    response = client.post(
        "/f/contact", content=body, headers={**JSON_HEADERS, "Content-Type": content_type}
    )
    assert (response.status_code, response.json()["errors"][0]["code"]) == (400, code)


def test_multipart_posts_are_accepted(client):
    """A browser's multipart form is read field by field (first value wins)."""
    body = b"".join(
        f'--b\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in VALID.items()
    )
    response = client.post(
        "/f/contact",
        content=body + b"--b--\r\n",
        headers={**JSON_HEADERS, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 202


def test_a_declared_or_streamed_body_over_the_limit_is_413(client):
    big = {**VALID, "message": "x" * 5000}
    response = client.post("/f/quote", json=big, headers=JSON_HEADERS)
    assert response.status_code == 413
    bad_length = client.post(
        "/f/quote",
        content=b"{}",
        headers={**JSON_HEADERS, "Content-Type": "application/json", "Content-Length": "x"},
    )
    assert bad_length.status_code == 400


def test_invalid_fields_are_listed_in_json_and_redirected_for_browsers(client):
    response = post_json(client, email="not-an-email", name="", expect=422)
    codes = {e["field"]: e["code"] for e in response.json()["errors"]}
    assert codes == {"email": "TYPE_EMAIL", "name": "REQUIRED_FIELD_EMPTY"}
    redirected = post_form(client, "quote", email="nope")
    assert (redirected.status_code, redirected.headers["location"]) == (
        303,
        "https://www.example.com/devis",
    )
    page = post_form(client, "contact", email="nope", message="a\x00b", expect=422)
    assert "Some fields need correcting" in page.text


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("name", 42, "TYPE_TEXT"),
        ("name", "x" * 201, "TOO_LONG"),
        ("company", "a\nb", "INVALID_CHARACTERS"),
        ("message", "   ", "REQUIRED_FIELD_EMPTY"),
        ("phone", "\x07", "INVALID_CHARACTERS"),
    ],
)
def test_field_rules(client, field, value, code):
    response = post_json(client, expect=422, **{field: value})
    assert {e["field"]: e["code"] for e in response.json()["errors"]} == {field: code}


def test_optional_fields_and_aliases(client):
    """Formspree's _replyto stands for email; a phone that does not parse is kept as typed."""
    body = {k: v for k, v in VALID.items() if k != "email"}
    response = client.post(
        "/f/contact",
        json={**body, "_replyto": "a@example.com", "phone": "poste 12", "newsletter": True},
        headers=JSON_HEADERS,
    )
    assert response.status_code == 202
    missing = client.post("/f/contact", json={"name": "x"}, headers=JSON_HEADERS)
    assert {e["code"] for e in missing.json()["errors"]} == {"REQUIRED_FIELD_MISSING"}


def test_next_redirects_only_to_the_forms_origin(client):
    ok = post_form(client, _next=f"{ORIGIN}/merci")
    assert ok.headers["location"] == f"{ORIGIN}/merci"
    evil = post_form(client, _next="https://evil.example/x")
    assert evil.headers["location"] == "http://relay.test/f/contact/thanks"
    assert post_form(client, "quote").headers["location"] == "https://www.example.com/merci"


def test_idempotency_key_replays_the_first_answer(client):
    headers = {**JSON_HEADERS, "Idempotency-Key": "abc-123"}
    first = client.post("/f/contact", json=VALID, headers=headers)
    second = client.post("/f/contact", json=VALID, headers=headers)
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    bad = client.post("/f/contact", json=VALID, headers={**JSON_HEADERS, "Idempotency-Key": "a\tb"})
    assert bad.json()["errors"][0]["code"] == "INVALID_IDEMPOTENCY_KEY"


def test_preflight_and_thank_you_pages(client):
    allowed = client.options("/f/contact", headers={"Origin": ORIGIN})
    assert (allowed.status_code, allowed.headers["Access-Control-Allow-Origin"]) == (204, ORIGIN)
    assert client.options("/f/contact", headers={"Origin": "https://x.example"}).status_code == 403
    assert client.options("/f/nope", headers={"Origin": ORIGIN}).status_code == 404
    assert client.get("/f/nope/thanks").status_code == 404
    assert client.get("/f/contact/thanks").status_code == 200


def test_a_database_that_cannot_commit_answers_503(settings_factory, clock, caplog):
    """If the outbox write fails the client hears 503 with Retry-After, never a false 202."""
    settings = settings_factory(dispatch_in_serve=False)
    caplog.set_level(logging.ERROR, logger="relay")
    with TestClient(create_app(settings, clock=clock), base_url="http://relay.test") as client:
        post_json(client)
        with sqlite3.connect(settings.var_dir / "relay.db") as con:
            con.execute("ALTER TABLE submissions RENAME TO submissions_gone")
        failed = post_json(client, expect=503)
        assert (failed.status_code, failed.headers["Retry-After"]) == (503, "5")
        post_form(client, expect=503)
    assert "submission not stored" in caplog.text
