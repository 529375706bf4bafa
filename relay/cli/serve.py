"""`relay serve` (HTTP and the dispatcher in one process, or --workers web processes beside
the delivering one) and `relay worker` (dispatcher alone)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import click
import uvicorn
from starlette.applications import Starlette
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from relay import logs
from relay.app import create_app, create_worker_app
from relay.cli.common import clock, run, settings_or_exit
from relay.config import Settings, load_settings
from relay.deliver.delivery import running_worker
from relay.errors import ConfigError, RelayError
from relay.store import Store
from relay.store.db import HEAD, current_revision, engine_for, require_schema

log = logging.getLogger("relay.worker")


def _uvicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        # access_log off: uvicorn's access lines carry the client's full IP address.
        "access_log": False,
        "log_level": settings.log_level.lower(),
        "proxy_headers": False,
        "server_header": False,
        "ws": "none",  # relay serves no WebSocket: nor is a WebSocket library loaded
    }


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help='Port to listen on; 0 takes a free one, named in the "serving" log line.',
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Web processes sharing HOST:PORT; this one then delivers and restarts any that dies.",
)
def serve(host: str, port: int, workers: int) -> None:
    """Serve the forms (POST /f/{form_id}) on HOST:PORT, and deliver them.

    The dispatcher runs in the same process unless RELAY_DISPATCH_IN_SERVE=false. On SIGTERM
    it stops claiming, finishes or releases what is in flight, and the server exits. Once
    listening it logs one "serving" line with the host and port (with --port 0, the port the
    system chose). With --workers N, N processes serve the port and this one delivers (see
    the README).

    Example: relay serve --host 0.0.0.0 --port 8000 --workers 2
    """
    settings = settings_or_exit()
    logs.configure(settings.log_level, settings.log_format, buffered=True)
    try:
        app = create_app(settings, clock=clock())
    except RelayError as exc:
        raise click.ClickException(str(exc)) from None
    upgrade_apart(settings)
    if workers > 1:
        _serve_with_workers(settings, app, host, port, workers)
        return
    if not settings.migrates_on_start:
        run(_database_ready(settings))  # exit 1 naming the database and the fix, no traceback
    # What exists now (the app, its settings, templates and forms) lives as long as the
    # process: out of the collector's sight, a full collection no longer walks it.
    gc.collect()
    gc.freeze()
    server = _Announcing(uvicorn.Config(app, host=host, port=port, **_uvicorn_options(settings)))
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: uvicorn re-raises it once stopped
        server.run()
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)  # as uvicorn.run does; uvicorn said why


def upgrade_apart(settings: Settings) -> None:
    """Upgrade the embedded database, when it needs it, in a `relay db upgrade` process.

    Why: Alembic (with Mako and Pygments) would otherwise stay loaded, ~12 MB, for the life of
    a server that ran its migrations at start. The store then finds the schema current and
    imports none of it. One query when there is nothing to do; nothing without auto-migrate.
    """
    if not settings.migrates_on_start or run(_revision(settings)) == HEAD:
        return
    upgrade = [sys.executable, "-m", "relay", "db", "upgrade"]
    # its errors (which database, what to do) go to our stderr; its "at revision" line is ours
    done = subprocess.run(upgrade, check=False, stdout=subprocess.DEVNULL)  # noqa: S603 - relay itself
    if done.returncode:
        raise click.exceptions.Exit(done.returncode)
    log.info("database upgraded", extra={"revision": HEAD})


async def _revision(settings: Settings) -> str | None:
    engine = engine_for(settings)
    try:
        return await current_revision(engine)
    finally:
        await engine.dispose()


def web_worker_app() -> Starlette:
    """The app of one web process of `relay serve --workers N` (uvicorn imports it by name).

    It serves forms only (RELAY_DISPATCH_IN_SERVE is off in it): the parent process delivers.
    """
    settings = load_settings().model_copy(update={"dispatch_in_serve": False})
    logs.configure(settings.log_level, settings.log_format, buffered=True)
    app = create_app(settings, clock=clock())
    gc.freeze()  # what the import made lives as long as the process (see relay.cli._load)
    return app


def _serve_with_workers(
    settings: Settings, app: Starlette, host: str, port: int, workers: int
) -> None:
    """N web processes on one listening socket (uvicorn's supervisor: it restarts any that
    dies, and on SIGTERM stops them all gracefully), beside this process, which delivers.

    The parent first does, once, what must not be raced: the trial key is made (create_app,
    which also checked the settings), the database upgraded or checked. Then it runs the
    dispatcher and the Housekeeper (unless RELAY_DISPATCH_IN_SERVE=false) while the
    supervisor runs in a thread; the web processes open the store themselves.
    """
    config = uvicorn.Config(
        f"{__name__}:web_worker_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        **_uvicorn_options(settings),
    )
    run(_close(app))  # built for its checks only: each web process builds its own
    sock = config.bind_socket()
    supervisor = Multiprocess(config, sockets=[sock])  # its signal handlers
    _announce(sock)
    run(_deliver_while_supervising(settings, supervisor))
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        msg = "a web process could not start (its error is above); all were stopped"
        raise click.ClickException(msg)


async def _close(app: Starlette) -> None:
    """What create_app opened outside its lifespan (Redis clients, when configured)."""
    await app.state.limiter.close()
    await app.state.proof_ledger.close()


async def _deliver_while_supervising(settings: Settings, supervisor: Multiprocess) -> None:
    async with contextlib.AsyncExitStack() as stack:
        if settings.dispatch_in_serve:
            # the store is opened (and the schema checked) before any web process starts
            await stack.enter_async_context(running_worker(settings, clock()))
        else:
            store = await Store.from_settings(settings, create=True)
            try:
                await store.require_schema()
            finally:
                await store.close()
        # until SIGTERM or SIGINT (the supervisor's own handlers), then every process stops
        await asyncio.to_thread(supervisor.run)


async def _database_ready(settings: Settings) -> None:
    """Reachable, with this release's schema; else a RelayError saying where and what to do."""
    engine = engine_for(settings)
    try:
        await require_schema(engine)
    finally:
        await engine.dispose()


