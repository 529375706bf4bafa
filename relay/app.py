"""create_app(settings) → Starlette: routes, error pages and the lifespan that owns resources.

Nothing happens at import time; `relay serve` and `uvicorn --factory relay.app:create_app`
both build the app through here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from relay import logs
from relay.clock import Clock, utcnow
from relay.config import Settings, load_forms, load_settings
from relay.deliver.delivery import renderer_for, running_delivery
from relay.deliver.dispatcher import Dispatcher, Lookup
from relay.keyfile import load_keyring
from relay.mail.transport import Transport
from relay.minimise.housekeeping import Housekeeper, register_wordings
from relay.store import Store
from relay.web.deadlines import BodyTimeout, ReadDeadlines
from relay.web.deps import Deps, State
from relay.web.floodgate import FloodGate
from relay.web.middleware import (
    BodyDeadline,
    LastResort,
    SecurityHeaders,
    body_timeout,
    client_gone,
    style_hashes,
)
from relay.web.pages import Pages, default_templates_dir
from relay.web.ratelimit import RateLimiter
from relay.web.replay import ProofLedger
from relay.web.routes import routes
from relay.web.worker_health import create_worker_app

__all__ = ["RelayApp", "create_app", "create_worker_app"]


class RelayApp(Starlette):
    """Starlette, with `front` (the flood gate) before its own middleware stack and routing."""

    front: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.front(scope, receive, send)

    async def starlette(self, scope: Scope, receive: Receive, send: Send) -> None:
        """What Starlette itself does with a request: its middleware, then the routes."""
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    transport: Transport | None = None,
    lookup: Lookup | None = None,
) -> Starlette:
    """Build the ASGI app; raises ConfigError (naming file, field, problem) on bad config.

    Unless RELAY_DISPATCH_IN_SERVE is off, the lifespan also runs the dispatcher, on
    `transport` if given (tests) or the one settings choose (Mailgun, or .eml files).
    """
    settings = settings if settings is not None else load_settings()
    deps = Deps(
        settings=settings,
        forms=load_forms(settings.effective_forms_file),
        keyring=load_keyring(settings, create=True),
        pages=Pages(default_templates_dir()),
        clock=clock or utcnow,
        trusted_proxies=settings.trusted_networks,
        trusted_proxy_header=settings.trusted_proxy_header,
    )
    renderer = renderer_for(settings) if settings.dispatch_in_serve else None
    limiter = RateLimiter(settings, deps.clock, deps.metrics)
    reads = ReadDeadlines(settings.body_timeout_seconds)  # body deadlines, one timer for all

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[State]:
        store = await Store.from_settings(settings, create=True, dispatching=renderer is not None)
        housekeeper = Housekeeper(store, deps.keyring, settings, deps.clock, metrics=deps.metrics)
        try:
            await store.require_schema()  # else: say to run `relay db upgrade`, and stop
            await register_wordings(store, deps.forms, deps.clock())
            await housekeeper.start()
            async with contextlib.AsyncExitStack() as stack:
                dispatcher: Dispatcher | None = None
                if renderer is not None:
                    dispatcher = await stack.enter_async_context(
                        running_delivery(
                            settings,
                            store,
                            forms=deps.forms,
                            keyring=deps.keyring,
                            clock=deps.clock,
                            metrics=deps.metrics,
                            transport=transport,
                            lookup=lookup,
                            renderer=renderer,
                            housekeeper=housekeeper,
                            visitors=deps.visitors.waiting,  # they go first (pacing)
                        )
                    )
                yield {"store": store, "dispatcher": dispatcher}
        finally:
            await housekeeper.stop()
            await app.state.limiter.close()
            await app.state.proof_ledger.close()
            await store.close()
            logs.flush()  # uvicorn may end the process by a signal next (relay.logs.flush)

    middleware = [
        Middleware(LastResort),
        # A foreign Host header never shapes an answer (the thank-you URL is built from it
        # when RELAY_PUBLIC_URL is unset): Starlette's own check, answering 400.
        Middleware(TrustedHostMiddleware, allowed_hosts=settings.trusted_hosts, www_redirect=False),
        Middleware(SecurityHeaders, styles=style_hashes(default_templates_dir())),
        Middleware(BodyDeadline, deadlines=reads),
    ]
    handlers = {ClientDisconnect: client_gone, BodyTimeout: body_timeout}
    app = RelayApp(
        routes=routes(), lifespan=lifespan, middleware=middleware, exception_handlers=handlers
    )
    # a flood's refusals and caught spam, answered before Starlette (relay.web.floodgate)
    gate = FloodGate(
        app.starlette,
        owner=app,
        deps=deps,
        limiter=limiter,
        hosts=settings.trusted_hosts,
        deadlines=reads,
    )
    app.front = gate  # it guards itself as LastResort would (relay.web.floodgate)
    app.state.deps = deps
    app.state.limiter = limiter
    app.state.proof_ledger = ProofLedger(settings)  # single-use proofs of work
    return app
