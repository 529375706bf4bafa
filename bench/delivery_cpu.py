"""Delivery CPU: what one delivered message costs the dispatcher, in CPU time, step by step.

Seeds N queued submissions in a temporary database, then delivers them with one dispatcher
(the real one: claim, decrypt, render, build, write or send, record, the log lines), and
prints the process's CPU time per delivered message (user + system, every thread, measured
with time.process_time: steady on a shared machine, unlike messages/s). Transports:

- `file`: the .eml files of the default deployment (`make run`: no Mailgun key);
- `mailgun`: the real MailgunTransport against bench/fake_mailgun.py (its own process, so its
  CPU is not counted), at --latency-ms.

`--budget` also times each step alone over the same rows (claim, decrypt, render, build,
write or send, record, log line) and prints the table for docs/performance.md; `--profile`
prints the dispatcher's cProfile (main thread only: the SQLite writer thread is not in it).

Run: .venv/bin/python bench/delivery_cpu.py [--transport file|mailgun] [--count 2000]
     [--budget] [--profile] [--uvloop] [--database-url postgresql+asyncpg://127.0.0.1/test]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import pstats
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import uvloop
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from relay import logs
from relay.clock import utcnow
from relay.config import Settings, load_forms
from relay.crypto import KeyRing, generate_key
from relay.deliver.delivery import build_dispatcher, open_transport, renderer_for
from relay.deliver.dispatcher import view_of
from relay.deliver.outcomes import log_attempt
from relay.mail import eml
from relay.mail.eml import build_eml
from relay.mail.mailgun import MailgunTransport
from relay.mail.transport import RenderedEmail
from relay.store import Store, outbox
from relay.store import dispatch as db
from relay.store.db import is_sqlite, sqlite_path
from relay.store.delivery_stats import queue_stats

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from dispatch import configure, free_port, seed  # noqa: E402 - the bench's own module


def settings_for(folder: Path, database_url: str | None, port: int | None) -> Settings:
    values: dict[str, Any] = {
        "var_dir": folder,
        "secret_key": generate_key(),
        "log_level": "INFO",  # the default: one line per attempt, as `make run` writes them
        "log_format": "json",
    }
    if database_url:
        values["database_url"] = database_url
        values["auto_migrate"] = True  # a fresh database of the bench's own
    if port is not None:
        values |= {
            "mailgun_api_key": "bench-key-not-a-real-mailgun-key",
            "mailgun_domain": "mg.bench.test",
            "mailgun_base_url": f"http://127.0.0.1:{port}",
        }
    return Settings(**values)


@contextlib.contextmanager
def fake_mailgun(enabled: bool) -> Iterator[int | None]:
    if not enabled:
        yield None
        return
    port = free_port()
    command = [sys.executable, str(HERE / "fake_mailgun.py"), "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.asynccontextmanager
async def own_database(server_url: str | None) -> AsyncIterator[str | None]:
    """A fresh PostgreSQL database on the server of `server_url` (dropped afterwards), so the
    bench never touches the rows of the database it was pointed at; None for SQLite."""
    if server_url is None or is_sqlite(server_url):
        yield None
        return
    name = f"relay_bench_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield str(make_url(server_url).set(database=name))
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@contextlib.asynccontextmanager
async def opened(settings: Settings) -> AsyncIterator[Store]:
    store = await Store.from_settings(settings, create=True, dispatching=True)
    try:
        yield store
    finally:
        await store.close()


async def wait_for_fake(port: int, latency_ms: float) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as control:
        for _ in range(100):
            try:
                await control.get("/stats")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        await configure(control, latency_ms=latency_ms)


async def clear(store: Store) -> None:
    def job(conn: Connection) -> None:
        conn.execute(text("DELETE FROM delivery_attempts"))
        conn.execute(text("DELETE FROM submissions"))

    await store.write(job)


async def delivered(settings: Settings, store: Store) -> int:
    """Rows in state `accepted`. On SQLite read with the sqlite3 module (an index count, well
    under a millisecond): going through the store's pool cost more than what is measured."""
    url = settings.effective_database_url
    path = sqlite_path(url) if is_sqlite(url) else None
    if path is None:
        stats = await store.read(queue_stats())
        return stats.by_state.get("accepted", 0)
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        row = conn.execute("SELECT count(*) FROM submissions WHERE state = 'accepted'").fetchone()
    return int(row[0])


async def deliver_all(
    settings: Settings, store: Store, count: int, profile: bool
) -> dict[str, float]:
    """Seed `count`, deliver them all with one dispatcher; CPU and wall seconds."""
    keyring = KeyRing.from_text(settings.secret_key.get_secret_value())  # type: ignore[union-attr]
    await clear(store)
    await store.write(seed(keyring, count))
    async with open_transport(settings, utcnow) as transport:
        dispatcher = build_dispatcher(
            settings,
            store,
            transport,
            forms=load_forms(settings.effective_forms_file),
            keyring=keyring,
            clock=utcnow,
        )
        profiler = cProfile.Profile() if profile else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        await dispatcher.start()
        while await delivered(settings, store) < count:  # noqa: ASYNC110 - rows, no event
            await asyncio.sleep(0.2)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if profiler is not None:
            profiler.disable()
        await dispatcher.stop()
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(45)
        print(out.getvalue())
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(35)
        print(out.getvalue())
    return {"cpu": cpu, "wall": wall}


