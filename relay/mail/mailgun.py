"""Mailgun's EU Messages API on one shared httpx.AsyncClient: every HTTP outcome → SendResult.

Why httpx and not Mailgun's SDK: the SDK retries POST /messages underneath us (duplicates the
delivery log cannot see), defaults to the US region and pulls a second HTTP stack. The outbox
owns retries; this module makes exactly one request per attempt.

Every quirk of Mailgun relay has learnt is a named branch below, with a comment and an error
text that says what to do. Errors carry statuses and Mailgun's reason only: httpx exceptions
are translated here, without their request (which holds the message), and any address Mailgun
echoes in a reason is redacted.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from relay.clock import Clock, utcnow
from relay.mail.events import SUBMISSION_VARIABLE
from relay.mail.headers import one_line, text_words
from relay.mail.transport import (
    Accepted,
    CredentialsRejected,
    Failed,
    RenderedEmail,
    Retry,
    SendResult,
)
from relay.metrics import Metrics

#: Mailgun's 429 says how long to wait in its message: "... try again after 120 seconds".
_TRY_AGAIN = re.compile(r"after\s+(\d+)\s+seconds?", re.IGNORECASE)
_ADDRESS = re.compile(r"[^\s<>\"',;:()]+@[^\s<>\"',;:()]+")
MAX_REASON = 300


def redact(reason: str) -> str:
    """Mailgun's reason, with anything shaped like an address removed, bounded in length."""
    text = _ADDRESS.sub("<address>", " ".join(reason.split()))
    return text[:MAX_REASON]


def _reason(response: httpx.Response) -> str:
    """The `message` of Mailgun's JSON error body, or a short note when there is none."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return redact(response.text) if response.text.strip() else "(no message)"
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return redact(body["message"])
    return "(no message)"


def rate_limit_reset(value: str, now: datetime) -> float | None:
    """Seconds until an `X-RateLimit-Reset` moment, or None if it is not one.

    Mailgun's rate-limited answers carry the reset as epoch *milliseconds*; mailgun-go
    (errors.go) reads the same header as epoch seconds. Both are accepted: a value from 10^11
    on is milliseconds (10^11 seconds is in the year 5138).
    """
    try:
        stamp = float(value.strip())
    except ValueError:
        return None
    if stamp != stamp or stamp <= 0:  # NaN or nonsense
        return None
    seconds = stamp / 1000 if stamp >= 1e11 else stamp
    try:
        when = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return max(0.0, (when - now).total_seconds())


def retry_after(response: httpx.Response, now: datetime) -> float | None:
    """The wait Mailgun asks for: a Retry-After header (seconds or HTTP-date), else an
    X-RateLimit-Reset moment (epoch ms or s), else the 429 message's "try again after N
    seconds", else None (the backoff policy decides)."""
    header = response.headers.get("retry-after")
    if header is not None:
        header = header.strip()
        if header.isascii() and header.isdigit():  # "²" and "١٢" are digits to str.isdigit
            return float(header)
        try:
            when = parsedate_to_datetime(header)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None and when.tzinfo is not None:
            return max(0.0, (when - now).total_seconds())
    reset = response.headers.get("x-ratelimit-reset")
    if reset is not None:
        wait = rate_limit_reset(reset, now)
        if wait is not None:
            return wait
    if response.status_code == 429:
        match = _TRY_AGAIN.search(_reason(response))
        if match:
            return float(match.group(1))
    return None


def form_fields(email: RenderedEmail, *, tag: bool = True) -> list[tuple[str, str]]:
    """The request fields, exactly: nothing personal outside from/to/subject/text/html/Reply-To."""
    # Header values are relay's own 7-bit encoding (relay.mail.headers), so Mailgun has
    # nothing to encode or decode: an encoded-word typed by a person stays literal text.
    fields = [("from", email.sender)]
    fields += [("to", address) for address in email.to]
    fields += [
        ("subject", one_line(text_words(email.subject))),
        ("text", email.text),
        ("h:Reply-To", email.reply_to),
        ("h:Message-Id", email.message_id),
        # Tracking off: opens record the reader's IP and location; clicks rewrite links.
        ("o:tracking", "no"),
        ("o:tracking-clicks", "no"),
        ("o:tracking-opens", "no"),
        # Deliver over TLS or not at all (Mailgun's default falls back to plaintext).
        ("o:require-tls", "yes"),
        # Custom variables are visible to recipients (X-Mailgun-Variables): the id only.
        (f"v:{SUBMISSION_VARIABLE}", email.submission_id),
    ]
    if email.html is not None:  # issue 10: _format=plain sends text only
        fields.insert(fields.index(("text", email.text)) + 1, ("html", email.html))
    if tag:
        fields.append(("o:tag", email.form_id))
    return fields


def multipart(fields: list[tuple[str, str]], boundary: str) -> bytes:
    """multipart/form-data as httpx lays it out for `files=[(name, (None, bytes))]`, built in
    one join (httpx's encoder cost a fifth of a send). `boundary` is 32 random hex digits,
    as httpx's: a value holding it by chance is not a concern."""
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="'
    parts = [
        f'{head}{name}"\r\n\r\n'.encode("ascii") + value.encode("utf-8") + b"\r\n"
        for name, value in fields
    ]
    parts.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(parts)


