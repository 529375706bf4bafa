"""POST/OPTIONS /f/{form_id}: receive, validate, record, store, answer (design steps 1, 3-5).

The order of checks is the order of cost: unknown form (404), foreign origin (403), media
type (415), declared size (413, before reading), streamed size (413, stops reading), body
(400), then the defence (relay.web.defend: honeypot → proof of work 400/403 → fields 422 →
content rules), whose Verdict says drop, quarantine or deliver. Only after the outbox commit
does the client hear success (303 / 202); if the commit fails it hears 503 with Retry-After,
never a false success. Spam hears the same success, so a bot learns nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from relay import i18n
from relay.accept.formspree import language_tag
from relay.accept.intake import parse_body, require_supported, wants_json
from relay.accept.submission import consent_from
from relay.config import FormConfig
from relay.defence.verdict import Action, Verdict
from relay.errors import StoreUnavailable, SubmissionRejected
from relay.i18n import N_
from relay.ids import new_submission_id
from relay.logs import RepeatedLine
from relay.metrics import UNKNOWN_FORM
from relay.store import outbox
from relay.web.deadlines import BodyTimeout
from relay.web.defend import Defended, Screened, defend, spend_proof
from relay.web.deps import Deps, client_of, deps_of, store_of
from relay.web.pages import problems
from relay.web.prospect import prospect_of
from relay.web.ratelimit import Budget, RateLimited, limiter_of

log = logging.getLogger("relay.submit")

ALLOW_HEADERS = "Accept, Content-Type, Formspree-Client, Formspree-Session-Data, Idempotency-Key"
RETRY_AFTER_SECONDS = "5"
MAX_IDEMPOTENCY_KEY = 255
#: Outcomes counted in relay_submissions besides the refusal codes.
ACCEPTED, QUARANTINED, DROPPED = "accepted", "quarantined", "dropped"
#: The rule a suspicious submission is dropped by when its form's quarantine budget is spent.
QUARANTINE_FULL = "quarantine_full"
#: The refusal log lines, by (form, status, code): configured forms and codes, a bounded set.
_LINES: dict[tuple[object, ...], RepeatedLine] = {}
MAX_LINES = 4096
#: Scope key set by relay.web.floodgate once it spent this request's per-client limit.
CLIENT_COUNTED = "relay.client_counted"
#: scope key: relay.web.defend.Screened, the parsed fields and verified proof from the gate
SCREENED = "relay.screened"


def _cors(form: FormConfig | None, origin: str | None) -> dict[str, str]:
    if form is None or origin is None or not form.allows_origin(origin):
        return {"Vary": "Origin"}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


class Answer:
    """Shapes every answer of the submit endpoint for a JSON client or a browser."""

    def __init__(self, deps: Deps, request: Request, form: FormConfig | None) -> None:
        self.deps = deps
        self.request = request
        self.form = form
        self.json = wants_json(
            request.headers.get("accept", ""), request.headers.get("content-type", "")
        )
        self.headers = _cors(form, request.headers.get("origin"))
        self.asked_language: str | None = None  # Formspree's _language, once the body is read

    def language(self) -> str:
        """The visitor's language: _language, Accept-Language, the form's, the default."""
        return i18n.pick(
            asked=self.asked_language,
            accept_language=self.request.headers.get("accept-language", ""),
            form_language=self.form.language if self.form else None,
            default=self.deps.settings.default_language,
        )

    def _back(self) -> str | None:
        """The page to go back to: the referring page if it is the form's own, else its site."""
        form = self.form
        if form is None:
            return None
        referer = self.request.headers.get("referer")
        if referer and form.allows_redirect(referer):
            return referer
        if form.error_url:
            return form.error_url
        origin = self.request.headers.get("origin")
        if origin and form.allows_origin(origin):
            return origin + "/"
        return form.allowed_origins[0] + "/" if form.allowed_origins else None

    def rejected(self, exc: SubmissionRejected) -> Response:
        headers = dict(self.headers)
        if exc.status == 503:
            headers["Retry-After"] = RETRY_AFTER_SECONDS
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        language = self.language()
        if self.json:
            return JSONResponse(
                refusal_body(exc, language), status_code=exc.status, headers=headers
            )
        message = i18n.translate(language, exc.message)
        if exc.status == 422 and self.form is not None and self.form.error_url:
            return RedirectResponse(self.form.error_url, status_code=303, headers=headers)
        back = self._back()
        title = i18n.translate(language, _TITLES.get(exc.status, _DEFAULT_TITLE))
        if exc.errors:
            html = self.deps.pages.render(
                "error.html",
                language=language,
                title=title,
                message=message,
                errors=problems(exc.errors, self.form, language),
                back=back,
            )
        else:
            html = self.deps.pages.render_static(
                "error.html", language, ("title", title), ("message", message), ("back", back)
            )
        return HTMLResponse(html, status_code=exc.status, headers=headers)

    def accepted(self, next_url: str, submission_id: str) -> Response:
        if self.json:
            body = accepted_json(next_url, submission_id)
            return Response(body, 202, self.headers, media_type="application/json")
        return RedirectResponse(next_url, status_code=303, headers=self.headers)


