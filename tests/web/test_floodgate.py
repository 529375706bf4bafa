"""relay.web.floodgate: a flood's JSON refusals answered before routing, exactly as the app would.

An Idempotency-Key sends a request past the gate to the full app (relay.web.submit), so each
case is asked twice, once each way, and the two answers must be the same.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from starlette.testclient import TestClient

from relay.app import create_app
from tests.defence_helpers import DEFENCE_FORMS_TOML, JSON_HEADERS, proof, real_clock, tamper
from tests.helpers import VALID, asgi_request


@pytest.fixture(name="guarded")
def fixture_guarded(forms_file: Path, settings_factory: Any) -> Iterator[TestClient]:
    forms_file.write_text(DEFENCE_FORMS_TOML, encoding="utf-8")
    app = create_app(settings_factory(), clock=real_clock())
    with TestClient(app, base_url="http://relay.test") as client:
        yield client


def _same_answer(client: TestClient, path: str, body: dict[str, Any], key: str) -> Any:
    """Post `body` through the gate, then past it; return the gate's answer once both agree."""
    gate = client.post(path, json=body, headers=JSON_HEADERS)
    full = client.post(path, json=body, headers={**JSON_HEADERS, "Idempotency-Key": key})
    assert (gate.status_code, _headers(gate)) == (full.status_code, _headers(full))
    assert _body(gate) == _body(full)
    return gate


def _headers(response: Any) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k != "content-length"}


def _body(response: Any) -> Any:
    data = response.json()
    data.pop("id", None)  # a fresh id each time
    return data


@pytest.mark.parametrize(
    ("path", "fields", "status", "code"),
    [
        ("/f/nope", {"_gotcha": "http://spam.example"}, 404, "FORM_NOT_FOUND"),
        ("/f/guarded", {"_gotcha": "http://spam.example"}, 202, None),
        ("/f/guarded", {"website_url": "http://spam.example"}, 202, None),
        ("/f/guarded", {}, 400, "PROOF_OF_WORK_REQUIRED"),
        ("/f/guarded", {"altcha": "not base64"}, 400, "PROOF_OF_WORK_MALFORMED"),
        ("/f/guarded", {"_language": "fr", "altcha": "bm9wZQ=="}, 400, "PROOF_OF_WORK_MALFORMED"),
    ],
)
def test_the_gate_answers_as_the_app_does(guarded, path, fields, status, code):
    """Unknown form, both honeypots and refused proofs: same status, headers and JSON both ways."""
    answer = _same_answer(guarded, path, {**VALID, **fields}, "k1")
    assert answer.status_code == status
    assert answer.headers["x-content-type-options"] == "nosniff"
    if code is None:
        assert answer.json()["ok"] is True
        assert answer.json()["next"] == "http://relay.test/f/guarded/thanks"
    else:
        assert answer.json()["errors"][0]["code"] == code


CAUGHT_BOTS_THANKS = [
    ({}, "relay.test", "http://relay.test/f/guarded/thanks"),
    ({}, "other.test", "http://other.test/f/guarded/thanks"),
    ({"_language": "fr"}, "relay.test", "http://relay.test/f/guarded/thanks?lang=fr"),
    ({"_language": "fr"}, "other.test", "http://other.test/f/guarded/thanks?lang=fr"),
    ({"_next": "https://www.example.com/merci"}, "relay.test", "https://www.example.com/merci"),
    ({"_next": "https://evil.example/"}, "relay.test", "http://relay.test/f/guarded/thanks"),
    ({}, "relay.test", "http://relay.test/f/guarded/thanks"),
]


def test_a_caught_bot_is_sent_where_a_person_would_be(guarded):
    """The success a caught bot gets names the thank-you URL a person's would, for each Host,
    `_language` and `_next` in turn on one app (the gate keeps what it built by form, Host,
    language and scheme), asked twice and past the gate: the form's `_next` if allowed."""
    for fields, host, thanks in CAUGHT_BOTS_THANKS:
        body = {**VALID, "_gotcha": "http://spam.example", **fields}
        headers = {**JSON_HEADERS, "Host": host}
        answers = [guarded.post("/f/guarded", json=body, headers=headers) for _ in range(2)]
        past = guarded.post("/f/guarded", json=body, headers={**headers, "Idempotency-Key": "k"})
        assert [a.json()["next"] for a in [*answers, past]] == [thanks] * 3, (fields, host)
        assert answers[0].json()["id"] != answers[1].json()["id"]


def test_a_made_up_solution_is_refused_by_the_gate_as_by_the_app(guarded):
    """A real challenge with a forged solution: 403 PROOF_OF_WORK_INVALID both ways."""

    def forge(decoded: dict[str, Any]) -> None:
        decoded["solution"]["derivedKey"] = "ab" * 32

    forged = tamper(proof(guarded), forge)
    answer = _same_answer(guarded, "/f/guarded", {**VALID, "altcha": forged}, "k2")
    assert answer.status_code == 403
    assert answer.json()["errors"][0]["code"] == "PROOF_OF_WORK_INVALID"
    assert answer.headers["access-control-allow-origin"] == "https://www.example.com"


