"""`relay serve` as a real process: embedded defaults, trial key, clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(port: int, proc: subprocess.Popen[bytes], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"relay serve exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("relay serve did not start listening")


def test_serve_on_embedded_defaults_creates_trial_key_and_accepts(tmp_path: Path):
    """With no settings at all, `relay serve` creates var/secret.key (0600), says so,
    accepts a submission to the shipped `contact` form, and stops cleanly on SIGTERM."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env["RELAY_LOG_FORMAT"] = "json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "relay", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_up(port, proc)
        response = httpx.post(
            f"http://127.0.0.1:{port}/f/contact",
            json={"name": "Jeanne", "email": "jeanne@example.fr", "message": "Bonjour"},
            headers={"Accept": "application/json", "Origin": "http://localhost:8000"},
        )
        assert response.status_code == 202, response.text
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=20)[0].decode()
    # uvicorn re-raises the SIGTERM it handled once shutdown is complete: -15 is a clean stop.
    assert proc.returncode == -signal.SIGTERM, output
    assert "Application shutdown complete" in output
    key_file = tmp_path / "var" / "secret.key"
    assert key_file.exists()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert "created a random trial key" in output
    assert (tmp_path / "var" / "relay.db").exists()
    assert "jeanne" not in output.lower()


def test_serve_refuses_to_start_with_a_bad_forms_file(tmp_path: Path):
    """A malformed forms file stops start-up with exit 1 and a message naming it."""
    bad = tmp_path / "forms.toml"
    bad.write_text("[[forms]]\nid = 'x'\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env["RELAY_FORMS_FILE"] = str(bad)
    result = subprocess.run(
        [sys.executable, "-m", "relay", "serve", "--port", str(free_port())],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert f"{bad}: forms[0].recipients: Field required" in result.stderr
