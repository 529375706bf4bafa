"""Refusals of the accept path, as a JSON client and a browser see them (and as metrics count)."""

from __future__ import annotations

import pytest

from tests.helpers import ORIGIN, VALID, post_form, post_json

JSON = {"Accept": "application/json", "Origin": ORIGIN}


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        (
            {"content": b"{broken", "headers": {**JSON, "Content-Type": "application/json"}},
            400,
            "MALFORMED_BODY",
        ),
        ({"content": b"a=1", "headers": {**JSON, "Content-Type": "text/plain"}}, 415, None),
        (
            {"json": VALID, "headers": {**JSON, "Origin": "https://evil.example"}},
            403,
            "ORIGIN_NOT_ALLOWED",
        ),
        (
            {"json": VALID, "headers": {**JSON, "Idempotency-Key": ""}},
            400,
            "INVALID_IDEMPOTENCY_KEY",
        ),
        (
            {"content": b"x" * 30000, "headers": {**JSON, "Content-Type": "application/json"}},
            413,
            "BODY_TOO_LARGE",
        ),
        (
            {
                "content": b"x",
                "headers": {**JSON, "Content-Type": "application/json", "Content-Length": "zz"},
            },
            400,
            "MALFORMED_BODY",
        ),
    ],
)
def test_json_refusals(client, kwargs, status, code):
    response = client.post("/f/contact", **kwargs)
    assert response.status_code == status
    if code:
        assert response.json()["errors"][0]["code"] == code
        assert f'outcome="{code.lower()}"' in client.get("/metrics").text


def test_urlencoded_and_multipart_are_accepted(client):
    post_form(client)
    files = {k: (None, v) for k, v in VALID.items()}
    response = client.post(
        "/f/contact", files=files, headers={"Accept": "application/json", "Origin": ORIGIN}
    )
    assert response.status_code == 202


def test_multipart_file_parts_are_refused(client):
    files = {"name": (None, "x"), "cv": ("cv.pdf", b"%PDF", "application/pdf")}
    response = client.post("/f/contact", files=files, headers=JSON)
    assert response.status_code == 400


def test_browser_refusal_redirects_to_error_url(client):
    response = post_form(client, "quote", email="nope")
    assert (response.status_code, response.headers["location"]) == (
        303,
        "https://www.example.com/devis",
    )


def test_browser_refusal_page_lists_problems(client):
    response = post_form(client, email="nope", expect=422)
    assert "Some fields need correcting" in response.text


def test_idempotency_key_replays_the_first_answer(client):
    headers = {**JSON, "Idempotency-Key": "abc-123"}
    first = client.post("/f/contact", json=VALID, headers=headers)
    second = client.post("/f/contact", json=VALID, headers=headers)
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"


@pytest.mark.parametrize(
    ("form", "origin", "status"),
    [("contact", ORIGIN, 204), ("contact", "https://evil.example", 403), ("nope", ORIGIN, 404)],
)
def test_preflight(client, form, origin, status):
    response = client.options(
        f"/f/{form}", headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
    )
    assert response.status_code == status


def test_unknown_form_pages(client):
    assert client.get("/f/nope/thanks").status_code == 404
    post_json(client, "nope", expect=404)
