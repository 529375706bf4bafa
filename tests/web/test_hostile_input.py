"""The hostile-input corpus of issue 9: each input that once got a 5xx, a header or a false
answer, replayed through the real app."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from starlette.testclient import TestClient

from relay.app import create_app
from tests.admin_helpers import USERS, Admin
from tests.helpers import ORIGIN, VALID, asgi_request, post_json

JSON = {"Accept": "application/json", "Origin": ORIGIN}
KEY = "hostile-webhook-key"


@pytest.mark.parametrize(
    "wanted",
    [
        "https://[www.example.com/merci",  # an unclosed IPv6 bracket
        "https://www.example.com\uff03@evil.example/",  # full-width #: NFKC makes a delimiter
        "https://www.example.com\uff0f@evil.example/",
        "https://www.example.com:99999/",
        "https://www.example.com/\ud800",  # a lone surrogate
        "https://www.example.com\\@evil.example/",
    ],
)
def test_a_malformed_next_is_ignored_whole_never_a_5xx(client, wanted):
    """A malformed `_next` is refused whole: the answer is 202 towards relay's thank-you page."""
    body = json.dumps({**VALID, "_next": wanted})  # ASCII, lone surrogates as \ud800 escapes
    response = client.post(
        "/f/contact", content=body, headers={**JSON, "Content-Type": "application/json"}
    )
    assert response.status_code == 202
    assert response.json()["next"] == "http://relay.test/f/contact/thanks"


@pytest.mark.parametrize("referer", ["https://[::1", "https://www.example.com\uff03x", "%"])
def test_a_malformed_referer_gets_the_error_page_with_the_sites_link(client, referer):
    """The error page's "back" link ignores a malformed Referer and falls back to the site."""
    response = client.post(
        "/f/contact",
        data={"name": "Jo"},
        headers={"Origin": ORIGIN.encode(), "Referer": referer.encode("utf-8")},
        follow_redirects=False,
    )
    assert response.status_code == 422
    assert 'href="https://www.example.com/"' in response.text


def test_a_multipart_boundary_over_256_characters_is_a_400(client):
    """python-multipart's boundary limit is a clear MALFORMED_BODY, not an exception."""
    boundary = "b" * 300
    part = 'Content-Disposition: form-data; name="name"\r\n\r\nJo'
    body = f"--{boundary}\r\n{part}\r\n--{boundary}--\r\n"
    response = client.post(
        "/f/contact",
        content=body.encode(),
        headers={**JSON, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "MALFORMED_BODY"
    assert "boundary" in response.json()["error"]


def _multipart(*parts: str) -> tuple[bytes, dict[str, str]]:
    body = "".join(f"--b\r\n{part}\r\n" for part in parts) + "--b--\r\n"
    return body.encode(), {**JSON, "Content-Type": "multipart/form-data; boundary=b"}


def _field(name: str, value: str) -> str:
    return f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}'


def test_a_filename_star_part_is_a_file_and_refused(client):
    """`filename*=` (RFC 6266) declares a file as much as `filename=` does."""
    body, headers = _multipart(
        *(_field(k, v) for k, v in VALID.items()),
        "Content-Disposition: form-data; name=\"cv\"; filename*=UTF-8''cv.pdf\r\n\r\n%PDF",
    )
    response = client.post("/f/contact", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "NO_FILE_UPLOADS"


def test_an_empty_optional_file_input_is_ignored(client):
    """A file input left empty (filename "" and no content, as browsers send it) is no file."""
    body, headers = _multipart(
        *(_field(k, v) for k, v in VALID.items()),
        'Content-Disposition: form-data; name="cv"; filename=""\r\n'
        "Content-Type: application/octet-stream\r\n\r\n",
    )
    response = client.post("/f/contact", content=body, headers=headers)
    assert response.status_code == 202


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "=?utf-8?q?x=0D=0ABcc:_victim@example.com?=@example.com"),
        ("email", "jö@example.fr"),
    ],
)
def test_an_address_that_cannot_be_a_header_is_refused_at_accept(client, field, value):
    """An address no 7-bit Reply-To can carry is a 422, never a 202 that then dies."""
    response = post_json(client, **{field: value}, expect=422)
    assert response.json()["errors"] == [
        {"field": "email", "code": "TYPE_EMAIL", "message": "This is not a valid email address."}
    ]