#: `{"ok":true,"next":<url>,"id":"` by next URL: every success (and every caught bot) of a
#: form gets the same few, so each is encoded once (bounded: `_next` comes from the visitor).
_ACCEPTED_HEADS: dict[str, bytes] = {}


def accepted_json(next_url: str, submission_id: str) -> bytes:
    """The JSON of a success, `{"ok":true,"next":…,"id":…}`, as JSONResponse would render it."""
    return with_id(accepted_head(next_url), submission_id)


def with_id(head: bytes, submission_id: str) -> bytes:
    """A success's JSON from its head (accepted_head) and its id."""
    return head + submission_id.encode("ascii") + b'"}'


def accepted_head(next_url: str) -> bytes:
    """The JSON of a success up to its id (`{"ok":true,"next":…,"id":"`), encoded once."""
    head = _ACCEPTED_HEADS.get(next_url)
    if head is None:
        if len(_ACCEPTED_HEADS) >= MAX_LINES:
            _ACCEPTED_HEADS.clear()
        encoded = json.dumps(next_url, ensure_ascii=False)
        head = _ACCEPTED_HEADS[next_url] = f'{{"ok":true,"next":{encoded},"id":"'.encode()
    return head


def refusal_body(exc: SubmissionRejected, language: str) -> dict[str, Any]:
    """The JSON of a refusal, Formspree's shape: `ok`, `error`, and `errors` with codes."""
    message = i18n.translate(language, exc.message)
    errors = [
        {**e.as_dict(), "message": i18n.translate(language, e.message)} for e in exc.errors
    ] or [{"code": exc.code, "message": message}]
    return {"ok": False, "error": message, "errors": errors}


_TITLES = {
    400: N_("The form could not be read"),
    403: N_("This site may not use this form"),
    404: N_("Form not found"),
    405: N_("This address only accepts forms"),
    408: N_("The form took too long to arrive"),
    413: N_("The form is too large"),
    429: N_("Too many submissions"),
    415: N_("The form was sent in an unsupported format"),
    422: N_("Some fields need correcting"),
    503: N_("Please try again in a moment"),
}
_DEFAULT_TITLE = N_("The form could not be sent")


