"""Real relay processes for the multi-instance suite: start, read their logs, stop or kill."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from tests.conftest import TEST_KEY


class Proc:
    """One `python -m relay ...` subprocess whose merged output is collected line by line."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.name = name
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "relay", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            with self._changed:
                self.lines.append(raw.decode("utf-8", "replace"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, seconds: float = 30) -> re.Match[str]:
        """The first match of `pattern` in the output; fails if the process exits first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + seconds
        with self._changed:
            while True:
                found = regex.search(self.output)
                if found:
                    return found
                if self.popen.poll() is not None and not self._reader.is_alive():
                    msg = f"{self.name} exited ({self.popen.returncode}):\n{self.output}"
                    raise AssertionError(msg)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.name}: no {pattern!r} in:\n{self.output}")
                self._changed.wait(min(left, 0.1))

    def port(self) -> int:
        """The port it listens on (started with port 0), from the line it logs once listening:
        `serving` (relay serve) or `worker answers …` (relay worker --http-port); JSON logs."""
        found = self.wait_for(r'"message": "(?:serving|worker answers[^"]*)", [^\n]*"port": (\d+)')
        return int(found.group(1))

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port()}"

    def signal(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def stop(self) -> None:
        """SIGTERM and wait; SIGKILL if it does not stop in 20 s."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGCONT)
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._reader.join(5)


def bare_env(**relay: str) -> dict[str, str]:
    """This process's environment without any RELAY_ setting, then `relay`'s (full names):
    a child relay sees only what its test gives it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env.update(relay)
    return env


def relay_env(tmp_path: Path, name: str, **settings: str) -> dict[str, str]:
    """The environment of one relay process: its own var/, the shared key, JSON logs."""
    env = bare_env()
    env.update(
        {
            # development: the fake Mailgun listens on plain http on this machine, which
            # production refuses; RELAY_SECRET_KEY is set, so no host makes a trial key
            "RELAY_ENVIRONMENT": "development",
            "RELAY_SECRET_KEY": TEST_KEY,
            "RELAY_VAR_DIR": str(tmp_path / f"var-{name}"),
            "RELAY_FORMS_FILE": str(tmp_path / "forms.toml"),
            "RELAY_LOG_FORMAT": "json",
        }
    )
    env.update({f"RELAY_{key.upper()}": value for key, value in settings.items()})
    return env


class FakeMailgunThread:
    """bench/fake_mailgun.py's app served in a thread on a port the kernel chose."""

    def __init__(self, latency_ms: float) -> None:
        import importlib.util
        import socket

        # loaded by path: bench/ is scripts, not a package (mypy sees it as top-level modules)
        path = Path(__file__).parent.parent / "bench" / "fake_mailgun.py"
        spec = importlib.util.spec_from_file_location("relay_test_fake_mailgun", path)
        assert spec is not None
        assert spec.loader is not None
        fake = sys.modules.get(spec.name) or importlib.util.module_from_spec(spec)
        if spec.name not in sys.modules:
            sys.modules[spec.name] = fake  # dataclasses look their module up there
            spec.loader.exec_module(fake)

        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        config = uvicorn.Config(
            fake.build_app(fake.Mix(latency_ms=latency_ms)),
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )
        self._thread.start()

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/stats", timeout=5).json())

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()


def json_lines(output: str) -> list[dict[str, Any]]:
    """The JSON log lines of a process's output (uvicorn's own lines are skipped)."""
    out = []
    for line in output.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out
