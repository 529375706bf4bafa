"""GET /healthz, /readyz and /metrics: for load balancers, orchestrators and Prometheus.

/healthz says the process answers. /readyz says whether this instance can do its job: a web
instance's job is to accept, so it is ready when the database answers; the delivery side
(transport, dispatch paused by a 401/403 from Mailgun, the oldest waiting message older than
RELAY_READY_MAX_QUEUE_AGE_SECONDS) is reported as warnings here and decides the readiness of
`relay worker --http-port` (relay.web.worker_health). None of these routes reads or sets a
cookie.
"""

from __future__ import annotations

import contextlib
import hmac
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from relay.config import Settings
from relay.errors import StoreUnavailable
from relay.metrics import CONTENT_TYPE, Metrics
from relay.store import Store
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


def dispatch_health(
    settings: Settings, dispatcher: Any, stats: QueueStats | None, now: datetime
) -> tuple[dict[str, Any], list[str]]:
    """The delivery side's checks and problems: the dispatcher's pause, the queue's age.

    A worker is not ready with any of these problems; a web instance only reports them
    (`warnings`), since it still accepts submissions perfectly.
    """
    checks: dict[str, Any] = {}
    problems: list[str] = []
    paused = getattr(dispatcher, "paused_reason", None) if dispatcher is not None else None
    checks["dispatch"] = (
        "not running here" if dispatcher is None else ("paused" if paused else "running")
    )
    if paused:
        problems.append(f"dispatch paused: {paused}")
    if stats is not None:
        age = stats.oldest_age(now)
        checks["oldest_queued_age_seconds"] = round(age, 1)
        checks["queue_depth"] = stats.depth
        limit = settings.ready_max_queue_age_seconds
        if age > limit:
            problems.append(f"oldest queued message is {int(age)} s old (limit {limit} s)")
    return checks, problems


def answer(checks: dict[str, Any], reasons: list[str], warnings: list[str]) -> JSONResponse:
    """200 {"status": "ready"} or 503 {"status": "not ready", "reasons"}; warnings either way."""
    body: dict[str, Any] = {"status": "not ready" if reasons else "ready", "checks": checks}
    if reasons:
        body["reasons"] = reasons
    if warnings:
        body["warnings"] = warnings
    return JSONResponse(body, status_code=503 if reasons else 200, headers=NO_STORE)


async def readyz(request: Request) -> Response:
    """GET /readyz on a web instance: ready when it can accept, i.e. the database answers.

    What delivery needs (transport, dispatch not paused, a young queue) is reported under
    `warnings` and in /metrics, and makes a *worker* not ready (relay.web.worker_health):
    a Mailgun outage must not pull every web instance out of the load balancer.
    """
    deps = deps_of(request)
    reasons: list[str] = []
    warnings: list[str] = []
    stats: QueueStats | None = None
    try:
        stats = await store_of(request).read(queue_stats())
    except StoreUnavailable:
        reasons.append("database unreachable")
    checks: dict[str, Any] = {"database": stats is not None}
    checks["transport"] = "mailgun" if deps.settings.mailgun_api_key else "file"
    problem = transport_problem(deps.settings)
    if problem:
        warnings.append(f"transport not configured: {problem}")
    dispatcher = getattr(request.state, "dispatcher", None)
    dispatch_checks, problems = dispatch_health(deps.settings, dispatcher, stats, deps.clock())
    checks.update(dispatch_checks)
    warnings.extend(problems)
    return answer(checks, reasons, warnings)


def _authorized(request: Request, settings: Settings) -> bool:
    if settings.metrics_token is None:
        return True
    given = request.headers.get("authorization", "")
    expected = f"Bearer {settings.metrics_token.get_secret_value()}"
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


async def exposition(
    request: Request, settings: Settings, metrics: Metrics, store: Store, now: datetime
) -> Response:
    """The Prometheus answer (web instance or worker): 401 without the token when one is set;
    the queue gauges read at scrape time; if the database is down the counters still answer."""
    if not _authorized(request, settings):
        return Response(
            "metrics need Authorization: Bearer <RELAY_METRICS_TOKEN>\n",
            status_code=401,
            media_type="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="relay metrics"'},
        )
    with contextlib.suppress(StoreUnavailable):
        metrics.observe_queue(await store.read(queue_stats()), now)
    return Response(metrics.exposition(), media_type=CONTENT_TYPE, headers=NO_STORE)


async def metrics(request: Request) -> Response:
    """GET /metrics: Prometheus text format; with RELAY_METRICS_TOKEN, a bearer token."""
    deps = deps_of(request)
    deps.metrics.observe_dispatch(getattr(request.state, "dispatcher", None))
    return await exposition(request, deps.settings, deps.metrics, store_of(request), deps.clock())