def test_the_gate_hands_a_person_on_and_counts_the_client_once(settings_factory, clock):
    """With 2 submissions a minute per client, two valid ones are accepted and the third is
    429 with Retry-After, the same through the gate as past it."""
    app = create_app(settings_factory(rate_limit_client="2/minute"), clock=clock)
    with TestClient(app, base_url="http://relay.test") as client:
        accepted = [client.post("/f/contact", json=VALID, headers=JSON_HEADERS) for _ in "ab"]
        assert [r.status_code for r in accepted] == [202, 202]
        answer = _same_answer(client, "/f/contact", VALID, "k3")
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "60"  # two in this minute: it must end and fade
    assert answer.json()["errors"][0]["code"] == "RATE_LIMITED"


def test_a_host_the_gate_cannot_vouch_for_gets_the_apps_400(settings_factory, clock):
    """With RELAY_ALLOWED_HOSTS set, a foreign Host is refused (400) and a listed one with a
    port is answered."""
    app = create_app(settings_factory(allowed_hosts="relay.test"), clock=clock)
    with TestClient(app, base_url="http://relay.test") as client:
        body = {**VALID, "_gotcha": "x"}
        foreign = client.post(
            "/f/contact", json=body, headers={**JSON_HEADERS, "Host": "evil.test"}
        )
        listed = client.post(
            "/f/contact", json=body, headers={**JSON_HEADERS, "Host": "relay.test:8000"}
        )
    assert (foreign.status_code, foreign.text) == (400, "Invalid host header")
    assert listed.status_code == 202


def test_the_gate_cuts_off_a_trickling_body_with_408(settings_factory, clock):
    """A body with a Content-Length still arriving after the deadline gets 408 BODY_TIMEOUT,
    and the connection is closed rather than the rest read."""
    app = create_app(settings_factory(body_timeout_seconds=0.2), clock=clock)
    messages = iter([{"type": "http.request", "body": b'{"name": ', "more_body": True}])

    async def receive() -> dict[str, Any]:
        for message in messages:
            return message
        await anyio.sleep(5)  # the rest never comes in time
        return {"type": "http.request", "body": b"}", "more_body": False}

    with TestClient(app) as client:
        sent = asgi_request(client, receive, headers={"Content-Length": "12"})
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    assert json.loads(sent[1]["body"])["errors"][0]["code"] == "BODY_TIMEOUT"


def test_a_client_gone_at_the_gate_leaves_one_line_and_an_empty_400(client, caplog):
    """A disconnect mid-body is counted and logged once (form, status, code), answered 400."""
    messages: Iterator[dict[str, Any]] = iter(
        [
            {"type": "http.request", "body": b'{"name": "Jo', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> dict[str, Any]:
        return next(messages)

    caplog.set_level(logging.INFO, logger="relay")
    sent = asgi_request(client, receive, headers={"Content-Length": "40"})
    refusals = [r for r in caplog.records if r.getMessage() == "submission refused"]
    assert [(r.form, r.status, r.code) for r in refusals] == [
        ("contact", 400, "CLIENT_DISCONNECTED")
    ]
    assert (sent[0]["status"], sent[1]["body"]) == (400, b"")
    metric = b'relay_submissions_total{form="contact",outcome="client_disconnected"} 1.0'
    assert metric in client.get("/metrics").content


def test_an_exception_in_the_gate_is_answered_as_the_last_resort_answers(
    guarded, caplog, monkeypatch
):
    """A failure inside the gate's own path (here counting a caught bot) is one error line
    naming its class, never its message, and a plain 500 (relay.web.middleware.last_resort)."""
    from relay.web import submit

    def broken(*_args: Any) -> None:
        msg = "CANARY jeanne@example.fr"
        raise RuntimeError(msg)

    monkeypatch.setattr(submit, "dropped", broken)
    caplog.set_level(logging.INFO, logger="relay")
    answer = guarded.post("/f/guarded", json={**VALID, "_gotcha": "x"}, headers=JSON_HEADERS)
    assert (answer.status_code, answer.text) == (500, "Internal error.\n")
    [line] = [r for r in caplog.records if r.getMessage() == "unexpected error"]
    assert (line.error, line.endpoint, line.exc_info) == ("RuntimeError", "unknown", None)
    assert "CANARY" not in caplog.text


def test_an_exception_after_the_endpoint_answered_leaves_its_answer(client, caplog, monkeypatch):
    """A failure once the screened submission's answer has started (a background task) is
    logged, and no second answer is begun over the first: the 202 stands."""
    from starlette.background import BackgroundTask

    from relay.web import submit

    real = submit.submit

    async def then_fails(request: Any) -> Any:
        response = await real(request)

        def task() -> None:
            raise ValueError

        response.background = BackgroundTask(task)
        return response

    monkeypatch.setattr(submit, "submit", then_fails)
    caplog.set_level(logging.INFO, logger="relay")
    answer = client.post("/f/contact", json=VALID, headers=JSON_HEADERS)
    assert answer.status_code == 202
    [line] = [r for r in caplog.records if r.getMessage() == "unexpected error"]
    assert (line.error, line.endpoint) == ("ValueError", then_fails.__qualname__)
