"""Fuzz every public endpoint of /openapi.json (and the admin filters): no 5xx, no traceback.

Hypothesis drives the real app through TestClient: for each operation the OpenAPI document
lists, it builds requests from hostile path parameters, queries, headers (Origin, Referer,
Content-Type with odd boundaries, Idempotency-Key) and bodies (each declared media type, deep
JSON, broken multipart, signed webhooks with out-of-range timestamps, raw bytes). Every answer
must be below 500 and no log record may be an error or carry a traceback. Over 10,000
requests run in all (FUZZ_TOTAL), in a minute or two.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from relay.app import create_app
from relay.web.openapi import document
from relay.web.routes import routes
from tests.admin_helpers import USERS, Admin
from tests.strategies import ENCODED_INJECTIONS, json_values, submissions

FUZZ_TOTAL = 10_000
WEBHOOK_KEY = "fuzz-webhook-signing-key"
OPERATIONS = sorted((path, method) for path, item in document()["paths"].items() for method in item)
PER_OPERATION = math.ceil(FUZZ_TOTAL / len(OPERATIONS))

HOSTILE_URLS = [
    "https://www.example.com/merci",
    "https://[::1",
    "https://[www.example.com/",
    "https://www.example.com\uff03@evil.example/",  # full-width # normalises to a delimiter
    "https://www.example.com\uff0fevil",
    "https://www.example.com:99999/",
    "https://www.example.com:-1/",
    "https://www.example.com\\@evil.example/",
    "https://user:pw@www.example.com/",
    "https://www.example.com/\ud800",  # a lone surrogate
    "javascript:alert(1)",
    "//evil.example/",
    "https:///",
    "http://\x00/",
    "https://www.example.com/\r\nSet-Cookie: x=1",
    "",
]
_latin1 = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=80,
)


def _is_latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return "\r" not in text and "\n" not in text and "\x00" not in text


header_values = st.one_of(_latin1, st.sampled_from([u for u in HOSTILE_URLS if _is_latin1(u)]))
form_ids = st.one_of(st.sampled_from(["contact", "quote"]), st.text(max_size=20))
fields = st.one_of(
    submissions,
    st.fixed_dictionaries(
        {
            "name": st.sampled_from(["Jeanne", *ENCODED_INJECTIONS]),
            "email": st.sampled_from(
                ["jeanne@example.fr", "x=?utf-8?q?=0D=0A?=@example.com", "jö@example.fr"]
            ),
            "message": st.just("Bonjour"),
        },
        optional={
            "_next": st.one_of(st.sampled_from(HOSTILE_URLS), st.text(max_size=30)),
            "company": st.sampled_from(ENCODED_INJECTIONS),
            "newsletter": json_values,
        },
    ),
)


def _multipart(parts: list[tuple[str, str, str]], boundary: str) -> bytes:
    chunks = []
    for name, disposition_extra, value in parts:
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"{disposition_extra}'
            f"\r\n\r\n{value}\r\n"
        )
    return ("".join(chunks) + f"--{boundary}--\r\n").encode("utf-8", "surrogatepass")


boundaries = st.one_of(
    st.just("b0undary"),
    st.integers(min_value=60, max_value=400).map(lambda n: "b" * n),
    st.text(alphabet="abcXYZ019'()+_,-./:=? ", min_size=1, max_size=80),
)
multipart_bodies = st.builds(
    lambda parts, boundary, declared: (
        _multipart(parts, boundary),
        f"multipart/form-data; boundary={declared or boundary}",
    ),
    st.lists(
        st.tuples(
            st.sampled_from(["name", "email", "message", "file", "_next", ""]),
            st.sampled_from(
                ["", '; filename=""', '; filename="a.txt"', "; filename*=UTF-8''a.txt", "; x"]
            ),
            st.text(max_size=30),
        ),
        max_size=5,
    ),
    boundaries,
    st.one_of(st.just(""), boundaries),
)


def _deep(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


raw_bodies = st.one_of(
    st.binary(max_size=300),
    st.integers(min_value=500, max_value=5000).map(_deep),
    st.just(b'{"a": ' * 3000),
)


def _sign(timestamp: Any, token: str) -> dict[str, Any]:
    text = str(timestamp)
    digest = hmac.new(WEBHOOK_KEY.encode(), (text + token).encode(), hashlib.sha256).hexdigest()
    return {"timestamp": timestamp, "token": token, "signature": digest}


webhook_bodies = st.builds(
    lambda timestamp, token, data: json.dumps(
        {"signature": _sign(timestamp, token), "event-data": data}
    ).encode(),
    st.one_of(
        st.integers(min_value=-(10**30), max_value=10**30),
        st.just(1_795_685_400),  # the fixed test clock: a fresh timestamp
        st.text(alphabet="0123456789-e.", max_size=40),
    ),
    st.text(min_size=1, max_size=60),
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {
                "id": st.text(max_size=10),
                "event": st.sampled_from(["delivered", "failed", "accepted", "opened", "x"]),
                "timestamp": st.one_of(
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.integers(min_value=-(10**30), max_value=10**30),
                ),
            },
            optional={
                "message": st.fixed_dictionaries(
                    {"headers": st.dictionaries(st.text(max_size=12), json_values, max_size=3)}
                ),
                "user-variables": json_values,
                "severity": json_values,
                "delivery-status": json_values,
                "@timestamp": st.text(max_size=30),
            },
        ),
    ),
)


@st.composite
def requests(draw: st.DrawFn, path: str, method: str) -> dict[str, Any]:
    """One request for the operation: URL, headers and body."""
    url = (
        path.replace("{form_id}", quote(draw(form_ids), safe=""))
        .replace("{project}", quote(draw(st.text(max_size=12)), safe=""))
        .replace("{rest}", quote(draw(st.text(max_size=40)), safe="/"))
        .replace("{name}", quote(draw(st.sampled_from(["altcha.js", "x"]) | st.text()), safe=""))
    )
    query = draw(st.lists(st.tuples(st.text(max_size=10), st.text(max_size=40)), max_size=3))
    if draw(st.booleans()):
        query.append(("token", draw(st.text(max_size=200))))
    if query:
        url += "?" + urlencode(query)
    headers = {
        name: draw(header_values)
        for name in draw(
            st.sets(st.sampled_from(["origin", "referer", "idempotency-key", "formspree-client"]))
        )
    }
    headers["accept"] = draw(st.sampled_from(["application/json", "text/html", "*/*", ""]))
    if draw(st.booleans()):
        headers["origin"] = "https://www.example.com"
    body = b""
    if method in ("post", "put", "patch"):
        kind = draw(st.sampled_from(["json", "urlencoded", "multipart", "raw", "webhook"]))
        if kind == "json":
            body = json.dumps(draw(fields), ensure_ascii=False).encode("utf-8", "surrogatepass")
            headers["content-type"] = "application/json"
        elif kind == "urlencoded":
            pairs = {str(k): str(v) for k, v in draw(fields).items()}
            body = urlencode(pairs, encoding="utf-8", errors="surrogatepass").encode()
            headers["content-type"] = "application/x-www-form-urlencoded"
        elif kind == "multipart":
            body, headers["content-type"] = draw(multipart_bodies)
        elif kind == "webhook":
            body = draw(webhook_bodies)
            headers["content-type"] = "application/json"
        else:
            body = draw(raw_bodies)
            headers["content-type"] = draw(header_values)
        if draw(st.integers(min_value=0, max_value=9)) == 0:
            headers["content-length"] = draw(st.sampled_from(["-1", "x", "99999999999", "0"]))
    raw_headers = {name: value.encode("latin-1") for name, value in headers.items()}
    return {"method": method.upper(), "url": url, "headers": raw_headers, "content": body}


class ErrorRecords(logging.Handler):
    """Collects every log record that is an error or carries a traceback."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.bad: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info or record.exc_text:
            self.bad.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture(name="errors")