async def budget(settings: Settings, store: Store, count: int, transport_name: str) -> None:
    """Each step alone over `count` rows: CPU µs per message."""
    keyring = KeyRing.from_text(settings.secret_key.get_secret_value())  # type: ignore[union-attr]
    forms = load_forms(settings.effective_forms_file)
    renderer = renderer_for(settings)
    await clear(store)
    await store.write(seed(keyring, count))
    owner = "bench:1"
    lease = timedelta(seconds=120)
    rows: list[db.Claimed] = []
    results: dict[str, float] = {}

    def timed(name: str) -> Callable[[], None]:
        """Start timing a step; the returned function records its µs per message."""
        start = time.process_time()

        def done() -> None:
            results[name] = (time.process_time() - start) / count * 1e6

        return done

    done = timed("claim (20 a time)")
    while len(rows) < count:
        rows += await store.write(db.claim(owner, utcnow(), lease, 20))
    done()

    done = timed("decrypt")
    bodies = [outbox.open_body(keyring, row.id, row.body_enc or b"") for row in rows]
    done()

    done = timed("render")
    emails: list[RenderedEmail] = []
    for row, fields in zip(rows, bodies, strict=True):
        emails.append(renderer.render(view_of(row, fields), forms[row.form_id]))
    done()

    if transport_name == "file":
        done = timed("build .eml")
        datas = [build_eml(email, date=format_datetime(utcnow())) for email in emails]
        done()
        mail = settings.var_dir / "mail-budget"
        files = [(mail / f"{e.submission_id}.eml", d) for e, d in zip(emails, datas, strict=True)]
        done = timed("write .eml")
        write_all = getattr(eml, "_write_all", None)
        if write_all is None:  # relay before the batched writes: one trip per file
            mail.mkdir(parents=True, exist_ok=True)
            for path, data in files:
                await asyncio.to_thread(eml._write, path, data)
        else:
            for start in range(0, count, 20):  # 20 files a trip to the thread, as the transport
                await asyncio.to_thread(write_all, mail, files[start : start + 20])
        done()
    else:
        async with open_transport(settings, utcnow) as transport:
            assert isinstance(transport, MailgunTransport)  # noqa: S101
            done = timed("send (HTTP, 20 at a time)")
            for start in range(0, count, 20):
                await asyncio.gather(*(transport.send(e) for e in emails[start : start + 20]))
            done()

    done = timed("record (batches of 20)")
    now = utcnow()
    for start in range(0, count, 20):
        outcomes = [
            db.accepted(row.id, owner, f"<{row.id}@x>", db.Attempt(now, db.ACCEPTED, 200, 1))
            for row in rows[start : start + 20]
        ]
        await store.write(db.finish(outcomes))
    done()

    done = timed("log line (the attempt's)")
    for row in rows:
        log_attempt(row, "accepted", db.Attempt(now, db.ACCEPTED, 200, 1))
    done()

    for name, micros in results.items():
        print(f"  {name:<28} {micros:8.0f} µs")
    print(f"  {'sum of the steps':<28} {sum(results.values()):8.0f} µs")


async def main(args: argparse.Namespace) -> None:
    logs.configure("INFO", "json", buffered=True)  # as `relay worker` and `relay serve` do
    with tempfile.TemporaryDirectory() as tmp, fake_mailgun(args.transport == "mailgun") as port:
        if port is not None:
            await wait_for_fake(port, args.latency_ms)
        async with own_database(args.database_url) as url:
            settings = settings_for(Path(tmp), url, port)
            await measure(settings, args)


async def measure(settings: Settings, args: argparse.Namespace) -> None:
    """A warm-up, the measured run, and with --budget each step alone."""
    async with opened(settings) as store:
        await deliver_all(settings, store, 100, profile=False)  # warm-up
        figures = await deliver_all(settings, store, args.count, args.profile)
        per = figures["cpu"] / args.count * 1000
        print(
            f"{args.transport}: {args.count} delivered, {per:.2f} ms CPU per message, "
            f"{args.count / figures['wall']:.0f} messages/s wall (machine shared: "
            "the CPU figure is the one to compare)"
        )
        if args.budget:
            await budget(settings, store, args.count, args.transport)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="CPU per delivered message")
    parser.add_argument("--transport", choices=("file", "mailgun"), default="file")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--budget", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--uvloop", action="store_true", help="uvloop's loop, as relay serve")
    arguments = parser.parse_args()
    if arguments.uvloop:
        uvloop.run(main(arguments))
    else:
        asyncio.run(main(arguments))
