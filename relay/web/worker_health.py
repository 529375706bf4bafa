"""`relay worker --http-port`: a worker's own /healthz, /readyz and /metrics.

A worker is ready when it can deliver: the database answers, its dispatcher runs and is not
paused (Mailgun refused the credentials or the domain), and the oldest waiting message is
younger than RELAY_READY_MAX_QUEUE_AGE_SECONDS. Its /metrics exports what only a worker
knows: Mailgun request durations, purges, pauses, lease takeovers, and the queue gauges.
"""

from __future__ import annotations

from typing import Any, cast

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.deliver.delivery import WorkerRuntime
from relay.errors import StoreUnavailable
from relay.store.delivery_stats import QueueStats, queue_stats
from relay.web.health import answer, dispatch_health, exposition, healthz


def _runtime(request: Request) -> WorkerRuntime:
    return cast("WorkerRuntime", request.app.state.runtime)


async def readyz(request: Request) -> Response:
    """GET /readyz on a worker: 200 when it can deliver, else 503 with the reasons."""
    runtime = _runtime(request)
    reasons: list[str] = []
    stats: QueueStats | None = None
    try:
        stats = await runtime.store.read(queue_stats())
    except StoreUnavailable:
        reasons.append("database unreachable")
    checks: dict[str, Any] = {"database": stats is not None}
    checks["transport"] = "mailgun" if runtime.settings.mailgun_api_key else "file"
    if not runtime.dispatcher.running:
        reasons.append("dispatcher not running")
    dispatch_checks, problems = dispatch_health(
        runtime.settings, runtime.dispatcher, stats, runtime.clock()
    )
    checks.update(dispatch_checks)
    reasons.extend(problems)
    return answer(checks, reasons, [])


async def metrics(request: Request) -> Response:
    """GET /metrics on a worker: its own registry (with RELAY_METRICS_TOKEN, a bearer token)."""
    runtime = _runtime(request)
    runtime.metrics.observe_dispatch(runtime.dispatcher)
    return await exposition(
        request, runtime.settings, runtime.metrics, runtime.store, runtime.clock()
    )


def create_worker_app(runtime: WorkerRuntime) -> Starlette:
    """The worker's small HTTP app; no lifespan: the worker owns every resource."""
    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
    )
    app.state.runtime = runtime
    return app