class _Announcing(uvicorn.Server):
    """uvicorn's server, which logs where it listens once it does: with --port 0, the port the
    system chose (one `"serving"` line with `host` and `port`)."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            _announce(self.servers[0].sockets[0])


def _announce(sock: socket.socket | Any) -> None:
    """The one `"serving"` line, with the host and the port `sock` listens on."""
    host, port = sock.getsockname()[:2]
    logging.getLogger("relay.serve").info("serving", extra={"host": host, "port": port})


class _QuietServer(uvicorn.Server):
    """uvicorn inside the worker's loop: the worker, not uvicorn, handles SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listen(http: tuple[str, int]) -> socket.socket:
    """Bind --http-port before the worker starts, so a port in use is a clean exit 1."""
    try:
        return socket.create_server(http)
    except OSError as exc:
        msg = f"--http-port: cannot listen on {http[0]}:{http[1]} ({exc.strerror or exc})"
        raise ConfigError(msg) from None


async def _worker_until_signalled(http: tuple[str, int] | None) -> None:
    settings = settings_or_exit()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    sock = _listen(http) if http is not None else None
    with sock or contextlib.nullcontext():
        async with running_worker(settings, clock()) as runtime:
            if sock is None:
                await stop.wait()
                return
            config = uvicorn.Config(
                create_worker_app(runtime),
                access_log=False,
                lifespan="off",
                log_level=settings.log_level.lower(),
                server_header=False,
            )
            server = _QuietServer(config)
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            log.info(
                "worker answers /healthz, /readyz and /metrics",
                extra={"port": sock.getsockname()[1]},
            )
            await stop.wait()
            server.should_exit = True
            await serving


@click.command()
@click.option(
    "--http-port",
    type=click.IntRange(0, 65535),
    help="Also serve /healthz, /readyz and /metrics on this port (default: no HTTP).",
)
@click.option(
    "--http-host", default="127.0.0.1", show_default=True, help="Address for --http-port."
)
def worker(http_port: int | None, http_host: str) -> None:
    """Deliver queued submissions, without serving forms, until SIGTERM or Ctrl-C.

    Run any number beside `relay serve` (with RELAY_DISPATCH_IN_SERVE=false there) on the same
    PostgreSQL database: leases keep them from sending the same submission at once. With
    --http-port it also answers /healthz, /readyz (ready when it can deliver) and /metrics.

    Example: RELAY_DATABASE_URL=postgresql+asyncpg://relay@db/relay relay worker --http-port 9101
    """
    settings = settings_or_exit()
    logs.configure(settings.log_level, settings.log_format, buffered=True)
    upgrade_apart(settings)
    run(_worker_until_signalled(None if http_port is None else (http_host, http_port)))
