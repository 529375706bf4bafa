"""GET /healthz, /readyz and /metrics: for load balancers, orchestrators and Prometheus.

/healthz says the process answers. /readyz says whether this instance can do its job:
database reachable, a transport configured, dispatch not paused (a 401/403 from Mailgun pauses
it), and the oldest waiting message younger than RELAY_READY_MAX_QUEUE_AGE_SECONDS; otherwise
503 with the reasons. None of these routes reads or sets a cookie.
"""

from __future__ import annotations

import contextlib
import hmac
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from relay.config import Settings
from relay.errors import StoreUnavailable
from relay.metrics import CONTENT_TYPE
from relay.store.delivery_stats import QueueStats, queue_stats
from relay.web.deps import deps_of, store_of

NO_STORE = {"Cache-Control": "no-store"}


async def healthz(_request: Request) -> Response:
    """GET /healthz: the process is alive and serving."""
    return JSONResponse({"status": "ok"}, headers=NO_STORE)


def transport_problem(settings: Settings) -> str | None:
    """Mailgun needs key and domain together; with no key the file transport is used."""
    if settings.mailgun_api_key is not None and not settings.mailgun_domain:
        return "RELAY_MAILGUN_API_KEY is set but RELAY_MAILGUN_DOMAIN is not"
    if settings.mailgun_api_key is None and settings.mailgun_domain:
        return "RELAY_MAILGUN_DOMAIN is set but RELAY_MAILGUN_API_KEY is not"
    return None


async def readyz(request: Request) -> Response:
    """GET /readyz: 200 {"status": "ready"} or 503 {"status": "not ready", "reasons": [...]}."""
    deps = deps_of(request)
    now = deps.clock()
    reasons: list[str] = []
    checks: dict[str, Any] = {}
    stats: QueueStats | None = None
    try:
        stats = await store_of(request).read(queue_stats())
    except StoreUnavailable:
        reasons.append("database unreachable")
    checks["database"] = stats is not None
    problem = transport_problem(deps.settings)
    checks["transport"] = "mailgun" if deps.settings.mailgun_api_key else "file"
    if problem:
        reasons.append(f"transport not configured: {problem}")
    dispatcher = getattr(request.state, "dispatcher", None)
    paused = getattr(dispatcher, "paused_reason", None) if dispatcher is not None else None
    checks["dispatch"] = (
        "not running here" if dispatcher is None else ("paused" if paused else "running")
    )
    if paused:
        reasons.append(f"dispatch paused: {paused}")
    if stats is not None:
        age = stats.oldest_age(now)
        checks["oldest_queued_age_seconds"] = round(age, 1)
        checks["queue_depth"] = stats.depth
        limit = deps.settings.ready_max_queue_age_seconds
        if age > limit:
            reasons.append(f"oldest queued message is {int(age)} s old (limit {limit} s)")
    body: dict[str, Any] = {"status": "not ready" if reasons else "ready", "checks": checks}
    if reasons:
        body["reasons"] = reasons
    return JSONResponse(body, status_code=503 if reasons else 200, headers=NO_STORE)


def _authorized(request: Request, settings: Settings) -> bool:
    if settings.metrics_token is None:
        return True
    given = request.headers.get("authorization", "")
    expected = f"Bearer {settings.metrics_token.get_secret_value()}"
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


async def metrics(request: Request) -> Response:
    """GET /metrics: Prometheus text format; with RELAY_METRICS_TOKEN, a bearer token."""
    deps = deps_of(request)
    if not _authorized(request, deps.settings):
        return Response(
            "metrics need Authorization: Bearer <RELAY_METRICS_TOKEN>\n",
            status_code=401,
            media_type="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="relay metrics"'},
        )
    # If the database is down the counters still answer; readiness reports the database.
    with contextlib.suppress(StoreUnavailable):
        deps.metrics.observe_queue(await store_of(request).read(queue_stats()), deps.clock())
    return Response(deps.metrics.exposition(), media_type=CONTENT_TYPE, headers=NO_STORE)
