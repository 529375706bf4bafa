"""MailgunTransport against respx: the exact request, and every answer Mailgun can give."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import httpx
import pytest
import respx

from relay.mail.mailgun import MailgunTransport, rate_limit_reset, redact, retry_after
from relay.mail.transport import (
    Accepted,
    CredentialsRejected,
    Failed,
    RenderedEmail,
    Retry,
    SendResult,
)

pytestmark = pytest.mark.anyio

KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"  # the reference's test vector, not a real key
URL = "https://api.eu.mailgun.net/v3/mg.example.com/messages"
NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
EMAIL = RenderedEmail(
    submission_id="0193-sub-id",
    form_id="contact",
    message_id="<0193-sub-id@mg.example.com>",
    sender="relay@mg.example.com",
    to=("sales@example.com", "boss@example.com"),
    reply_to="Jeanne Martin <jeanne.martin@example.fr>",
    subject="Contact - Martin - Jeanne Martin",
    text="Name: Jeanne Martin",
    html="<p>Jeanne Martin</p>",
)


@pytest.fixture(name="mailgun")
def fixture_mailgun():
    with respx.mock(assert_all_called=True, assert_all_mocked=True) as router:
        yield router


async def send(*, base_url: str = "https://api.eu.mailgun.net") -> SendResult:
    async with httpx.AsyncClient() as client:
        transport = MailgunTransport(
            client, api_key=KEY, domain="mg.example.com", base_url=base_url, clock=lambda: NOW
        )
        return await transport.send(EMAIL)


def fields_of(request: httpx.Request) -> list[tuple[str, str]]:
    """Parse the multipart body back into (name, value) pairs, in order."""
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    out = []
    for part in request.content.split(b"--" + boundary)[1:-1]:
        head, _, value = part.strip(b"\r\n").partition(b"\r\n\r\n")
        name = head.split(b'name="')[1].split(b'"')[0].decode()
        out.append((name, value.decode("utf-8")))
    return out


async def test_the_request_is_exactly_what_mailgun_needs(mailgun):
    """multipart/form-data, Basic api:KEY, our fields and options, the id as the only variable."""
    route = mailgun.post(URL).respond(200, json={"id": "<x@mg>", "message": "Queued. Thank you."})
    assert await send() == Accepted("<x@mg>")
    request = route.calls.last.request
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    expected_auth = "Basic " + base64.b64encode(f"api:{KEY}".encode()).decode()
    assert request.headers["authorization"] == expected_auth
    assert fields_of(request) == [
        ("from", "relay@mg.example.com"),
        ("to", "sales@example.com"),
        ("to", "boss@example.com"),
        ("subject", "Contact - Martin - Jeanne Martin"),
        ("text", "Name: Jeanne Martin"),
        ("html", "<p>Jeanne Martin</p>"),
        ("h:Reply-To", "Jeanne Martin <jeanne.martin@example.fr>"),
        ("h:Message-Id", "<0193-sub-id@mg.example.com>"),
        ("o:tracking", "no"),
        ("o:tracking-clicks", "no"),
        ("o:tracking-opens", "no"),
        ("o:require-tls", "yes"),
        ("v:submission_id", "0193-sub-id"),
        ("o:tag", "contact"),
    ]
    assert [name for name, _ in fields_of(request) if name.startswith("v:")] == ["v:submission_id"]


async def test_the_request_carries_what_the_client_would_have_added():
    """Built once per transport and sent with client.send: the client's own headers and its
    timeouts (what client.post would have merged in), through the client's transport."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "<x@mg>", "message": "Queued. Thank you."})

    timeout = httpx.Timeout(7.0, connect=2.0)
    mock = httpx.MockTransport(answer)
    async with httpx.AsyncClient(transport=mock, timeout=timeout) as client:
        transport = MailgunTransport(client, api_key=KEY, domain="mg.example.com")
        assert await transport.send(EMAIL) == Accepted("<x@mg>")
        [request] = seen
        assert str(request.url) == URL
        assert request.extensions["timeout"] == timeout.as_dict()
        for name, value in client.headers.items():
            assert request.headers[name] == value
        assert request.headers["content-length"] == str(len(request.content))


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        (
            429,
            {
                "message": "Domain example.com is not allowed to send: account-requests-per-sec "
                "limit exceeded, try again after 120 seconds"
            },
            {},
            Retry(
                120.0,
                429,
                "Mailgun rate limit (429: Domain example.com is not allowed to send: "
                "account-requests-per-sec limit exceeded, try again after 120 seconds)",
            ),
        ),
        (
            429,
            {"message": "slow down"},
            {"Retry-After": "7"},
            Retry(7.0, 429, "Mailgun rate limit (429: slow down)"),
        ),
        (
            429,
            {"message": "slow down"},
            {"Retry-After": "Wed, 25 Nov 2026 09:31:00 GMT"},
            Retry(60.0, 429, "Mailgun rate limit (429: slow down)"),
        ),
        (
            429,
            {"message": "slow down"},
            {"Retry-After": "soon"},
            Retry(None, 429, "Mailgun rate limit (429: slow down)"),
        ),
        (  # the reset moment in epoch milliseconds: 09:30:45.500
            429,
            {"message": "slow down"},
            {"X-RateLimit-Reset": str(int(NOW.timestamp() * 1000) + 45_500)},
            Retry(45.5, 429, "Mailgun rate limit (429: slow down)"),
        ),
        (  # the same header in epoch seconds, as mailgun-go (errors.go) reads it
            429,
            {"message": "slow down"},
            {"X-RateLimit-Reset": str(int(NOW.timestamp()) + 90)},
            Retry(90.0, 429, "Mailgun rate limit (429: slow down)"),
        ),
        (  # Retry-After wins over X-RateLimit-Reset
            429,
            {"message": "slow down"},
            {"Retry-After": "7", "X-RateLimit-Reset": str(int(NOW.timestamp() * 1000) + 60_000)},
            Retry(7.0, 429, "Mailgun rate limit (429: slow down)"),
        ),
        (  # an unreadable reset falls back to the message text
            429,
            {"message": "try again after 12 seconds"},
            {"X-RateLimit-Reset": "later"},
            Retry(12.0, 429, "Mailgun rate limit (429: try again after 12 seconds)"),
        ),
        (
            500,
            {"message": "Internal Server Error"},
            {},
            Retry(None, 500, "Mailgun server error (500: Internal Server Error)", ambiguous=True),
        ),
        (
            503,
            None,
            {"Retry-After": "30"},
            Retry(30.0, 503, "Mailgun server error (503: (no message))", ambiguous=True),
        ),
        (
            504,
            None,
            {},
            Retry(None, 504, "Mailgun server error (504: (no message))", ambiguous=True),
        ),
        (
            400,
            {"message": "from parameter is missing"},
            {},
            Failed(400, "Mailgun refused the message (400: from parameter is missing)"),
        ),
        (
            413,
            {"message": "request entity too large"},
            {},
            Failed(413, "Mailgun: message too large (413: request entity too large)"),
        ),
        (402, {"other": 1}, {}, Failed(402, "Mailgun refused the message (402: (no message))")),
    ],
)
async def test_outcomes(mailgun, status, body, headers, expected):
    """Each status maps to its SendResult, with Mailgun's reason and the wait it asked for."""
    mailgun.post(URL).respond(status, json=body, headers=headers)
    assert await send() == expected


