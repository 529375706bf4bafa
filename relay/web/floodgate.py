"""The cheap way out of a flood: spam to POST /f/{form_id} answered before routing and middleware.

Why: a flood is the same few answers thousands of times a second (an unknown form, 429, a
filled honeypot, a made-up proof of work). Through Starlette's routing, a Request, five
middleware layers and a JSONResponse, each cost three times what a bare answer costs (issue 8
point 8, docs/performance.md). This gate gives JSON clients those answers in plain ASGI, with
the very checks, counters, log line and JSON of relay.web.submit (it calls the same
functions), from headers read once and refusal bodies encoded once per language.

It answers only what it is sure of. Anything else goes on to the full app unchanged: an HTML
form (error pages are the app's), an Idempotency-Key, a body without Content-Length or over the
form's limit, a Host it cannot vouch for. A submission that passes the honeypot and the proof
of work goes straight to the endpoint (relay.web.submit.submit, with what the gate parsed and
verified, the body replayed and the per-client limit marked as spent, so no request is counted
twice): the middleware between has nothing left to do for it (the Host is vouched for, the body
read within its deadline, and the answer is JSON, given `nosniff` here as SecurityHeaders
would), and skipping it and the router is a tenth of a submission's cost. Its JSON answers
carry `nosniff`. An exception escaping the gate's own code is answered as LastResort answers
one (relay.web.middleware.last_resort), without LastResort's wrapper around every send of a
flood's answers; what it passes on is guarded by the LastResort in Starlette's stack.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relay import i18n
from relay.accept.formspree import language_tag
from relay.accept.intake import media_type, parse_body, require_supported, wants_json
from relay.config import FormConfig
from relay.defence.verdict import screen_raw
from relay.errors import SubmissionRejected
from relay.ids import new_submission_id
from relay.web import submit
from relay.web.deadlines import BodyTimeout, ReadDeadlines
from relay.web.defend import Screened, check_proof
from relay.web.deps import Deps, client_from
from relay.web.middleware import CLOSE, last_resort
from relay.web.ratelimit import RateLimited, RateLimiter

#: The two routes of relay.web.routes served by relay.web.submit.submit (project, form).
_FORM = re.compile(r"^/(?:p/([^/]+)/)?f/([^/]+)$")
_NOSNIFF = (b"x-content-type-options", b"nosniff")
_WANTED = frozenset(
    (b"host", b"accept", b"accept-language", b"content-type", b"content-length", b"origin")
)
#: Headers that send a request on to the full app whatever else it holds.
_ELSEWHERE = frozenset((b"idempotency-key", b"transfer-encoding"))
_JSON_HEADERS = [(b"content-type", b"application/json"), _NOSNIFF]
_VARY = (b"vary", b"Origin")
#: Bounds of the caches keyed by what clients send (Accept-Language): cleared when full.
_CACHE_MAX = 1024
#: Set in the scope once the gate (or the endpoint it called) has started an answer.
_STARTED = "relay.gate.started"


#: JSON as Starlette's JSONResponse renders it, with one encoder made once.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))


def _dumps(content: Any) -> bytes:
    return _ENCODER.encode(content).encode("utf-8")


class FloodGate:
    """ASGI middleware: answers caught and refused JSON submissions itself (module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        owner: Any,
        deps: Deps,
        limiter: RateLimiter,
        hosts: list[str],
        deadlines: ReadDeadlines,
    ) -> None:
        self.app = app
        self.owner = owner  # the Starlette app whose state the endpoint reads (request.app)
        self.deadlines = deadlines
        self.deps = deps
        self.limiter = limiter
        self._proxy_header = deps.trusted_proxy_header.lower().encode("latin-1")
        self._any_host = "*" in hosts
        self._hosts = frozenset(h.lower() for h in hosts if not h.startswith("*"))
        self._suffixes = tuple(h[1:].lower() for h in hosts if h.startswith("*.") and h != "*")
        self._languages: dict[tuple[str | None, str, str | None], str] = {}
        self._heads: dict[tuple[str, str | None, str | None, str], bytes] = {}
        self._refusals: dict[tuple[str, str, str], bytes] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        match = _FORM.match(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, str] = {}
        forwarded: list[str] = []
        for name, value in scope["headers"]:
            if name in _WANTED:
                headers.setdefault(name, value.decode("latin-1"))  # the first, as Starlette
            elif name == self._proxy_header:
                forwarded.append(value.decode("latin-1"))
            elif name in _ELSEWHERE:
                await self.app(scope, receive, send)
                return
        content_type = headers.get(b"content-type", "")
        kind = media_type(content_type)  # worked out once, for the three checks that need it
        if not wants_json(headers.get(b"accept", ""), content_type, kind) or not self._host_trusted(
            headers.get(b"host")
        ):
            await self.app(scope, receive, send)
            return
        try:
            await self._submit(match, scope, receive, send, headers, forwarded, kind)
        except Exception as exc:  # noqa: BLE001 - as LastResort: every exception, logged once
            await last_resort(exc, scope, send, started=_STARTED in scope)

    def _host_trusted(self, host: str | None) -> bool:
        """Whether TrustedHostMiddleware would let this Host through (unsure: no)."""
        if self._any_host:
            return True
        if not host or host.startswith("["):
            return False
        name = host.lower().rsplit(":", 1)[0]
        return name in self._hosts or any(name.endswith(s) for s in self._suffixes)

    async def _submit(
        self,
        match: re.Match[str],
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[bytes, str],
        forwarded: list[str],
        kind: str,
    ) -> None:
        deps = self.deps
        project, form_id = match.groups()
        form = deps.forms.get(form_id)
        origin = headers.get(b"origin")
        cors = [_VARY]
        if form is not None and origin is not None and form.allows_origin(origin):
            cors = [(b"access-control-allow-origin", origin.encode("latin-1")), _VARY]
        asked: str | None = None
        body = b""
        try:
            if form is None:
                raise submit.unknown_form()
            client = scope.get("client")
            peer = client[0] if client else ""
            await self.limiter.check_client(client_from(deps, peer, forwarded), form.id)
            scope[submit.CLIENT_COUNTED] = True
            submit.check_origin(form, origin)
            content_type = headers.get(b"content-type", "")
            require_supported(content_type, kind)
            declared = headers.get(b"content-length", "")
            if not declared.isdigit() or int(declared) > form.max_body_bytes:
                await self.app(scope, receive, send)  # the app says 400 / 413
                return
            body = await self._read(receive)
            raw = parse_body(content_type, body, kind)
            asked = language_tag(raw.get("_language"), i18n.available())
            verdict = screen_raw(raw, form)
            if verdict is not None:
                submit.dropped(deps, form, verdict)
                head = self._success_head(form, raw, asked, scope, headers.get(b"host"))
                await _answer(scope, send, 202, cors, submit.with_id(head, new_submission_id()))
                deps.metrics.submission(form.id, submit.DROPPED)
                return
            proof = check_proof(deps, form, raw, deps.clock())
        except SubmissionRejected as exc:
            submit.refused(deps, form, exc)
            if isinstance(exc, submit.ClientGone):
                await _answer(scope, send, 400, [], b"", json=False)  # nobody is listening any more
                return
            await self._refuse(scope, send, exc, form, cors, asked, headers)
            return
        # not caught here: a person's submission, or a bot the later checks are for; the
        # endpoint reuses what was parsed and verified here (the body is replayed all the same)
        scope[submit.SCREENED] = Screened(raw, proof)
        await self._endpoint(scope, _replaying(body, receive), send, project, form_id)

    async def _endpoint(
        self, scope: Scope, receive: Receive, send: Send, project: str | None, form_id: str
    ) -> None:
        """What the router would do for POST /f/{form_id}: call relay.web.submit.submit."""
        scope["app"] = self.owner
        scope["endpoint"] = submit.submit
        params = (
            {"form_id": form_id} if project is None else {"project": project, "form_id": form_id}
        )
        scope["path_params"] = params
        response = await submit.submit(Request(scope, receive))
        if not any(name == b"x-content-type-options" for name, _ in response.raw_headers):
            response.raw_headers.append(_NOSNIFF)

        async def tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                scope[_STARTED] = True
            await send(message)

        await response(scope, receive, tracked)

    async def _read(self, receive: Receive) -> bytes:
        """The whole body, within RELAY_BODY_TIMEOUT_SECONDS (relay.web.middleware.BodyDeadline)."""
        deadlines = self.deadlines
        deadline = deadlines.deadline()
        chunks: list[bytes] = []
        try:
            while True:
                message = await deadlines.receive(receive, deadline)
                if message["type"] != "http.request":
                    raise submit.ClientGone
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    return b"".join(chunks)
        except BodyTimeout:
            raise submit.body_timed_out(deadlines.seconds) from None

    async def _refuse(
        self,
        scope: Scope,
        send: Send,
        exc: SubmissionRejected,
        form: FormConfig | None,
        cors: list[tuple[bytes, bytes]],
        asked: str | None,
        headers: dict[bytes, str],
    ) -> None:
        language = self._language(asked, headers.get(b"accept-language", ""), form)
        extra = list(cors)
        if isinstance(exc, RateLimited):
            extra.append((b"retry-after", str(exc.retry_after).encode("ascii")))
        elif exc.status == 503:
            extra.append((b"retry-after", submit.RETRY_AFTER_SECONDS.encode("ascii")))
        elif exc.status == 408:  # the rest of the body is not waited for (BodyDeadline)
            extra.append(CLOSE)
        await _answer(scope, send, exc.status, extra, self._refusal(exc, language))

    def _success_head(
        self,
        form: FormConfig,
        raw: dict[str, Any],
        asked: str | None,
        scope: Scope,
        host: str | None,
    ) -> bytes:
        """The success JSON up to its id, as relay.web.submit answers it: for a submission
        without `_next` (what a flood sends) found by form, Host, language and scheme (all
        the thank-you URL depends on then) instead of built per request."""
        if "_next" in raw:
            return submit.accepted_head(submit.next_url(self.deps, form, raw, asked, scope, host))
        key = (form.id, host, asked, scope.get("scheme", "http"))
        head = self._heads.get(key)
        if head is None:
            if len(self._heads) >= _CACHE_MAX:
                self._heads.clear()
            url = submit.next_url(self.deps, form, raw, asked, scope, host)
            head = self._heads[key] = submit.accepted_head(url)
        return head

    def _language(self, asked: str | None, accept_language: str, form: FormConfig | None) -> str:
        form_language = form.language if form is not None else None
        key = (asked, accept_language, form_language)
        language = self._languages.get(key)
        if language is None:
            if len(self._languages) >= _CACHE_MAX:
                self._languages.clear()
            language = self._languages[key] = i18n.pick(
                asked=asked,
                accept_language=accept_language,
                form_language=form_language,
                default=self.deps.settings.default_language,
            )
        return language

    def _refusal(self, exc: SubmissionRejected, language: str) -> bytes:
        """The refusal's JSON (relay.web.submit.refusal_body), encoded once per language."""
        if exc.errors:
            return _dumps(submit.refusal_body(exc, language))
        key = (exc.code, exc.message, language)
        encoded = self._refusals.get(key)
        if encoded is None:
            if len(self._refusals) >= _CACHE_MAX:
                self._refusals.clear()
            encoded = self._refusals[key] = _dumps(submit.refusal_body(exc, language))
        return encoded


async def _answer(
    scope: Scope,
    send: Send,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    *,
    json: bool = True,
) -> None:
    scope[_STARTED] = True  # from here on, a failure cannot be answered with a 500
    length = (b"content-length", str(len(body)).encode("ascii"))
    extra = _JSON_HEADERS if json else _JSON_HEADERS[1:]
    start = {"type": "http.response.start", "status": status, "headers": [*headers, length, *extra]}
    await send(start)
    await send({"type": "http.response.body", "body": body})


def _replaying(body: bytes, receive: Receive) -> Receive:
    """`receive` with the body already read given back first (then disconnects as usual)."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replayed
