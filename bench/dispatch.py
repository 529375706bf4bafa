"""Delivery benchmark: one dispatcher (the real MailgunTransport) against bench/fake_mailgun.py.

Prints, for one worker (RELAY_DISPATCH_CONCURRENCY, default 20):
1. delivered messages/s at 50 ms and at 200 ms Mailgun latency (no errors);
2. 10,000 submissions under 20 % 5xx + 5 % 429 + 5 % timeouts at 50 ms: whether every one
   ends `accepted`, and how many duplicates the fake server saw, first with the default
   (resend after an ambiguous timeout, same Message-Id) and then with a lookup that asks the
   fake server (standing in for Mailgun's Logs API) before resending.

Bounded in time: the backoff is shortened for the bench (base 0.05 s, cap 0.5 s), the
client timeout is 1 s, 429s ask for 1 s, and a run that does not finish in --limit seconds
fails. Everything runs on 127.0.0.1; the database is a temporary SQLite file.

Run: .venv/bin/python bench/dispatch.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy.engine import Connection

from relay.clock import utcnow
from relay.config import Settings, load_forms
from relay.crypto import KeyRing, generate_key
from relay.deliver.delivery import build_dispatcher, open_transport
from relay.ids import new_submission_id
from relay.store import Store, outbox
from relay.store.delivery_stats import queue_stats

HERE = Path(__file__).resolve().parent
BODY = {
    "name": "Bench Person",
    "email": "bench@example.org",
    "phone": "+33612345678",
    "company": "Bench SARL",
    "message": "Hello,\nthis is a benchmark message.\n" * 5,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed(keyring: KeyRing, count: int) -> Callable[[Connection], None]:
    """One write job that queues `count` submissions the way the accept endpoint does."""
    now = utcnow()
    rows = []
    for _ in range(count):
        sid = new_submission_id()
        rows.append(
            outbox.NewSubmission(
                id=sid,
                form_id="contact",
                received_at=now,
                legal_basis="legitimate_interest",
                notice_version="2026-03-20",
                consent_given=False,
                consent_wording_version="v1",
                body_enc=outbox.seal_body(keyring, sid, BODY),
                subject_mac=keyring.mac(BODY["email"]),
            )
        )

    jobs = [outbox.accept(row) for row in rows]

    def job(conn: Connection) -> None:
        outbox.AcceptJob.run_many(conn, jobs)  # in bulk, as the group writer runs accepts

    return job


async def run(
    settings: Settings,
    count: int,
    limit: float,
    lookup: Callable[[str], Awaitable[bool | None]] | None = None,
) -> tuple[float, dict[str, int]]:
    """Queue `count` submissions, deliver them with one dispatcher; (seconds, final states)."""
    assert settings.secret_key is not None  # noqa: S101 - settings_for always sets one
    keyring = KeyRing.from_text(settings.secret_key.get_secret_value())
    store = await Store.open(settings.effective_database_url, migrate=True, synchronous="NORMAL")
    try:
        await store.write(seed(keyring, count))
        async with open_transport(settings, utcnow) as transport:
            dispatcher = build_dispatcher(
                settings,
                store,
                transport,
                forms=load_forms(settings.effective_forms_file),
                keyring=keyring,
                clock=utcnow,
                lookup=lookup,
            )
            started = time.perf_counter()
            await dispatcher.start()
            counts: dict[str, int] = {}
            while time.perf_counter() - started < limit:
                await asyncio.sleep(0.05)  # the end is seen within 50 ms
                counts = await state_counts(store)
                if counts.get("accepted", 0) == count:
                    break
            elapsed = time.perf_counter() - started
            await dispatcher.stop()
        return elapsed, await state_counts(store)
    finally:
        await store.close()


async def state_counts(store: Store) -> dict[str, int]:
    """How many submissions are in each state (states with none left out)."""
    stats = await store.read(queue_stats())
    return {state: n for state, n in stats.by_state.items() if n}


def settings_for(folder: Path, port: int, name: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "var_dir": folder / name,
        "secret_key": generate_key(),
        "mailgun_api_key": "bench-key-not-a-real-mailgun-key",
        "mailgun_domain": "mg.bench.test",
        "mailgun_base_url": f"http://127.0.0.1:{port}",
        "mailgun_timeout_seconds": 1.0,
        "dispatch_lease_seconds": 10,
        "dispatch_poll_seconds": 0.05,
        "dispatch_backoff_base_seconds": 0.05,
        "dispatch_backoff_cap_seconds": 0.5,
        # the fake answers /taken at once: no need to wait for Mailgun's logs to catch up
        "resend_lookup_delay_seconds": 0,
        "sqlite_synchronous": "NORMAL",
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(**values)


async def configure(control: httpx.AsyncClient, **mix: float) -> None:
    defaults = {"latency_ms": 50, "p5xx": 0, "p429": 0, "ptimeout": 0}
    response = await control.post("/config", json={**defaults, **mix})
    response.raise_for_status()


def start_fake_mailgun() -> tuple[subprocess.Popen[bytes], int]:
    """bench/fake_mailgun.py in its own process, so it does not share the relay's CPU core."""
    port = free_port()
    command = [sys.executable, str(HERE / "fake_mailgun.py"), "--port", str(port)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL), port


