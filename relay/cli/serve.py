"""`relay serve` (HTTP and the dispatcher in one process) and `relay worker` (dispatcher alone)."""

from __future__ import annotations

import asyncio
import signal

import click
import uvicorn

from relay import logs
from relay.app import create_app
from relay.cli.common import run, settings_or_exit
from relay.clock import utcnow
from relay.config import Settings
from relay.delivery import run_worker
from relay.errors import RelayError
from relay.store.db import engine_for, require_schema


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
    )


async def _database_ready(settings: Settings) -> None:
    """Reachable, with this release's schema; else a RelayError saying where and what to do."""
    engine = engine_for(settings)
    try:
        await require_schema(engine)
    finally:
        await engine.dispose()


async def _worker_until_signalled() -> None:
    settings = settings_or_exit()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await run_worker(settings, stop, utcnow)


@click.command()
def worker() -> None:
    """Deliver queued submissions, without serving HTTP, until SIGTERM or Ctrl-C.

    Run any number beside `relay serve` (with RELAY_DISPATCH_IN_SERVE=false there) on the same
    PostgreSQL database: leases keep them from sending the same submission at once.

    Example: RELAY_DATABASE_URL=postgresql+asyncpg://relay@db/relay relay worker
    """
    settings = settings_or_exit()
    logs.configure(settings.log_level, settings.log_format)
    run(_worker_until_signalled())
