"""A real `relay serve` for the browser suites: its own var/, a forms file, the test key."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import TEST_KEY
from tests.instances import Proc


def reserved_port() -> int:
    """A port nothing listens on yet (bound, then closed): only for an address that must be
    known before its server starts (see relay_serving); servers otherwise bind port 0."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def relay_serving(tmp_path: Path, forms_toml: str, **env_extra: str) -> Iterator[str]:
    """A real `relay serve` on `forms_toml`; yields its URL once it listens.

    It binds port 0 and names the port it got, unless the forms file holds `{relay}` (its
    own origin, an allowed origin for relay's example page): that must be written before it
    starts, so then a port is reserved first.
    """
    tmp_path.mkdir(parents=True, exist_ok=True)
    forms = tmp_path / "forms.toml"
    port = 0
    if "{relay}" in forms_toml:
        port = reserved_port()
        forms_toml = forms_toml.replace("{relay}", f"http://127.0.0.1:{port}")
    forms.write_text(forms_toml, encoding="utf-8")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "RELAY_VAR_DIR": str(tmp_path / "var"),
        "RELAY_FORMS_FILE": str(forms),
        "RELAY_SECRET_KEY": TEST_KEY,
        "RELAY_LOG_FORMAT": "json",
        "RELAY_DISPATCH_IN_SERVE": "false",
        **env_extra,
    }
    process = Proc("relay serve", ["serve", "--port", str(port)], env, tmp_path)
    try:
        yield process.url()
    finally:
        process.stop()