async def main(port: int, quick: bool, limit: float) -> int:
    failures = 0
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as control:
        for _ in range(100):
            try:
                await control.get("/stats")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            concurrency = settings_for(folder, port, "probe").dispatch_concurrency
            print(f"one worker, RELAY_DISPATCH_CONCURRENCY={concurrency}, SQLite (NORMAL)")
            for latency, count in ((50, 500 if quick else 3000), (200, 300 if quick else 1000)):
                await configure(control, latency_ms=latency)
                settings = settings_for(folder, port, f"lat{latency}")
                seconds, states = await run(settings, count, limit)
                ok = states.get("accepted", 0) == count
                failures += not ok
                print(
                    f"latency {latency:>3} ms: {count} delivered in {seconds:.2f} s = "
                    f"{count / seconds:.0f} messages/s {'' if ok else f'INCOMPLETE {states}'}"
                )

            total = 1000 if quick else 10_000
            mix = {"latency_ms": 50, "p5xx": 0.20, "p429": 0.05, "ptimeout": 0.05}

            async def ask_fake(submission_id: str) -> bool | None:
                message_id = quote(f"<{submission_id}@mg.bench.test>", safe="")
                try:
                    answer = await control.get(f"/taken/{message_id}")
                    return bool(answer.json()["taken"])
                except httpx.HTTPError:
                    return None

            for label, lookup in (("no lookup (resend)", None), ("with lookup", ask_fake)):
                await configure(control, **mix)
                settings = settings_for(folder, port, f"mix-{lookup is None}")
                seconds, states = await run(settings, total, limit, lookup)
                stats = (await control.get("/stats")).json()
                ok = states == {"accepted": total}
                failures += not ok
                print(
                    f"error mix 20% 5xx + 5% 429 + 5% timeouts, {label}: {total} submissions, "
                    f"all accepted: {'yes' if ok else f'NO {states}'}; {seconds:.1f} s; "
                    f"requests {stats['requests']} {stats['by_status']}; "
                    f"duplicates seen by the fake server: {stats['duplicates']}"
                )
    return 1 if failures else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="delivery benchmark against a local fake")
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke test)")
    parser.add_argument("--limit", type=float, default=240.0, help="seconds allowed per run")
    arguments = parser.parse_args()
    fake, fake_port = start_fake_mailgun()
    try:
        code = asyncio.run(main(fake_port, arguments.quick, arguments.limit))
    finally:
        fake.terminate()
        fake.wait(timeout=10)
    sys.exit(code)