async def read_body(request: Request, limit: int, seconds: float) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` bytes.

    A body still arriving after `seconds` is refused with 408 (a slow client holds no
    connection open for ever); a client that goes away mid-body is ClientGone, not a traceback.
    """
    too_large = SubmissionRejected(
        413, "BODY_TOO_LARGE", f"The form is larger than this form accepts ({limit} bytes)."
    )
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise SubmissionRejected(400, "MALFORMED_BODY", "Content-Length is not a number.")
        if int(declared) > limit:
            raise too_large
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise too_large
    except BodyTimeout:  # the shared deadline (relay.web.deadlines)
        raise body_timed_out(seconds) from None
    except ClientDisconnect:
        raise ClientGone from None
    return bytes(body)


class ClientGone(SubmissionRejected):
    """The client closed the connection before its body arrived: nobody reads the answer."""

    def __init__(self) -> None:
        super().__init__(400, "CLIENT_DISCONNECTED", "The connection closed mid-body.")


def _next_url(
    deps: Deps, request: Request, form: FormConfig, raw: dict[str, Any], language: str | None
) -> str:
    return next_url(deps, form, raw, language, request.scope, request.headers.get("host"))


def next_url(
    deps: Deps,
    form: FormConfig,
    raw: dict[str, Any],
    language: str | None,
    scope: Any,
    host: str | None,
) -> str:
    """Where the visitor goes after a success: `_next` if it is the form's own site, the form's
    success_url, else relay's thank-you page (in `_language` when one was asked for)."""
    wanted = raw.get("_next")
    if form.allows_redirect(wanted):  # malformed URLs are refused whole (relay.accept.urls)
        assert isinstance(wanted, str)  # noqa: S101 - allows_redirect accepts only strings
        return wanted
    if form.success_url:
        return form.success_url
    base = deps.settings.public_url or _own_base(scope, host)
    lang = f"?lang={language}" if language else ""  # _language carries to the thank-you page
    return f"{base}/f/{form.id}/thanks{lang}"


def _own_base(scope: Any, host: str | None) -> str:
    """scheme://host[/root] of this request (Request.base_url costs ~10x more per call)."""
    host = host or "localhost"  # HTTP/1.1 requires Host
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}".rstrip("/")


def _idempotency_key(request: Request, deps: Deps, form: FormConfig) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isascii() or not key.isprintable():
        raise SubmissionRejected(
            400,
            "INVALID_IDEMPOTENCY_KEY",
            f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable ASCII characters.",
        )
    mac = hmac.new(deps.keyring.signing_key, f"idem|{form.id}|{key}".encode(), hashlib.sha256)
    return mac.hexdigest()


def check_origin(form: FormConfig, origin: str | None) -> None:
    """Refuse (403) a page from a site the form does not list; no Origin (curl, a server) passes."""
    if origin is not None and not form.allows_origin(origin):
        raise SubmissionRejected(403, "ORIGIN_NOT_ALLOWED", "This site may not post to this form.")


def body_timed_out(seconds: float) -> SubmissionRejected:
    return SubmissionRejected(
        408, "BODY_TIMEOUT", f"The form was not received within {seconds:g} seconds."
    )


async def _accept(
    request: Request, deps: Deps, form: FormConfig, answer: Answer
) -> tuple[Response, str]:
    """The answer and the outcome to count (accepted, quarantined or dropped)."""
    check_origin(form, request.headers.get("origin"))
    content_type = request.headers.get("content-type", "")
    require_supported(content_type)
    key_mac = _idempotency_key(request, deps, form) if answer.json else None
    store = store_of(request)
    now = deps.clock()
    not_before = outbox.idempotency_window(now, deps.settings.idempotency_ttl_hours)
    if key_mac is not None:
        try:
            earlier = await store.read(outbox.find_answer(key_mac, not_before))
        except StoreUnavailable as exc:
            raise _store_failed(form, exc) from None
        if earlier is not None:
            return _replay(earlier, answer, deps, key_mac), ACCEPTED
    screened = request.scope.get(SCREENED)  # relay.web.floodgate parsed and checked it
    if not isinstance(screened, Screened):
        screened = None
        body = await read_body(request, form.max_body_bytes, deps.settings.body_timeout_seconds)
        raw = parse_body(content_type, body)
    else:
        raw = screened.raw
    answer.asked_language = language_tag(raw.get("_language"), i18n.available())
    defended = defend(deps, form, raw, now, screened)
    # The verdict is known here, before anything is stored or spent: certain spam is dropped;
    # what is delivered or quarantined spends its own form-wide budget first, so spam the
    # defences caught never uses up the budget of real visitors (relay.web.ratelimit).
    if defended.form_input is None:
        return _dropped(request, deps, form, answer, raw, defended.verdict), DROPPED
    quarantined = defended.verdict.action is Action.QUARANTINE
    budget: Budget = "quarantine" if quarantined else "deliver"
    wait = await limiter_of(request).check_form(form.id, budget)
    if wait and quarantined:  # the quarantine is full for now: keep no more of this flood
        full = Verdict(Action.DROP, (*defended.verdict.rules, QUARANTINE_FULL))
        return _dropped(request, deps, form, answer, raw, full), DROPPED
    if wait:
        raise RateLimited(wait)
    await spend_proof(request, defended)
    response = await _store_and_answer(
        request, deps, form, answer, raw, defended, key_mac, not_before
    )
    return response, QUARANTINED if quarantined else ACCEPTED


def _dropped(
    request: Request,
    deps: Deps,
    form: FormConfig,
    answer: Answer,
    raw: dict[str, Any],
    verdict: Verdict,
) -> Response:
    """Certain spam: the very answer a success gets (a fresh plausible id), nothing kept."""
    dropped(deps, form, verdict)
    next_url = _next_url(deps, request, form, raw, answer.asked_language)
    return answer.accepted(next_url, new_submission_id())


def dropped(deps: Deps, form: FormConfig, verdict: Verdict) -> None:
    """Count and log one submission dropped as certain spam (its outcome is counted apart)."""
    deps.metrics.caught(form.id, DROPPED, verdict.rules)
    _line(logging.INFO, "submission dropped", form=form.id, rules=verdict.reason)


def refused(deps: Deps, form: FormConfig | None, exc: SubmissionRejected) -> None:
    """Count and log one refused submission."""
    form_label = form.id if form else UNKNOWN_FORM
    deps.metrics.submission(form_label, exc.code.lower())
    # One line per refusal, so a site owner debugging a 403 sees why: ids and codes only
    # (the form id is from the URL, known or "unknown"; never a field, header or IP). A flood
    # repeats the same few: each is built once (relay.logs.RepeatedLine).
    _line(logging.WARNING, "submission refused", form=form_label, status=exc.status, code=exc.code)


def _line(level: int, message: str, **extra: object) -> None:
    """Emit one of the few lines a flood repeats, each built once (relay.logs.RepeatedLine):
    ids, forms, codes and rule names only; nothing is built for a level that is not logged."""
    if log.isEnabledFor(level):
        _line_for(level, message, **extra).emit()


def _line_for(level: int, message: str, **extra: object) -> RepeatedLine:
    """The line for (level, message, extras), built on first use (a bounded set of them)."""
    key = (level, message, *extra.items())
    line = _LINES.get(key)
    if line is None:
        if len(_LINES) >= MAX_LINES:
            _LINES.clear()
        line = _LINES[key] = RepeatedLine(log, level, message, extra)
    return line


async def _store_and_answer(
    request: Request,
    deps: Deps,
    form: FormConfig,
    answer: Answer,
    raw: dict[str, Any],
    defended: Defended,
    key_mac: str | None,
    not_before: Any,
) -> Response:
    form_input, verdict = defended.form_input, defended.verdict
    assert form_input is not None  # noqa: S101 - only stored verdicts get here
    sub = form_input.submission
    submission_id = new_submission_id()
    now = deps.clock()
    consent = form.marketing_consent
    given = consent is not None and consent_from(raw, consent.field).given
    next_url = _next_url(deps, request, form, raw, answer.asked_language)
    idem = None
    if key_mac is not None:
        body = json.dumps({"ok": True, "next": next_url, "id": submission_id})
        sealed = outbox.seal_answer(deps.keyring, key_mac, body)  # `next` may carry PII
        idem = outbox.Idempotency(key_mac, 202, sealed, not_before)
    quarantined = verdict.action is Action.QUARANTINE
    # a quarantined submission creates or refreshes no prospect record (and no consent event)
    # until an admin releases it; its keyed email hash still finds it for a DPO's export
    prospect = None if quarantined else prospect_of(deps.keyring, form, sub, raw)
    row = outbox.NewSubmission(
        id=submission_id,
        form_id=form.id,
        received_at=now,
        legal_basis=form.legal_basis.value,
        notice_version=form.notice_version,
        consent_given=given,
        consent_wording_version=consent.wording_version if consent is not None else None,
        body_enc=outbox.seal_body(deps.keyring, submission_id, form_input.body()),
        subject_mac=prospect.email_mac if prospect is not None else deps.keyring.mac(sub.email),
        quarantine_reason=verdict.reason if quarantined else None,
    )
    try:
        earlier = await store_of(request).write(outbox.accept(row, idem, prospect))
    except StoreUnavailable as exc:
        raise _store_failed(form, exc) from None
    if earlier is not None:
        assert key_mac is not None  # noqa: S101 - only an idempotent accept finds an earlier one
        return _replay(earlier, answer, deps, key_mac)
    if quarantined:
        deps.metrics.caught(form.id, QUARANTINED, verdict.rules)
        line = _line_for(logging.INFO, "submission quarantined", form=form.id, rules=verdict.reason)
    else:
        line = _line_for(logging.INFO, "submission accepted", form=form.id)
    line.emit(submission_id=submission_id)
    return answer.accepted(next_url, submission_id)


def _store_failed(form: FormConfig, exc: StoreUnavailable) -> SubmissionRejected:
    """A database failure (write, or the idempotency lookup) is a 503 with Retry-After."""
    log.error("submission not stored", extra={"form": form.id, "error": str(exc)})
    return SubmissionRejected(
        503, "STORE_UNAVAILABLE", "The form could not be saved; please try again shortly."
    )


def _replay(earlier: outbox.StoredAnswer, answer: Answer, deps: Deps, key_mac: str) -> Response:
    headers = {**answer.headers, "Idempotent-Replayed": "true"}
    return Response(
        outbox.open_answer(deps.keyring, key_mac, earlier),
        status_code=earlier.status_code,
        media_type="application/json",
        headers=headers,
    )


def unknown_form() -> SubmissionRejected:
    return SubmissionRejected(404, "FORM_NOT_FOUND", "There is no form with this address.")


async def submit(request: Request) -> Response:
    """POST /f/{form_id}."""
    deps = deps_of(request)
    deps.visitors.count += 1  # an in-process dispatcher yields to it (relay.deliver.pacing)
    try:
        return await _submit(request, deps)
    finally:
        deps.visitors.count -= 1


async def _submit(request: Request, deps: Deps) -> Response:
    form = deps.forms.get(request.path_params["form_id"])
    answer = Answer(deps, request, form)
    try:
        if form is None:
            raise unknown_form()
        if not request.scope.get(CLIENT_COUNTED):  # relay.web.floodgate counted it already
            await limiter_of(request).check_client(client_of(request), form.id)
        response, outcome = await _accept(request, deps, form, answer)
    except SubmissionRejected as exc:
        refused(deps, form, exc)
        if isinstance(exc, ClientGone):
            return Response(status_code=400)  # nobody is listening any more
        return answer.rejected(exc)
    deps.metrics.submission(form.id, outcome)
    return response


async def preflight(request: Request) -> Response:
    """OPTIONS /f/{form_id}: CORS preflight, allowed only for the form's own origins."""
    deps = deps_of(request)
    form = deps.forms.get(request.path_params["form_id"])
    origin = request.headers.get("origin")
    if form is None:
        log.warning("preflight refused", extra={"form": UNKNOWN_FORM, "status": 404})
        return Response(status_code=404, headers={"Vary": "Origin"})
    if origin is None or not form.allows_origin(origin):
        log.warning("preflight refused", extra={"form": form.id, "status": 403})
        return Response(status_code=403, headers={"Vary": "Origin"})
    headers = {
        **_cors(form, origin),
        "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": ALLOW_HEADERS,
        "Access-Control-Max-Age": "600",
    }
    return Response(status_code=204, headers=headers)


async def thanks(request: Request) -> Response:
    """GET /f/{form_id}/thanks: the built-in thank-you page when a form has no success_url."""
    deps = deps_of(request)
    form = deps.forms.get(request.path_params["form_id"])
    language = i18n.pick(
        asked=request.query_params.get("lang"),
        accept_language=request.headers.get("accept-language", ""),
        form_language=form.language if form else None,
        default=deps.settings.default_language,
    )
    if form is None:
        html = deps.pages.render(
            "error.html",
            language=language,
            title=i18n.translate(language, _TITLES[404]),
            message=i18n.translate(language, "There is no form with this address."),
            errors=[],
            back=None,
        )
        return HTMLResponse(html, status_code=404)
    back = form.allowed_origins[0] + "/" if form.allowed_origins else None
    return HTMLResponse(deps.pages.render("thanks.html", language=language, back=back))
