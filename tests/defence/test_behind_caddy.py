"""A real reverse proxy (Debian's caddy) in front of a real `relay serve`: visitors are told
apart by the address caddy saw, and no visitor can spoof or poison another's counter."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser_support import reserved_port
from tests.conftest import FORMS_TOML, TEST_KEY, service_missing
from tests.helpers import ORIGIN, VALID
from tests.instances import Proc, bare_env

pytestmark = [pytest.mark.slow, pytest.mark.proxy]

VISITOR_A, VISITOR_B = "127.0.0.2", "127.0.0.3"  # loopback addresses a test may bind to

CADDYFILE = """{{
\tadmin off
\tauto_https off
}}
:{proxy_port} {{
\tbind 127.0.0.1
\treverse_proxy 127.0.0.1:{relay_port}
\tlog {{
\t\toutput discard
\t}}
}}
"""


def _wait_until_up(port: int, proc: subprocess.Popen[bytes], seconds: float = 20) -> None:
    """Caddy logs nothing we could wait on (its log is discarded): poll its port, bounded."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"caddy exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("caddy did not start listening")


def _stop(proc: subprocess.Popen[bytes]) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=20)[0].decode(errors="replace")
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[0].decode(errors="replace")


@pytest.fixture(name="proxied_relay")
def fixture_proxied_relay(tmp_path: Path) -> Iterator[str]:
    """`relay serve` trusting 127.0.0.1, behind caddy on another port; yields caddy's URL."""
    caddy = shutil.which("caddy")
    if caddy is None:
        service_missing("caddy (Debian package)", FileNotFoundError("caddy"))
    forms = tmp_path / "forms.toml"
    forms.write_text(FORMS_TOML, encoding="utf-8")
    env = bare_env(
        RELAY_FORMS_FILE=str(forms),
        RELAY_VAR_DIR=str(tmp_path / "var"),
        RELAY_SECRET_KEY=TEST_KEY,
        RELAY_DISPATCH_IN_SERVE="false",
        RELAY_TRUSTED_PROXIES="127.0.0.1",
        RELAY_RATE_LIMIT_CLIENT="2/minute",
        RELAY_LOG_FORMAT="json",
    )
    relay = Proc("relay serve", ["serve", "--port", "0"], env, tmp_path)
    try:
        proxy_port = reserved_port()  # caddy cannot report a port it chose
        config = tmp_path / "Caddyfile"
        config.write_text(CADDYFILE.format(proxy_port=proxy_port, relay_port=relay.port()))
        caddy_env = {
            **os.environ,
            "HOME": str(tmp_path),
            "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
            "XDG_CONFIG_HOME": str(tmp_path / "xdg-config"),
        }
        proxy = subprocess.Popen(
            [str(caddy), "run", "--config", str(config), "--adapter", "caddyfile"],
            env=caddy_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_up(proxy_port, proxy)
            yield f"http://127.0.0.1:{proxy_port}"
        finally:
            _stop(proxy)
    finally:
        relay.stop()
    assert VISITOR_A not in relay.output
    assert VISITOR_B not in relay.output


def _post(base: str, source: str, headers: dict[str, str] | None = None) -> int:
    """One JSON submission from the loopback address `source`, through caddy."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=10) as client:
        response = client.post(
            f"{base}/f/contact",
            json=VALID,
            headers={"Accept": "application/json", "Origin": ORIGIN, **(headers or {})},
        )
    return response.status_code


def test_two_visitors_get_separate_limits(proxied_relay):
    """Visitor A reaching the per-client limit leaves visitor B's submissions untouched."""
    assert [_post(proxied_relay, VISITOR_A) for _ in range(3)] == [202, 202, 429]
    assert [_post(proxied_relay, VISITOR_B) for _ in range(2)] == [202, 202]


def test_forged_forwarding_headers_neither_spoof_nor_poison(proxied_relay):
    """A visitor sending X-Forwarded-For / Forwarded naming another visitor is still counted
    as themselves: the forged headers neither escape their own limit nor spend the other's."""
    forged = {"X-Forwarded-For": VISITOR_B, "Forwarded": f"for={VISITOR_B}"}
    assert [_post(proxied_relay, VISITOR_A, forged) for _ in range(3)] == [202, 202, 429]
    assert [_post(proxied_relay, VISITOR_B) for _ in range(2)] == [202, 202]
