"""Benchmark: how fast `POST /webhooks/mailgun` answers on a real `relay serve` (SQLite).

Mailgun wants a quick answer (Hookdeck suggests well under 30 s; relay aims at milliseconds):
the handler verifies, does one group commit and answers. This starts relay on a free
127.0.0.1 port, accepts N submissions, then sends one signed `delivered` event for each from C
concurrent clients, and prints latency percentiles and throughput. Bounded; no network.

    .venv/bin/python bench/webhooks.py [N] [C]
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from relay.mail.events import signature_for

KEY = "bench-webhook-signing-key"
SUBMISSION = {
    "name": "Bench Person",
    "email": "bench@example.org",
    "message": "benchmark message",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _payload(submission_id: str) -> dict[str, object]:
    now = datetime.now(UTC)
    timestamp, token = str(int(now.timestamp())), secrets.token_hex(25)
    return {
        "signature": {
            "timestamp": timestamp,
            "token": token,
            "signature": signature_for(KEY.encode(), timestamp, token),
        },
        "event-data": {
            "id": secrets.token_urlsafe(16),
            "event": "delivered",
            "timestamp": now.timestamp(),
            "user-variables": {"submission_id": submission_id},
            "delivery-status": {"code": 250, "message": "OK"},
        },
    }


async def _run(url: str, total: int, concurrency: int) -> list[float]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        ids = []
        for _ in range(total):
            response = await client.post(
                "/f/contact", json=SUBMISSION, headers={"Accept": "application/json"}
            )
            ids.append(response.json()["id"])
        latencies: list[float] = []
        queue: asyncio.Queue[str] = asyncio.Queue()
        for sid in ids:
            queue.put_nowait(sid)

        async def worker() -> None:
            while not queue.empty():
                sid = queue.get_nowait()
                started = time.perf_counter()
                response = await client.post("/webhooks/mailgun", json=_payload(sid))
                latencies.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text  # noqa: S101 - a bench sanity check

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        print(f"{total} webhooks, {concurrency} concurrent clients: {total / elapsed:.0f}/s")
        return latencies


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "RELAY_VAR_DIR": str(Path(tmp) / "var"),
            "RELAY_SECRET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="),
            "RELAY_MAILGUN_WEBHOOK_SIGNING_KEY": KEY,
            "RELAY_LOG_LEVEL": "WARNING",
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "relay", "serve", "--port", str(port)], env=env
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    httpx.get(f"{url}/healthz", timeout=0.5)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            latencies = sorted(asyncio.run(_run(url, total, concurrency)))
        finally:
            server.terminate()
            server.wait(timeout=10)
    ms = [x * 1000 for x in latencies]
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"latency ms: p50 {statistics.median(ms):.1f}  p99 {p99:.1f}  max {ms[-1]:.1f}")


if __name__ == "__main__":
    main()
