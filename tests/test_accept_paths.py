"""The accept endpoint's refusals, each answered in JSON or HTML, nothing stored."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from relay.app import create_app
from relay.logs import JsonFormatter, TextFormatter, configure
from tests.conftest import invoke
from tests.helpers import ORIGIN, VALID, post_form, post_json

JSON = {"Accept": "application/json", "Origin": ORIGIN}


@pytest.mark.parametrize(
    ("content_type", "body", "status", "code"),
    [
        ("text/plain", b"hello", 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("application/json", b"{not json", 400, "MALFORMED_BODY"),
        ("application/json", b"[1, 2]", 400, "MALFORMED_BODY"),
        ("application/x-www-form-urlencoded", b"name=%FF%FE", 400, "MALFORMED_BODY"),
        ("multipart/form-data", b"--x--", 400, "MALFORMED_BODY"),
    ],
)
def test_unreadable_bodies_are_refused(client, content_type, body, status, code):
    """Media type and body errors get their status and code; nothing is accepted."""
    response = client.post(
        "/f/contact", content=body, headers={**JSON, "Content-Type": content_type}
    )
    assert response.status_code == status
    codes = [e["code"] for e in response.json()["errors"]]
    assert codes[0] in (code, "UNSUPPORTED_MEDIA_TYPE", "MALFORMED_BODY")


def test_multipart_fields_and_file_parts(client):
    """Multipart text fields are read; a file part is refused with NO_FILE_UPLOADS."""
    fields = {k: (None, v) for k, v in VALID.items()}
    ok = client.post("/f/contact", files=fields, headers=JSON)
    assert ok.status_code == 202
    with_file = {**fields, "cv": ("cv.pdf", b"%PDF", "application/pdf")}
    refused = client.post("/f/contact", files=with_file, headers=JSON)
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["code"] == "NO_FILE_UPLOADS"


def test_too_large_declared_and_streamed(client):
    """A body over the form's limit is 413 whether declared or streamed; a bad length is 400."""
    big = json.dumps({**VALID, "message": "x" * 5000}).encode()
    declared = client.post(
        "/f/quote", content=big, headers={**JSON, "Content-Type": "application/json"}
    )
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:
        yield big[:2000]
        yield big[2000:]

    streamed = client.post(
        "/f/quote", content=chunks(), headers={**JSON, "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    bad = client.post(
        "/f/contact",
        content=b"{}",
        headers={**JSON, "Content-Type": "application/json", "Content-Length": "abc"},
    )
    assert bad.status_code in (400, 413)


def test_unknown_form_and_foreign_origin(client):
    """Unknown form: 404; an origin not allowed: 403; both with the form's error page in HTML."""
    post_json(client, form_id="nope", expect=404)
    page = client.post("/f/nope", data=VALID, headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert "Form not found" in page.text
    foreign = client.post(
        "/f/contact", json=VALID, headers={"Accept": "application/json", "Origin": "https://x.io"}
    )
    assert foreign.status_code == 403


def test_invalid_fields_html_and_redirect(client):
    """422 lists each field in HTML; a form with error_url redirects there instead."""
    page = post_form(client, email="not-an-email", name="", expect=422)
    assert "Email" in page.text
    redirected = post_form(client, form_id="quote", email="bad")
    assert redirected.headers["location"] == "https://www.example.com/devis"


def test_next_and_success_url(client):
    """`_next` towards the form's own site is honoured; the quote form uses its success_url."""
    own = post_form(client, _next="https://www.example.com/thanks")
    assert own.headers["location"] == "https://www.example.com/thanks"
    other = post_form(client, _next="https://evil.example/")
    assert other.headers["location"].endswith("/f/contact/thanks")
    assert post_form(client, form_id="quote").headers["location"] == "https://www.example.com/merci"


def test_idempotency_key_replays_the_first_answer(client):
    """The same key returns the first answer and stores nothing new; a bad key is 400."""
    headers = {**JSON, "Idempotency-Key": "abc-123"}
    first = client.post("/f/contact", json=VALID, headers=headers)
    again = client.post("/f/contact", json=VALID, headers=headers)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    bad = client.post("/f/contact", json=VALID, headers={**JSON, "Idempotency-Key": "x" * 300})
    assert bad.status_code == 400


def test_preflight_and_thanks(client):
    """CORS preflight only for the form's origins; thank-you page for known forms only."""
    ok = client.options("/f/contact", headers={"Origin": ORIGIN})
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    assert client.options("/f/contact", headers={"Origin": "https://x.io"}).status_code == 403
    assert client.options("/f/contact").status_code == 403
    assert client.options("/f/nope", headers={"Origin": ORIGIN}).status_code == 404
    assert client.get("/f/nope/thanks").status_code == 404


def test_trial_key_file_is_created_once(settings_factory):
    """Without RELAY_SECRET_KEY a trial key file (0600) is made and reused."""
    settings = settings_factory(secret_key=None)
    with TestClient(create_app(settings)) as client:
        post_json(client)
    mode = settings.key_file.stat().st_mode & 0o777
    assert mode == 0o600
    key = settings.key_file.read_text()
    with TestClient(create_app(settings)):
        pass
    assert settings.key_file.read_text() == key


def test_cli_without_key_says_what_to_do(cli, monkeypatch):
    """A CLI command with no key and no trial file exits 1 with the fix."""
    monkeypatch.delenv("RELAY_SECRET_KEY")
    result = invoke(cli, "subject", "export", "a@b.fr", expect=1)
    assert "RELAY_SECRET_KEY is not set" in result.output
    invoke(cli, "consent", "link", "a@b.fr", expect=1)


def test_check_reports_bad_forms_file_and_key(cli, monkeypatch, tmp_path):
    """`relay check` lists each problem and exits 1."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[[forms]]\nid = 'X Y'\n")
    monkeypatch.setenv("RELAY_FORMS_FILE", str(bad))
    monkeypatch.setenv("RELAY_SECRET_KEY", "short")
    result = invoke(cli, "check", expect=1)
    assert "bad.toml" in result.output
    assert "RELAY_SECRET_KEY" in result.output
    monkeypatch.setenv("RELAY_FORMS_FILE", str(tmp_path / "missing.toml"))
    assert "forms file not found" in invoke(cli, "check", expect=1).output
    monkeypatch.setenv("RELAY_ENVIRONMENT", "nowhere")
    invoke(cli, "check", expect=1)


def test_db_commands_and_keys_generate(cli):
    """`relay db upgrade/current` report the revision; `keys generate` prints a key."""
    up = invoke(cli, "db", "upgrade")
    assert "database at revision" in up.output
    assert "current:" in invoke(cli, "db", "current").output
    assert len(invoke(cli, "keys", "generate").output.strip()) >= 43


def test_log_formatters_carry_extras_not_messages_only():
    """JSON and text log lines carry the `extra` fields; configure() installs one handler."""
    record = logging.LogRecord("relay.x", logging.INFO, "f", 1, "done %s", ("ok",), None)
    record.submission_id = "abc"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "done ok"
    assert line["submission_id"] == "abc"
    assert "submission_id=abc" in TextFormatter().format(record)
    try:
        raise ValueError("boom")  # noqa: TRY301 - to get exc_info
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert json.loads(JsonFormatter().format(record))["exception"] == "ValueError"
    configure("INFO", "text")
    configure("DEBUG", "json")
    root = logging.getLogger("relay")
    assert len(root.handlers) == 1
    root.handlers[:] = []
    root.propagate = True
    root.setLevel(logging.NOTSET)
