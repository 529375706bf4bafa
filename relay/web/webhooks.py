"""POST /webhooks/mailgun: Mailgun's signed delivery events onto the delivery log.

Answers: 200 for a verified event (recorded, already known, ignored or for a message relay did
not send), 406 for anything refused — bad or missing signature, stale timestamp, reused token,
unreadable body, webhooks not configured — because 406 is the one error Mailgun does not retry.
The freshness window (RELAY_WEBHOOK_MAX_AGE_SECONDS, 10 h) outlasts Mailgun's ~8 h of retries,
which keep the original signed timestamp; tokens are remembered at least that long.
A store failure answers 503 so Mailgun retries later. The work before answering is one group
commit (token, event, state); the log line is written after the answer is sent.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse

from relay.deliver.outcomes import provider_transition
from relay.errors import StoreUnavailable
from relay.mail.events import KNOWN_EVENTS, EventInvalid, parse_event, refusal
from relay.store.deliveries import Recorded, record_event
from relay.web.deps import Deps, deps_of, store_of

log = logging.getLogger("relay.webhooks")
#: Mailgun's event bodies are a few kilobytes; anything much larger is not one.
MAX_BODY = 256 * 1024


def _refused(deps: Deps, reason: str, event: str = "unverified") -> JSONResponse:
    deps.metrics.webhook_events.labels(event, f"refused_{reason}").inc()
    task = BackgroundTask(_log_refusal, reason)
    return JSONResponse({"ok": False, "error": reason}, status_code=406, background=task)


def _log_refusal(reason: str) -> None:
    log.warning("webhook refused", extra={"reason": reason})


def _log_recorded(result: Recorded, event: str) -> None:
    log.info(
        "webhook event",
        extra={
            "event": event,
            "verdict": result.verdict,
            "submission_id": result.submission_id,
            "form": result.form_id,
            "state": result.state,
        },
    )


async def _body(request: Request) -> bytes | None:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return None
    return bytes(body)


async def mailgun(request: Request) -> JSONResponse:
    """POST /webhooks/mailgun."""
    deps = deps_of(request)
    key = deps.settings.mailgun_webhook_signing_key
    if key is None:
        return _refused(deps, "not_configured")
    raw = await _body(request)
    if raw is None:
        return _refused(deps, "too_large")
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError; deep nesting
        return _refused(deps, "malformed")
    if not isinstance(payload, dict):
        return _refused(deps, "malformed")
    now = deps.clock()
    max_age = timedelta(seconds=deps.settings.webhook_max_age_seconds)
    reason, token = refusal(
        key.get_secret_value().encode("utf-8"), payload.get("signature"), now, max_age
    )
    if reason is not None or token is None:
        return _refused(deps, reason or "malformed")
    try:
        event = parse_event(payload.get("event-data"))
    except EventInvalid:
        return _refused(deps, "malformed")
    kind = event.event if event.event in KNOWN_EVENTS else "other"
    try:
        result = await store_of(request).write(
            record_event(event, now, source="webhook", token=token, max_age=max_age)
        )
    except StoreUnavailable:
        deps.metrics.webhook_events.labels(kind, "store_unavailable").inc()
        log.error("webhook event not stored", extra={"event": kind})  # noqa: TRY400 - no SQL in logs
        return JSONResponse({"ok": False, "error": "try again"}, status_code=503)
    if result.verdict == "replayed":
        return _refused(deps, "replayed", kind)
    deps.metrics.webhook_events.labels(kind, result.verdict).inc()
    provider_transition(result, kind, "webhook", deps.metrics)
    task = BackgroundTask(_log_recorded, result, event.label)
    return JSONResponse({"ok": True, "verdict": result.verdict}, background=task)
