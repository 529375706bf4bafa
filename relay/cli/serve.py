"""`relay serve`: the HTTP server (and, from the next issue on, the dispatcher) in one process."""

from __future__ import annotations

import click
import uvicorn

from relay import logs
from relay.app import create_app
from relay.cli.common import settings_or_exit
from relay.errors import RelayError


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
def serve(host: str, port: int) -> None:
    """Serve the forms (POST /f/{form_id}) on HOST:PORT.

    Example: relay serve --host 0.0.0.0 --port 8000
    """
    settings = settings_or_exit()
    logs.configure(settings.log_level, settings.log_format)
    try:
        app = create_app(settings)
    except RelayError as exc:
        raise click.ClickException(str(exc)) from None
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