@pytest.mark.parametrize("status", [401, 403])
async def test_credentials_faults_name_the_setting(mailgun, status):
    """401/403 are the key's fault, not the message's: CredentialsRejected, saying what to fix."""
    mailgun.post(URL).respond(status, text="Forbidden")
    result = await send()
    assert isinstance(result, CredentialsRejected)
    assert result.status == status
    assert "RELAY_MAILGUN_API_KEY" in result.error
    assert KEY not in result.error


async def test_domain_not_found_says_the_domain_is_probably_in_the_other_region(mailgun):
    """404 "Domain not found" (an EU domain asked on the US host, or the reverse)."""
    us = "https://api.mailgun.net/v3/mg.example.com/messages"
    mailgun.post(us).respond(404, json={"message": "Domain not found: mg.example.com"})
    result = await send(base_url="https://api.mailgun.net")
    assert isinstance(result, CredentialsRejected)
    assert "probably lives in the other region" in result.error
    assert "https://api.eu.mailgun.net" in result.error


async def test_a_404_without_json_is_a_wrong_url(mailgun):
    """A 404 page that is not Mailgun's JSON is a wrong RELAY_MAILGUN_BASE_URL, not a wrong
    region."""
    mailgun.post(URL).respond(404, text="404 page not found")
    result = await send()
    assert isinstance(result, CredentialsRejected)
    assert "check RELAY_MAILGUN_BASE_URL" in result.error
    assert "other region" not in result.error


