"""`relay serve` as a real process: embedded defaults, trial key, clean stop on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.instances import Proc, bare_env

pytestmark = pytest.mark.slow


def test_serve_on_embedded_defaults_creates_trial_key_and_accepts(tmp_path: Path):
    """With no settings at all, `relay serve --port 0` listens on a free port and names it,
    creates var/secret.key (0600), says so, accepts a submission to the shipped `contact`
    form, and stops cleanly on SIGTERM."""
    env = bare_env(RELAY_LOG_FORMAT="json")
    proc = Proc("relay serve", ["serve", "--port", "0"], env, tmp_path)
    try:
        response = httpx.post(
            f"{proc.url()}/f/contact",
            json={"name": "Jeanne", "email": "jeanne@example.fr", "message": "Bonjour"},
            headers={"Accept": "application/json", "Origin": "http://localhost:8000"},
        )
        assert response.status_code == 202, response.text
    finally:
        proc.stop()
    output = proc.output
    # uvicorn re-raises the SIGTERM it handled once shutdown is complete: -15 is a clean stop.
    assert proc.popen.returncode == -signal.SIGTERM, output
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
    env = bare_env(RELAY_FORMS_FILE=str(bad))
    result = subprocess.run(
        [sys.executable, "-m", "relay", "serve", "--port", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert f"{bad}: forms[0].recipients: Field required" in result.stderr


def test_serve_exits_3_when_its_port_is_taken(tmp_path: Path):
    """A port already in use stops start-up with uvicorn's exit code 3 and its reason, and no
    `serving` line."""
    env = bare_env(RELAY_LOG_FORMAT="json")
    first = Proc("first", ["serve", "--port", "0"], env, tmp_path)
    try:
        taken = str(first.port())
        result = subprocess.run(
            [sys.executable, "-m", "relay", "serve", "--port", taken],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        first.stop()
    assert result.returncode == 3, result.stderr
    assert "address already in use" in result.stderr.lower()
    assert '"serving"' not in result.stderr
