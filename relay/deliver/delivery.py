"""Wiring for delivery: settings → transport (Mailgun or .eml files), renderer and dispatcher.

Used by the app's lifespan (`relay serve`) and by `relay worker`, so both deliver the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta

from relay.clock import Clock
from relay.config import FormConfig, Settings, load_forms
from relay.crypto import KeyRing
from relay.deliver import backoff
from relay.deliver.dispatcher import Dispatcher, Lookup, Options
from relay.deliver.pacing import nobody
from relay.errors import ConfigError
from relay.keyfile import load_keyring
from relay.mail.eml import FileTransport
from relay.mail.reconcile import Reconciler
from relay.mail.render import Renderer, default_email_templates_dir
from relay.mail.transport import Transport
from relay.metrics import Metrics
from relay.minimise.housekeeping import Housekeeper
from relay.store import Store

log = logging.getLogger("relay.worker")

#: Message-Id domain and From address when no Mailgun domain is set (file transport).
LOCAL_DOMAIN = "relay.localhost"


def sending_domain(settings: Settings) -> str:
    return settings.mailgun_domain or LOCAL_DOMAIN


def sender(settings: Settings) -> str:
    """RELAY_MAIL_FROM, or relay@<sending domain>: never the submitter (DMARC)."""
    return settings.mail_from or f"relay@{sending_domain(settings)}"


def renderer_for(settings: Settings) -> Renderer:
    """The email renderer; ConfigError now (not at the first send) if delivery is misconfigured."""
    if settings.mailgun_api_key is not None and not settings.mailgun_domain:
        msg = "settings: RELAY_MAILGUN_DOMAIN must be set when RELAY_MAILGUN_API_KEY is"
        raise ConfigError(msg)
    folder = settings.email_templates_dir or default_email_templates_dir()
    if (
        not (folder / "submission.txt.j2").is_file()
        or not (folder / "submission.html.j2").is_file()
    ):
        msg = (
            f"{folder}: RELAY_EMAIL_TEMPLATES_DIR must hold submission.txt.j2 and "
            "submission.html.j2"
        )
        raise ConfigError(msg)
    return Renderer(
        folder,
        sender=sender(settings),
        domain=sending_domain(settings),
        default_language=settings.default_language,
        timezone=settings.timezone,
    )


def options_for(settings: Settings) -> Options:
    return Options(
        concurrency=settings.dispatch_concurrency,
        lease=timedelta(seconds=settings.dispatch_lease_seconds),
        poll_seconds=settings.dispatch_poll_seconds,
        stop_grace_seconds=settings.dispatch_stop_grace_seconds,
        body_retention=timedelta(days=settings.body_retention_days),
        delivered_hold=timedelta(hours=settings.delivered_body_hours),
        lookup_delay=timedelta(seconds=settings.resend_lookup_delay_seconds),
        policy=backoff.Policy(
            base=timedelta(seconds=settings.dispatch_backoff_base_seconds),
            cap=timedelta(seconds=settings.dispatch_backoff_cap_seconds),
            max_age=timedelta(hours=settings.dispatch_max_age_hours),
            pause_cap=timedelta(seconds=settings.dispatch_pause_max_seconds),
        ),
    )


@contextlib.asynccontextmanager
async def open_transport(
    settings: Settings, clock: Clock, metrics: Metrics | None = None
) -> AsyncIterator[Transport]:
    """Mailgun when RELAY_MAILGUN_API_KEY is set (one AsyncClient, closed on exit), else files.

    The client's transport is relay.mail.http's (HTTP/1.1 on asyncio, one connection per
    concurrent send): httpx's own cost about ten times the CPU per send."""
    if settings.mailgun_api_key is None:
        yield FileTransport(settings.var_dir / "mail", clock=clock)
        return
    assert settings.mailgun_domain  # noqa: S101 - renderer_for refused a key without a domain
    import httpx  # only with Mailgun: relay writing .eml files never loads it

    from relay.mail.http import Http1Transport
    from relay.mail.mailgun import MailgunTransport

    timeout = httpx.Timeout(settings.mailgun_timeout_seconds, connect=5.0)
    transport = Http1Transport(max_connections=settings.dispatch_concurrency)
    async with httpx.AsyncClient(timeout=timeout, transport=transport) as client:
        yield MailgunTransport(
            client,
            api_key=settings.mailgun_api_key.get_secret_value(),
            domain=settings.mailgun_domain,
            base_url=settings.mailgun_base_url,
            clock=clock,
            metrics=metrics,
        )