@pytest.mark.parametrize(
    "field", ["name", "company", "phone", "message"], ids=lambda f: f"encoded-word in {f}"
)
def test_an_encoded_line_break_in_a_text_field_is_accepted_as_text(client, field):
    """Encoded-words are literal text: accepted (the header property test shows they stay so)."""
    changed: dict[str, Any] = {field: "=?utf-8?q?=0D=0ABcc:_v@x.fr?="}
    post_json(client, **changed)


@pytest.fixture(name="hooks")
def fixture_hooks(settings_factory, clock):
    app = create_app(settings_factory(mailgun_webhook_signing_key=KEY), clock=clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _signed(timestamp: Any, data: Any) -> dict[str, Any]:
    text = str(timestamp)
    digest = hmac.new(KEY.encode(), (text + "tok-1").encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": timestamp, "token": "tok-1", "signature": digest},
        "event-data": data,
    }


def test_deeply_nested_json_to_the_webhook_is_refused(hooks):
    """2,000 nested arrays are a malformed body (406), not a RecursionError."""
    response = hooks.post("/webhooks/mailgun", content=b"[" * 2000 + b"]" * 2000)
    assert response.status_code == 406
    assert response.json() == {"ok": False, "error": "malformed"}


@pytest.mark.parametrize(
    "body",
    [
        _signed(10**30, {"id": "e", "event": "delivered", "timestamp": 1}),
        _signed("-" + "9" * 40, {"id": "e", "event": "delivered", "timestamp": 1}),
        _signed(1_795_685_400, {"id": "e", "event": "delivered", "timestamp": 1e300}),
        _signed(1_795_685_400, {"id": "e", "event": "delivered", "timestamp": -1e20}),
    ],
    ids=["signature timestamp 1e30", "40 digits", "event timestamp 1e300", "event -1e20"],
)
def test_out_of_range_webhook_timestamps_are_refused(hooks, body):
    """Signed events with timestamps no datetime can hold are refused (406), never a 500."""
    response = hooks.post("/webhooks/mailgun", json=body)
    assert response.status_code == 406


def test_an_out_of_range_admin_filter_is_a_message_on_the_page(settings_factory, clock):
    """A span reaching before year 1, or a date no datetime can compare, is named on a 400 page
    with what to try instead, never a 5xx."""
    app = create_app(settings_factory(admin_users=USERS), clock=clock)
    with TestClient(app, base_url="http://localhost") as client:
        admin = Admin(client)
        admin.login("vera")
        for since, problem in (
            ("999999w", "reaches further back than dates go; try a shorter span such as 52w"),
            ("0001-01-01T00:00:00+23:59", "is outside the dates relay can compare"),
        ):
            page = admin.get("/admin/deliveries", params={"since": since})
            assert page.status_code == 400  # the page, with the problem named on it
            assert f"&#39;{since}&#39; {problem}" in page.text


def test_a_client_gone_mid_body_leaves_one_line_and_no_traceback(client, caplog):
    """A disconnect mid-body is logged once (form, status, code) with no traceback."""
    messages: Iterator[dict[str, Any]] = iter(
        [
            {"type": "http.request", "body": b'{"name": "Jo', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> dict[str, Any]:
        return next(messages)

    caplog.set_level(logging.INFO, logger="relay")
    asgi_request(client, receive)
    refusals = [r for r in caplog.records if r.getMessage() == "submission refused"]
    assert [(r.form, r.status, r.code) for r in refusals] == [
        ("contact", 400, "CLIENT_DISCONNECTED")
    ]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_every_submit_refusal_logs_one_line_without_personal_data(client, caplog):
    """A 403, a 422 and a 404 each write one line with form, status and code, and no value."""
    caplog.set_level(logging.INFO, logger="relay")
    client.post("/f/contact", json=VALID, headers={**JSON, "Origin": "https://evil.example"})
    post_json(client, email="not-an-address", expect=422)
    client.post("/f/nope", json=VALID, headers=JSON)
    refusals = [r for r in caplog.records if r.getMessage() == "submission refused"]
    assert [(r.form, r.status, r.code) for r in refusals] == [
        ("contact", 403, "ORIGIN_NOT_ALLOWED"),
        ("contact", 422, "INVALID_FIELDS"),
        ("unknown", 404, "FORM_NOT_FOUND"),
    ]
    text = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for value in (*VALID.values(), "not-an-address", "evil.example", "nope"):
        assert value not in text


def test_encoded_line_breaks_in_every_field_never_reach_the_eml_headers(settings_factory, clock):
    """Through the real accept and dispatch: company, phone and name holding encoded CR LF make
    an .eml with exactly the usual headers, 7-bit, one Reply-To, and the body intact."""
    import email
    from email import policy

    from tests.deliveries_helpers import drained

    settings = settings_factory(dispatch_in_serve=True)
    injection = "=?utf-8?q?=0D=0ABcc:_v@x.fr?="
    fields: dict[str, Any] = {
        "name": f"Jo {injection}",
        "company": "=?utf-8?q?=0D=0AContent-Type:_text/html=0D=0A=0D=0A<b>x</b>?=",
        "phone": injection,
    }
    with TestClient(create_app(settings, clock=clock), base_url="http://relay.test") as client:
        sid = post_json(client, **fields).json()["id"]
        drained(client)
    data = (settings.var_dir / "mail" / f"{sid}.eml").read_bytes()
    assert data.split(b"\r\n\r\n", 1)[0].isascii()
    message = email.message_from_bytes(data, policy=policy.default)
    assert sorted(k.lower() for k in message) == sorted(
        [
            "from",
            "to",
            "reply-to",
            "subject",
            "message-id",
            "date",
            "x-relay-submission-id",
            "mime-version",
            "content-type",
        ]
    )
    assert [a.addr_spec for a in message["Reply-To"].addresses] == [VALID["email"]]
    assert injection in str(message["Subject"])
    plain = message.get_body(("plain",))
    assert plain is not None
    assert VALID["message"].split("\n")[0] in plain.get_content()


def test_the_last_resort_logs_the_class_only_and_answers_plainly(caplog):
    """An exception escaping a route is one error line (class, endpoint), no traceback, no
    message (it could hold submitted data), and a plain 500 without the text."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Route

    from relay.web.middleware import LastResort

    async def broken(_request: Any) -> Any:
        msg = "CANARY-SECRET jeanne@example.fr"
        raise RuntimeError(msg)

    app = Starlette(routes=[Route("/x", broken)], middleware=[Middleware(LastResort)])
    caplog.set_level(logging.INFO)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/x")
    assert response.status_code == 500
    assert "CANARY" not in response.text
    [record] = [r for r in caplog.records if r.name == "relay.web"]
    assert (record.getMessage(), record.error, record.endpoint) == (
        "unexpected error",
        "RuntimeError",
        "test_the_last_resort_logs_the_class_only_and_answers_plainly.<locals>.broken",
    )
    assert record.exc_info is None
    assert "CANARY" not in caplog.text


def test_a_trickled_webhook_body_is_cut_off_too(settings_factory, clock):
    """The body deadline is shared: the webhook endpoint answers 408 as well, and closes the
    connection rather than read the rest."""
    app = create_app(
        settings_factory(body_timeout_seconds=0.2, mailgun_webhook_signing_key=KEY), clock=clock
    )
    state = {"sent": False}

    async def receive() -> dict[str, Any]:
        if not state["sent"]:
            state["sent"] = True
            return {"type": "http.request", "body": b"{", "more_body": True}
        await anyio.sleep(5)
        return {"type": "http.request", "body": b"}", "more_body": False}

    with TestClient(app) as client:
        sent = asgi_request(client, receive, path="/webhooks/mailgun")
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]


def test_a_refused_preflight_logs_one_line_too(client, caplog):
    """A CORS preflight from a foreign origin is as visible to the operator as a refused post."""
    caplog.set_level(logging.INFO, logger="relay")
    headers = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    assert client.options("/f/contact", headers=headers).status_code == 403
    [record] = [r for r in caplog.records if r.getMessage() == "preflight refused"]
    assert (record.form, record.status) == ("contact", 403)
    assert "evil" not in caplog.text
