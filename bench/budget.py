"""The CPU budget of accepting one submission, step by step (issue 11, docs/performance.md).

Each step of POST /f/{form_id} is timed on its own, in this process, on the body bench/accept.py
sends: the best of several rounds of many calls, so another process on the machine inflates it
little. Then the whole request through the ASGI app (no server, no socket: what relay's code
costs) with 16 requests in flight, so the group writer commits batches as it does under load,
and the writer's share (the SQL of one row in a batch of 16, committed with synchronous=FULL).
What the server and the kernel cost per request is the bare Starlette app's CPU in
bench/accept.py (about 30 us here). Usage:

    python bench/budget.py [--requests 4000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accept import FIELDS, FORMS, relay_env

from relay import logs
from relay.accept.form_input import read_form
from relay.accept.intake import parse_body
from relay.accept.phones import normalise_phone
from relay.accept.submission import valid_email, validate_submission
from relay.config import load_settings
from relay.defence.verdict import screen_raw
from relay.ids import new_submission_id
from relay.store import outbox
from relay.web.prospect import prospect_of
from relay.web.submit import accepted_json

BODY = json.dumps(FIELDS).encode()
HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"content-type", b"application/json"),
    (b"accept", b"application/json"),
    (b"content-length", str(len(BODY)).encode()),
]


def best_us(fn: Callable[[], Any], number: int = 2000, repeat: int = 7) -> float:
    """Best per-call time over `repeat` rounds of `number` calls, in microseconds."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


class _Sink(io.TextIOBase):
    """Where the log lines go: formatted like a server's, written nowhere."""

    def write(self, text: str) -> int:
        return len(text)


def _settings(workdir: Path) -> Any:
    (workdir / "forms.toml").write_text(FORMS, encoding="utf-8")
    os.environ.update(relay_env(workdir / "var", workdir / "forms.toml"))
    settings = load_settings()
    logs.configure("INFO", "json")
    logging.getLogger("relay").handlers[0].setStream(_Sink())  # type: ignore[attr-defined]
    return settings


async def _lifespan(app: Any, state: dict[str, Any], body: Callable[[], Any]) -> Any:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox_: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}
    task = asyncio.create_task(app(scope, inbox.get, outbox_.put))
    started = await outbox_.get()
    if started["type"] != "lifespan.startup.complete":
        raise SystemExit(f"relay did not start: {started}")
    try:
        return await body()
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox_.get()
        await task


