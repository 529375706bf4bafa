"""A real `relay serve` for the browser suites: its own var/, a forms file, the test key."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_KEY


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def relay_serving(tmp_path: Path, forms_toml: str, **env_extra: str) -> Iterator[str]:
    """A real `relay serve` on `forms_toml` ({relay} is replaced by its own URL)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    forms = tmp_path / "forms.toml"
    port = _free_port()
    forms.write_text(forms_toml.replace("{relay}", f"http://127.0.0.1:{port}"), encoding="utf-8")
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
    command = [sys.executable, "-m", "relay", "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("relay serve did not start within 10 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        assert process.stderr is not None
        process.stderr.close()
