"""ASGI middleware around every route: security headers on HTML pages, and a last resort.

Security headers: every HTML answer (public pages and /admin) gets a Content-Security-Policy
that allows no script at all (the example page at `/`: relay's own script file, never inline)
and only relay's own inline styles (by hash), plus
X-Content-Type-Options, X-Frame-Options / frame-ancestors and Referrer-Policy. Set here, once,
so a page added later cannot forget them. HSTS is the proxy's job (deploy/Caddyfile): relay
may run behind plain HTTP on localhost.

Body deadline: every request body must arrive within RELAY_BODY_TIMEOUT_SECONDS (408), and a
client that disconnects mid-body is one log line, not a traceback (the exception handlers below).

Last resort: the parsers answer every bad input themselves (a 4xx with a reason). Should an
exception still escape a route, this logs one line with its class and the endpoint's name
(no message, no traceback, no URL: any of them could carry submitted data) and answers a plain
500. It is a safety net, not the fix; the fuzz suite fails on its log line.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Iterable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relay.web.deadlines import ReadDeadlines

log = logging.getLogger("relay.web")

_STYLE = re.compile(r"<style>(.*?)</style>", re.DOTALL)


def style_hashes(templates_dir: Path) -> list[str]:
    """CSP sources for the inline <style> blocks of relay's own page templates."""
    hashes = set()
    for path in sorted((templates_dir / "pages").rglob("*.html")):
        for block in _STYLE.findall(path.read_text(encoding="utf-8")):
            digest = hashlib.sha256(block.encode("utf-8")).digest()
            hashes.add(f"'sha256-{base64.b64encode(digest).decode('ascii')}'")
    return sorted(hashes)


#: A page that runs relay's own script file (the example page) says so with this header,
#: which the middleware replaces by a CSP allowing scripts and fetches from relay itself only.
OWN_SCRIPTS = b"x-relay-own-scripts"


def page_headers(
    styles: Iterable[str], *, own_scripts: bool = False, referrer: bytes = b"no-referrer"
) -> list[tuple[bytes, bytes]]:
    """The headers every HTML answer carries (`own_scripts`: `script-src 'self'`, never inline)."""
    csp = "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'" if own_scripts else "script-src 'none'",
            *(["connect-src 'self'", "worker-src 'self'"] if own_scripts else []),
            "style-src " + (" ".join([*(["'self'"] if own_scripts else []), *styles]) or "'none'"),
            "img-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )
    return [
        (b"content-security-policy", csp.encode("ascii")),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", referrer),
    ]


class SecurityHeaders:
    """Adds `page_headers` to every text/html answer, and nosniff to every answer."""

    def __init__(self, app: ASGIApp, *, styles: Iterable[str]) -> None:
        self.app = app
        styles = list(styles)
        self._page = page_headers(styles)
        self._scripted = page_headers(styles, own_scripts=True, referrer=b"same-origin")
        self._names = {name for name, _ in self._page} | {OWN_SCRIPTS}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                html = any(
                    name.lower() == b"content-type" and value.startswith(b"text/html")
                    for name, value in headers
                )
                if html:
                    scripted = any(name.lower() == OWN_SCRIPTS for name, _ in headers)
                    headers = [(n, v) for n, v in headers if n.lower() not in self._names]
                    headers += self._scripted if scripted else self._page
                elif not any(name.lower() == b"x-content-type-options" for name, _ in headers):
                    headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class LastResort:
    """Turns an escaped exception into one log line (class and endpoint only) and a 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # noqa: BLE001 - the last resort: every exception, logged once
            await last_resort(exc, scope, send, started=started)


async def last_resort(exc: Exception, scope: Scope, send: Send, *, started: bool) -> None:
    """What LastResort does with an exception: one line naming its class and the endpoint
    (never its message or traceback, which could carry submitted data), then a plain 500
    unless the answer had `started` (then the server closes the connection)."""
    endpoint = scope.get("endpoint")
    log.error(  # the class only: a traceback could carry submitted data
        "unexpected error",
        extra={
            "error": type(exc).__name__,
            "endpoint": getattr(endpoint, "__qualname__", "unknown"),
        },
    )
    if not started:
        await send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")],
            }
        )
        await send({"type": "http.response.body", "body": b"Internal error.\n"})


#: Asks the server to close the connection once the answer is sent (RFC 9110, 9.6 and 15.5.9).
CLOSE = (b"connection", b"close")


class BodyDeadline:
    """Every request body must arrive within `seconds` of the app's first read of it, and an
    answer that leaves a body unread closes the connection.

    Why here: a client that sends its body a byte at a time would hold a connection (and a
    task) for as long as it likes; every endpoint that reads a body shares this deadline.
    Waiting for a disconnect after the body is complete is not limited.

    Why close: once the app has answered, uvicorn reads and drops whatever body still comes,
    for as long as it comes, with no deadline. So an answer given while a body the app began
    to read is still arriving (408, a streamed 413, a webhook too large), or refusing the
    length a body declared (413), says `Connection: close`: the server stops reading there,
    as the README promises, instead of draining the rest.
    """

    def __init__(self, app: ASGIApp, *, deadlines: ReadDeadlines) -> None:
        self.app = app
        self.deadlines = deadlines

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline: float | None = None
        complete = False

        async def timed_receive() -> Message:
            nonlocal deadline, complete
            if complete:
                return await receive()
            if deadline is None:
                deadline = self.deadlines.deadline()
            message = await self.deadlines.receive(receive, deadline)
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        async def closing_send(message: Message) -> None:
            if (
                message["type"] == "http.response.start"
                and not complete
                and (deadline is not None or message["status"] == 413)
            ):
                message = {**message, "headers": [*message.get("headers", []), CLOSE]}
            await send(message)

        await self.app(scope, timed_receive, closing_send)


async def client_gone(_request: Request, _exc: Exception) -> Response:
    """A client that closed the connection mid-body: one line, no traceback, nobody to answer."""
    log.info("client closed the connection before its body arrived")
    return Response(status_code=400)


async def body_timeout(_request: Request, _exc: Exception) -> Response:
    """A body that did not arrive in time (any endpoint but the submit one, which says more)."""
    log.info("request body timed out")
    return PlainTextResponse("The request body did not arrive in time.\n", status_code=408)