def build_dispatcher(
    settings: Settings,
    store: Store,
    transport: Transport,
    *,
    forms: dict[str, FormConfig],
    keyring: KeyRing,
    clock: Clock,
    lookup: Lookup | None = None,
    renderer: Renderer | None = None,
    metrics: Metrics | None = None,
    visitors: Callable[[], bool] = nobody,
) -> Dispatcher:
    """The dispatcher as settings describe it (the renderer may be built earlier, to fail fast);
    `visitors` says whether submissions are being answered on its loop (relay serve)."""
    return Dispatcher(
        store,
        transport,
        renderer or renderer_for(settings),
        forms=forms,
        keyring=keyring,
        clock=clock,
        lookup=lookup,
        options=options_for(settings),
        metrics=metrics,
        visitors=visitors,
    )


@contextlib.asynccontextmanager
async def running_delivery(
    settings: Settings,
    store: Store,
    *,
    forms: dict[str, FormConfig],
    keyring: KeyRing,
    clock: Clock,
    metrics: Metrics,
    transport: Transport | None = None,
    lookup: Lookup | None = None,
    renderer: Renderer | None = None,
    housekeeper: Housekeeper | None = None,
    visitors: Callable[[], bool] = nobody,
) -> AsyncIterator[Dispatcher]:
    """Everything that delivers, started together and stopped in reverse order.

    The transport; the reconciler (when RELAY_MAILGUN_READ_KEY is set), whose Logs API client
    also answers the dispatcher's "does Mailgun already have it?" after an ambiguous send;
    the dispatcher; and the alerts watch (which also reads `housekeeper`'s last error).
    `relay serve` (by default) and `relay worker` both run this.
    """
    async with contextlib.AsyncExitStack() as stack:
        if transport is None:
            transport = await stack.enter_async_context(open_transport(settings, clock, metrics))
        reconciler = Reconciler(store, settings, clock=clock, metrics=metrics)
        await reconciler.start()
        stack.push_async_callback(reconciler.stop)
        if lookup is None and reconciler.logs is not None:
            lookup = reconciler.logs.has_message
        dispatcher = build_dispatcher(
            settings,
            store,
            transport,
            forms=forms,
            keyring=keyring,
            clock=clock,
            lookup=lookup,
            renderer=renderer,
            metrics=metrics,
            visitors=visitors,
        )
        await dispatcher.start()
        stack.push_async_callback(dispatcher.stop)
        # issue 12: the alerts watch of this process (imported here: `relay serve` without a
        # dispatcher never loads it)
        from relay.ops.alerts import Alerter

        alerter = Alerter(
            settings,
            store,
            transport,
            clock=clock,
            sender=sender(settings),
            domain=sending_domain(settings),
            metrics=metrics,
            dispatcher=dispatcher,
            housekeeper=housekeeper,
            reconciler=reconciler if reconciler.configured else None,
        )
        await alerter.start()
        stack.push_async_callback(alerter.stop)
        yield dispatcher


@dataclass(frozen=True)
class WorkerRuntime:
    """What a running worker is made of; its HTTP endpoint (/readyz, /metrics) reads it."""

    settings: Settings
    store: Store
    dispatcher: Dispatcher
    metrics: Metrics
    clock: Clock


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings, clock: Clock, *, transport: Transport | None = None
) -> AsyncIterator[WorkerRuntime]:
    """A worker delivering (and purging) until the block exits; then it drains and closes.

    `transport` replaces the one the settings choose (tests, as with create_app)."""
    forms = load_forms(settings.effective_forms_file)
    keyring = load_keyring(settings, create=True)
    renderer = renderer_for(settings)
    metrics = Metrics()
    store = await Store.from_settings(settings, create=True, dispatching=True)
    housekeeper = Housekeeper(store, keyring, settings, clock, metrics=metrics)
    try:
        await store.require_schema()  # an empty database: one clear error, not one a second
        await housekeeper.start()
        async with running_delivery(
            settings,
            store,
            forms=forms,
            keyring=keyring,
            clock=clock,
            metrics=metrics,
            renderer=renderer,
            transport=transport,
            housekeeper=housekeeper,
        ) as dispatcher:
            yield WorkerRuntime(settings, store, dispatcher, metrics, clock)
    finally:
        await housekeeper.stop()
        await store.close()
    log.info("worker exited cleanly")


async def run_worker(settings: Settings, stop: asyncio.Event, clock: Clock) -> None:
    """`relay worker`: deliver (and purge) until `stop` is set (SIGTERM), then drain and close."""
    async with running_worker(settings, clock):
        await stop.wait()