async def _post(app: Any, state: dict[str, Any]) -> int:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/f/contact", "raw_path": b"/f/contact", "query_string": b"",
        "root_path": "", "headers": HEADERS, "client": ("127.0.0.1", 5555),
        "server": ("127.0.0.1", 8000), "state": dict(state),
    }  # fmt: skip
    delivered = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": BODY, "more_body": False}
        await asyncio.Event().wait()
        raise AssertionError  # pragma: no cover - never woken

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def whole_requests(
    settings: Any, requests: int, clients: int = 16
) -> tuple[float, float, float, float]:
    """CPU per request (all threads), rows per batch, wall time per request, and the CPU of
    storing one row alone (the write job, 16 in flight)."""
    from relay.app import create_app

    app = create_app(settings)
    state: dict[str, Any] = {}

    async def run() -> tuple[float, float, float, float]:
        async def client(count: int) -> None:
            for _ in range(count):
                status = await _post(app, state)
                if status != 202:
                    raise SystemExit(f"a submission was answered {status}")

        await asyncio.gather(*(client(100 // clients) for _ in range(clients)))  # warm up
        writer = state["store"].writer
        batches0, rows0 = writer.batches, writer.rows
        wall0, cpu0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(client(requests // clients) for _ in range(clients)))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        done = requests // clients * clients
        per_batch = (writer.rows - rows0) / max(writer.batches - batches0, 1)
        store_us = await _store_only(app.state.deps, state["store"], requests // 2)
        return cpu / done * 1e6, per_batch, wall / done * 1e6, store_us

    figures: tuple[float, float, float, float] = asyncio.run(_lifespan(app, state, run))
    return figures


async def _store_only(deps: Any, store: Any, rows: int, clients: int = 16) -> float:
    """CPU per stored submission when only the write jobs run (16 in flight): the SQL, the
    commit and the writer's hand-offs, without the request around them."""
    form = deps.forms["contact"]
    raw = parse_body("application/json", BODY)
    form_input = read_form(raw, form, phone_region="FR")
    sub = form_input.submission
    prospect = prospect_of(deps.keyring, form, sub, raw)

    def row() -> outbox.NewSubmission:
        submission_id = new_submission_id()
        return outbox.NewSubmission(
            id=submission_id,
            form_id=form.id,
            received_at=deps.clock(),
            legal_basis=form.legal_basis.value,
            notice_version=form.notice_version,
            consent_given=False,
            consent_wording_version=None,
            body_enc=outbox.seal_body(deps.keyring, submission_id, form_input.body()),
            subject_mac=prospect.email_mac,
            quarantine_reason=None,
        )

    jobs = [outbox.accept(row(), None, prospect) for _ in range(rows)]

    async def client(mine: list[Any]) -> None:
        for job in mine:
            await store.write(job)

    cpu0 = time.process_time()
    await asyncio.gather(*(client(jobs[i::clients]) for i in range(clients)))
    return (time.process_time() - cpu0) / rows * 1e6


def steps(settings: Any) -> list[tuple[str, float]]:
    from relay.app import create_app

    app = create_app(settings)
    deps = app.state.deps
    form = deps.forms["contact"]
    keyring = deps.keyring
    raw = parse_body("application/json", BODY)
    now = deps.clock()
    form_input = read_form(raw, form, phone_region=settings.phone_default_region)
    sub = form_input.submission
    submission_id = new_submission_id()
    line = logs.RepeatedLine(
        logging.getLogger("relay.submit"), logging.INFO, "submission accepted", {"form": "x"}
    )
    return [
        ("parse the JSON body", best_us(lambda: parse_body("application/json", BODY))),
        ("honeypot", best_us(lambda: screen_raw(raw, form))),
        (
            "validate: all fields (pydantic model)",
            best_us(lambda: validate_submission(raw, phone_region="FR")),
        ),
        (
            "  of which the email (a plain address: one regex)",
            best_us(lambda: valid_email(FIELDS["email"])),
        ),
        (
            "  of which the phone (national: the fast path)",
            best_us(lambda: normalise_phone(FIELDS["phone"], "FR")),
        ),
        (
            "validate: the form (fields, Formspree's names)",
            best_us(lambda: read_form(raw, form, phone_region="FR")),
        ),
        ("content rules and time trap", best_us(lambda: _screen(form, sub, now))),
        ("keyed hashes of the email", best_us(lambda: keyring.macs(sub.email))),
        (
            "prospect record (hashes, 4 fields sealed)",
            best_us(lambda: prospect_of(keyring, form, sub, raw)),
        ),
        (
            "seal the body (JSON, AES-GCM)",
            best_us(lambda: outbox.seal_body(keyring, submission_id, form_input.body())),
        ),
        ("submission id (UUIDv7)", best_us(new_submission_id)),
        (
            "the answer's JSON",
            best_us(lambda: accepted_json("https://x/f/c/thanks", submission_id)),
        ),
        ("the log line", best_us(lambda: line.emit(submission_id=submission_id))),
        ("metrics (one counter)", best_us(lambda: deps.metrics.submission("contact", "accepted"))),
    ]


def _screen(form: Any, sub: Any, now: Any) -> Any:
    from relay.defence.verdict import screen_fields

    return screen_fields(form, email=sub.email, message=sub.message, now=now)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="relay-budget-") as tmp:
        settings = _settings(Path(tmp))
        measured = steps(settings)
        cpu, per_batch, wall, store_us = whole_requests(settings, args.requests)
    print(f"{'step (one JSON submission, best of 7 rounds)':52s} {'CPU us':>7s}")
    for name, us in measured:
        print(f"{name:52s} {us:7.1f}")
    parts = sum(
        us for name, us in measured if not name.startswith(("  ", "validate: all"))
    )  # the form's validation includes the model's
    print(f"{'sum of the steps above (the form once)':52s} {parts:7.1f}")
    print()
    print(f"whole request through the ASGI app, 16 in flight: {cpu:.0f} us of CPU (all threads)")
    print(f"  rows per group commit: {per_batch:.1f}; wall time per request: {wall:.0f} us")
    print(f"  storing it (write job: SQL, commit, hand-offs; measured alone): {store_us:.0f} us")
    rest = cpu - parts - store_us
    print(f"  the rest (ASGI app, routing, limits, glue): {rest:.0f} us")
    print("add the server and kernel: the bare Starlette app's CPU per request (bench/accept.py)")


if __name__ == "__main__":
    main()