def fixture_errors() -> Iterator[ErrorRecords]:
    handler = ErrorRecords()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


@pytest.fixture(name="fuzz_client")
def fixture_fuzz_client(settings_factory: Any, clock: Any) -> Iterator[TestClient]:
    app = create_app(
        settings_factory(
            rate_limit_client="1000000/minute",
            rate_limit_form="1000000/minute",
            mailgun_webhook_signing_key=WEBHOOK_KEY,
            admin_users=USERS,
            dispatch_in_serve=False,
        ),
        clock=clock,
    )
    with TestClient(app, base_url="https://relay.test", raise_server_exceptions=False) as client:
        yield client


def test_every_public_route_is_in_the_openapi_document(client):
    """GET /openapi.json lists every route outside /admin, with each of its methods."""
    served = client.get("/openapi.json").json()
    assert served == document()
    public = {
        (route.path.replace(":path}", "}"), method.lower())
        for route in routes()
        if not route.path.startswith("/admin")
        for method in (route.methods or ())
        if method != "HEAD"
    }
    assert public == set(OPERATIONS)


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_no_generated_request_gets_a_5xx_or_a_traceback(fuzz_client, errors, path, method):
    """Hostile requests to every operation of the OpenAPI document answer below 500 and log
    no error and no traceback."""
    sent = 0

    @settings(
        max_examples=PER_OPERATION,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=requests(path, method))
    def run(request: dict[str, Any]) -> None:
        nonlocal sent
        errors.bad.clear()
        response = fuzz_client.request(follow_redirects=False, **request)
        sent += 1
        assert response.status_code < 500, (request["method"], request["url"], response.text)
        assert not errors.bad, errors.bad

    run()
    assert sent >= PER_OPERATION


ADMIN_QUERIES = st.fixed_dictionaries(
    {},
    optional={
        "state": st.one_of(st.sampled_from(["queued", "dead", ""]), st.text(max_size=10)),
        "form": st.one_of(st.sampled_from(["contact", ""]), st.text(max_size=10)),
        "since": st.one_of(
            st.from_regex(r"[0-9]{1,7}[mhdwy]?", fullmatch=True),
            st.sampled_from(["999999w", "9999-12-31", "0001-01-01T00:00:00+23:59", "24h"]),
            st.text(max_size=30),
        ),
        "notice": st.text(max_size=30),
        "next": st.sampled_from(HOSTILE_URLS),
    },
)


def test_admin_filters_never_answer_5xx(fuzz_client, errors):
    """Logged in, any filter values on the delivery log answer a page, never a 5xx."""
    admin = Admin(fuzz_client)
    admin.login("vera")

    @settings(max_examples=300, database=None, deadline=None)
    @given(query=ADMIN_QUERIES)
    def run(query: dict[str, str]) -> None:
        errors.bad.clear()
        for page in ("/admin/deliveries", "/admin/login", "/admin"):
            response = admin.get(page + "?" + urlencode(query, errors="surrogatepass"))
            assert response.status_code < 500
        assert not errors.bad, errors.bad

    run()
