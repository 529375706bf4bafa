"""`relay serve` (HTTP and the dispatcher in one process) and `relay worker` (dispatcher alone)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Iterator

import click
import uvicorn

from relay import logs
from relay.app import create_app, create_worker_app
from relay.cli.common import run, settings_or_exit
from relay.clock import utcnow
from relay.config import Settings
from relay.deliver.delivery import running_worker
from relay.errors import ConfigError, RelayError
from relay.store.db import engine_for, require_schema

log = logging.getLogger("relay.worker")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
def serve(host: str, port: int) -> None:
    """Serve the forms (POST /f/{form_id}) on HOST:PORT, and deliver them.

    The dispatcher runs in the same process unless RELAY_DISPATCH_IN_SERVE=false. On SIGTERM
    it stops claiming, finishes or releases what is in flight, and the server exits.

    Example: relay serve --host 0.0.0.0 --port 8000
    """
    settings = settings_or_exit()
    logs.configure(settings.log_level, settings.log_format)
    try:
        app = create_app(settings)
    except RelayError as exc:
        raise click.ClickException(str(exc)) from None
    if not settings.migrates_on_start:
        run(_database_ready(settings))  # exit 1 naming the database and the fix, no traceback
    # access_log off: uvicorn's access lines carry the client's full IP address.
    uvicorn.run(
        app,
        host=host,
        port=port,
        access_log=False,
        log_level=settings.log_level.lower(),
        proxy_headers=False,
        server_header=False,
        ws="none",  # relay serves no WebSocket: nor is a WebSocket library loaded
    )


async def _database_ready(settings: Settings) -> None:
    """Reachable, with this release's schema; else a RelayError saying where and what to do."""
    engine = engine_for(settings)
    try:
        await require_schema(engine)
    finally:
        await engine.dispose()


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
        async with running_worker(settings, utcnow) as runtime:
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
    logs.configure(settings.log_level, settings.log_format)
    run(_worker_until_signalled(None if http_port is None else (http_host, http_port)))