class MailgunTransport:
    """POST {base}/v3/{domain}/messages as multipart/form-data with HTTP Basic api:KEY."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        api_key: str,
        domain: str,
        base_url: str = "https://api.eu.mailgun.net",
        clock: Clock = utcnow,
        metrics: Metrics | None = None,
    ) -> None:
        self._client = client
        token = base64.b64encode(f"api:{api_key}".encode()).decode("ascii")
        self._authorization = f"Basic {token}"  # what httpx.BasicAuth sends, computed once
        self.domain = domain
        self.url = f"{base_url.rstrip('/')}/v3/{domain}/messages"
        # What client.post would work out on every send, worked out once (~30 µs a message):
        # the URL, the client's default headers and its timeouts; the request is then sent
        # as it is with client.send (the client's transport, event hooks and cookies as ever).
        self._request_url = httpx.URL(self.url)
        self._default_headers = dict(client.headers)
        self._extensions = {"timeout": client.timeout.as_dict()}
        self._clock = clock
        self._metrics = metrics

    async def send(self, email: RenderedEmail) -> SendResult:
        """One request, one result; never raises for anything the network or Mailgun does."""
        boundary = secrets.token_hex(16)
        body = multipart(form_fields(email), boundary)
        headers = {
            **self._default_headers,
            "authorization": self._authorization,
            "content-type": f"multipart/form-data; boundary={boundary}",
        }
        request = httpx.Request(
            "POST", self._request_url, content=body, headers=headers, extensions=self._extensions
        )
        started = time.perf_counter()
        try:
            response = await self._client.send(request)
        except httpx.HTTPError as exc:
            result = self._network_error(exc)
        else:
            result = self._outcome(response)
        if self._metrics is not None:
            outcome = type(result).__name__.lower()
            self._metrics.mailgun_request_seconds.labels("send", outcome).observe(
                time.perf_counter() - started
            )
        return result

    def _network_error(self, exc: httpx.HTTPError) -> SendResult:
        """Translate httpx's exception by class only: its request holds the message."""
        name = type(exc).__name__
        if isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError | httpx.PoolTimeout):
            # The request never left: resending cannot duplicate.
            return Retry(None, None, f"cannot connect to Mailgun ({name})", ambiguous=False)
        if isinstance(exc, httpx.TimeoutException):
            # Read/write timeout: Mailgun may have queued the message before we gave up.
            return Retry(None, None, f"no answer from Mailgun in time ({name})", ambiguous=True)
        if isinstance(exc, httpx.UnsupportedProtocol):
            return CredentialsRejected(None, f"RELAY_MAILGUN_BASE_URL is not a usable URL ({name})")
        # A dropped connection or protocol error mid-exchange: outcome unknown.
        return Retry(None, None, f"connection to Mailgun failed ({name})", ambiguous=True)

    def _outcome(self, response: httpx.Response) -> SendResult:
        status = response.status_code
        if status == 200:
            return self._accepted(response)
        if status in (401, 403):
            # Credentials, not the message: a wrong, revoked or read-only key. Keep it queued.
            return CredentialsRejected(
                status,
                f"Mailgun refused the API key ({status}: {_reason(response)}); check "
                "RELAY_MAILGUN_API_KEY (a sending key for RELAY_MAILGUN_DOMAIN)",
            )
        if status == 404:
            return self._not_found(response)
        if status == 429:
            # Rate limited: the wait is in Retry-After or in the message text.
            return Retry(
                retry_after(response, self._clock()),
                status,
                f"Mailgun rate limit (429: {_reason(response)})",
            )
        if status >= 500:
            # Mailgun's side. Users report 5xx answers for messages that did go out (a 504
            # comes from a gateway that may have passed the request on): every 5xx is
            # ambiguous, so the next attempt asks the logs first when a read key is set.
            return Retry(
                retry_after(response, self._clock()),
                status,
                f"Mailgun server error ({status}: {_reason(response)})",
                ambiguous=True,
            )
        if status == 413:
            return Failed(status, f"Mailgun: message too large (413: {_reason(response)})")
        # 400 and every other 4xx: this message, as built, will never be accepted.
        return Failed(status, f"Mailgun refused the message ({status}: {_reason(response)})")

    def _accepted(self, response: httpx.Response) -> SendResult:
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if isinstance(body, dict) and isinstance(body.get("id"), str) and body["id"]:
            return Accepted(body["id"].strip())
        # The "Magnificent API" quirk: Mailgun answers 200 "Mailgun Magnificent API" at its
        # root, so a base URL with a wrong path looks like success. Nothing was sent.
        return CredentialsRejected(
            200,
            "Mailgun answered 200 without a message id (is RELAY_MAILGUN_BASE_URL the API host, "
            "e.g. https://api.eu.mailgun.net, without a path?)",
        )

    def _not_found(self, response: httpx.Response) -> SendResult:
        reason = _reason(response)
        if reason.lower().startswith("domain not found"):
            # EU domains exist only on api.eu.mailgun.net, US ones only on api.mailgun.net:
            # this 404 almost always means the base URL is the other region's.
            return CredentialsRejected(
                404,
                f"Mailgun: domain {self.domain!r} not found at {self.url.split('/v3/')[0]}; it "
                "probably lives in the other region (EU: https://api.eu.mailgun.net, US: "
                "https://api.mailgun.net): check RELAY_MAILGUN_BASE_URL and RELAY_MAILGUN_DOMAIN",
            )
        # A non-JSON 404 is a wrong URL, not a missing domain.
        return CredentialsRejected(
            404, f"Mailgun: 404 at {self.url} ({reason}); check RELAY_MAILGUN_BASE_URL"
        )