@pytest.mark.parametrize("body", ["Mailgun Magnificent API", '{"message": "Queued"}'])
async def test_a_200_without_an_id_is_a_configuration_fault(mailgun, body):
    """The "Magnificent API" quirk: 200 at the wrong path; nothing was sent."""
    mailgun.post(URL).respond(200, text=body)
    result = await send()
    assert isinstance(result, CredentialsRejected)
    assert "without a message id" in result.error


@pytest.mark.parametrize(
    ("exc", "ambiguous", "text"),
    [
        (httpx.ConnectTimeout("t"), False, "cannot connect to Mailgun (ConnectTimeout)"),
        (httpx.ConnectError("refused"), False, "cannot connect to Mailgun (ConnectError)"),
        (httpx.PoolTimeout("p"), False, "cannot connect to Mailgun (PoolTimeout)"),
        (httpx.ReadTimeout("r"), True, "no answer from Mailgun in time (ReadTimeout)"),
        (httpx.WriteTimeout("w"), True, "no answer from Mailgun in time (WriteTimeout)"),
        (
            httpx.RemoteProtocolError("x"),
            True,
            "connection to Mailgun failed (RemoteProtocolError)",
        ),
        (httpx.ReadError("x"), True, "connection to Mailgun failed (ReadError)"),
    ],
)
async def test_network_errors_are_retried_and_say_whether_mailgun_may_have_it(
    mailgun, exc, ambiguous, text
):
    """Timeouts and connection errors → Retry; ambiguous when the request may have arrived.
    The translation keeps the class name only (httpx's request holds the message)."""
    mailgun.post(URL).mock(side_effect=exc)
    assert await send() == Retry(None, None, text, ambiguous=ambiguous)


async def test_an_unusable_base_url_is_a_configuration_fault():
    """A base URL without http(s) never reaches the network: configuration fault."""
    result = await send(base_url="ftp://api.eu.mailgun.net")
    assert isinstance(result, CredentialsRejected)
    assert "RELAY_MAILGUN_BASE_URL" in result.error


def test_addresses_echoed_by_mailgun_are_redacted():
    """A reason quoting an address keeps its meaning, not the address; it is bounded too."""
    assert redact("'jeanne@example.fr' parameter is not a valid address") == (
        "'<address>' parameter is not a valid address"
    )
    assert len(redact("x" * 1000)) == 300


def test_retry_after_without_any_hint_is_none():
    """No header and no text: the backoff decides; a moment already past means now."""
    response = httpx.Response(500, text="oops")
    assert retry_after(response, NOW) is None
    past = httpx.Response(503, headers={"Retry-After": "Wed, 25 Nov 2026 09:00:00 GMT"})
    assert retry_after(past, NOW) == 0.0
    reset_past = httpx.Response(429, headers={"X-RateLimit-Reset": "1700000000000"})
    assert retry_after(reset_past, NOW) == 0.0


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf", "1e400", ""])
def test_unusable_rate_limit_resets_are_ignored(value):
    """A reset that is not a moment (zero, negative, NaN, infinite, empty) asks for no wait."""
    assert rate_limit_reset(value, NOW) is None


def _subclasses(cls: type[Exception]) -> list[type[Exception]]:
    found: list[type[Exception]] = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


@pytest.mark.parametrize("exc_class", _subclasses(httpx.RequestError), ids=lambda c: c.__name__)
async def test_every_httpx_request_error_is_translated_without_its_payload(mailgun, exc_class):
    """The translation is complete: any request error becomes a result naming its class only."""
    mailgun.post(URL).mock(side_effect=exc_class("jeanne.martin@example.fr leaked"))
    result = await send()
    assert isinstance(result, Retry | CredentialsRejected)
    assert exc_class.__name__ in result.error
    assert "jeanne" not in result.error
