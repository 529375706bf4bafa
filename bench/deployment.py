"""The default deployment under a burst: `relay serve` as `make run` starts it, the dispatcher
inside, no Mailgun key (each email becomes an .eml file), SQLite with its default FULL sync.

For each concurrency (16 and 64 clients by default) it measures, on fresh databases, in
--rounds pairs (which of the two goes first alternates; medians are printed, and the ratio is
the median of each pair's own ratio, as the machine's speed moves by a third from one minute
to the next):

1. the accept path alone (RELAY_DISPATCH_IN_SERVE=false): accepts/s and p99 over the burst;
2. the default deployment: accepts/s and p99 over the same burst, deliveries/s during the
   burst, then how long after the burst's end the last accepted submission is delivered
   (the drain), and the server's CPU per submission (accept + delivery, from /proc);

and last, what `relay serve` spends per delivery with no requests: a backlog filled with the
dispatcher off, then delivered by a fresh server (its start-up CPU taken off);

then checks that every accepted submission was delivered exactly once (one .eml file and
one `accepted` attempt each), and prints the ratios the targets are about (issue 11, point 3):
accepts >= 0.8x the dispatch-off rate with p99 <= 50 ms at 16 clients, drained within 2 s
of the burst's end at 16 clients, and >= 5x mailform's rate (its figures are in
/work/shared/reference/perf-baselines.md, case 7: 223 req/s at 16 clients, 553 at 64).

Needs `wrk` (apt-get install wrk). The per-client rate limits are lifted, as in
bench/accept.py: one load generator is one client. Run on a quiet machine:

    .venv/bin/python bench/deployment.py [--seconds 10] [--warmup 2] [--concurrency 16 64]
                                         [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from relay.crypto import generate_key

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accept import (  # the accept bench's helpers: one copy
    FIELDS,
    FORMS,
    cpu_seconds,
    free_port,
    relay_env,
    start,
    stop,
    write_lua,
    wrk,
)

#: mailform (Node/Express, SMTP in the request), perf-baselines.md case 7, req/s by clients
MAILFORM = {16: 223.0, 64: 553.0}
#: how often the bench counts delivered rows while it waits for the drain
POLL_SECONDS = 0.05
DRAIN_LIMIT_SECONDS = 300.0


@dataclass
class Burst:
    clients: int
    accepts_per_s: float
    p99_ms: float
    accepted: int
    errors: int
    deliveries_per_s: float = 0.0
    drain_s: float = 0.0
    cpu_ms_per_submission: float = 0.0


def delivered(db: Path) -> int:
    """Rows the dispatcher has handed to the transport (an .eml written: state `accepted`)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        row = conn.execute("SELECT count(*) FROM submissions WHERE state = 'accepted'").fetchone()
    return int(row[0])


def counts(db: Path) -> tuple[int, int, int]:
    """(submissions, distinct submissions with an `accepted` attempt, `accepted` attempts)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        rows = conn.execute("SELECT count(*) FROM submissions").fetchone()[0]
        sent, attempts = conn.execute(
            "SELECT count(DISTINCT submission_id), count(*) FROM delivery_attempts "
            "WHERE outcome = 'accepted'"
        ).fetchone()
    return int(rows), int(sent), int(attempts)


def wait_drained(db: Path, total: int) -> float:
    """Seconds until every stored row is delivered, and at least `total` (from now). Rows of
    requests still in flight when wrk stopped count too: they are stored, unanswered."""
    started = time.monotonic()
    while True:
        stored, sent, _ = counts(db)
        if sent >= max(total, stored):
            return time.monotonic() - started
        if time.monotonic() - started > DRAIN_LIMIT_SECONDS:
            raise SystemExit(f"not drained after {DRAIN_LIMIT_SECONDS} s")
        time.sleep(POLL_SECONDS)


def environment(var: Path, forms: Path, dispatch: bool) -> dict[str, str]:
    return relay_env(var, forms, RELAY_DISPATCH_IN_SERVE="true" if dispatch else "false")


def burst(
    workdir: Path, args: argparse.Namespace, clients: int, *, dispatch: bool
) -> tuple[Burst, Path]:
    """One fresh `relay serve`, a warm-up (drained when delivering), then the measured burst."""
    name = f"{'deliver' if dispatch else 'accept'}-c{clients}"
    var = workdir / name
    forms = workdir / "forms.toml"
    forms.write_text(FORMS, encoding="utf-8")
    port = free_port()
    cmd = [sys.executable, "-m", "relay", "serve", "--port", str(port)]
    proc = start(cmd, environment(var, forms, dispatch), port, workdir / f"{name}.log")
    db = var / "relay.db"
    script = write_lua(workdir, "json", json.dumps(FIELDS), "application/json")
    try:
        warm = wrk(port, script, clients, args.warmup)
        warm_ok = warm["requests"] - warm["non2xx"]
        if dispatch:
            wait_drained(db, warm_ok)
        cpu0, before = cpu_seconds(proc.pid), delivered(db) if dispatch else 0
        raw = wrk(port, script, clients, args.seconds)
        seconds = raw["duration_us"] / 1e6
        ok = raw["requests"] - raw["non2xx"]
        result = Burst(
            clients=clients,
            accepts_per_s=ok / seconds,
            p99_ms=raw["p99_us"] / 1000,
            accepted=ok,
            errors=raw["non2xx"] + raw["socket_errors"],
        )
        if dispatch:
            during = delivered(db) - before
            result.drain_s = wait_drained(db, warm_ok + ok)
            result.deliveries_per_s = during / seconds
            result.cpu_ms_per_submission = (cpu_seconds(proc.pid) - cpu0) / max(ok, 1) * 1000
    finally:
        stop(proc)
    return result, var


def backlog_cost(workdir: Path, seconds: int) -> tuple[int, float, float]:
    """The CPU `relay serve` spends per delivery, alone: fill the outbox with the dispatcher
    off, restart with it on, and time the drain (its start-up CPU, measured on an empty
    database, taken off). Returns (messages, ms of CPU each, messages/s)."""
    forms = workdir / "forms.toml"
    forms.write_text(FORMS, encoding="utf-8")
    script = write_lua(workdir, "json", json.dumps(FIELDS), "application/json")
    key = generate_key()
    cmd = [sys.executable, "-m", "relay", "serve", "--port"]
    var, empty = workdir / "backlog", workdir / "backlog-empty"

    def serve(folder: Path, dispatch: bool, log: str) -> tuple[subprocess.Popen[bytes], int]:
        env = environment(folder, forms, dispatch) | {"RELAY_SECRET_KEY": key}
        port = free_port()
        return start([*cmd, str(port)], env, port, workdir / log), port

    proc, port = serve(var, False, "backlog-fill.log")
    try:
        wrk(port, script, 16, seconds)
    finally:
        stop(proc)
    with sqlite3.connect(var / "relay.db") as conn:
        total = int(conn.execute("SELECT count(*) FROM submissions").fetchone()[0])
    proc, _ = serve(empty, True, "backlog-idle.log")
    try:
        time.sleep(2)
        start_up = cpu_seconds(proc.pid)
    finally:
        stop(proc)
    started = time.monotonic()
    proc, _ = serve(var, True, "backlog-drain.log")
    try:
        wait_drained(var / "relay.db", total)
        wall, cpu = time.monotonic() - started, cpu_seconds(proc.pid)
    finally:
        stop(proc)
    return total, (cpu - start_up) / total * 1000, total / wall


def check_once(var: Path) -> str:
    """Every stored submission delivered exactly once: one file, one `accepted` attempt."""
    rows, sent, attempts = counts(var / "relay.db")
    files = len(list((var / "mail").glob("*.eml")))
    if not rows == sent == attempts == files:
        raise SystemExit(
            f"DELIVERY MISMATCH: {rows} submissions, {sent} delivered, {attempts} accepted "
            f"attempts, {files} files"
        )
    return f"{rows} submissions, each delivered once ({files} .eml files)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument(
        "--rounds", type=int, default=3, help="alone/deployed pairs per concurrency"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/deployment.py needs wrk: apt-get install wrk")
    rows: list[list[tuple[Burst, Burst]]] = []
    with tempfile.TemporaryDirectory(prefix="relay-deploy-") as tmp:
        workdir = Path(tmp)
        for clients in args.concurrency:
            pairs: list[tuple[Burst, Burst]] = []
            for turn in range(args.rounds):
                print(f"{clients} clients, round {turn + 1} of {args.rounds}", flush=True)
                # which goes first alternates: a machine getting busier favours neither
                first = turn % 2 == 0
                alone = burst(workdir, args, clients, dispatch=False)[0] if first else None
                deployed, var = burst(workdir, args, clients, dispatch=True)
                print(f"  deployed: {check_once(var)}", flush=True)
                if alone is None:
                    alone = burst(workdir, args, clients, dispatch=False)[0]
                pairs.append((alone, deployed))
            rows.append(pairs)
        print("a backlog delivered by relay serve alone ...", flush=True)
        backlog = backlog_cost(workdir, args.warmup + 3)
    report([median_pair(pairs) for pairs in rows], rows)
    count, cpu_ms, rate = backlog
    print(
        f"\na backlog of {count} delivered by relay serve with no requests: {cpu_ms:.2f} ms of "
        f"CPU per message (start-up taken off), {rate:.0f} messages/s"
    )


def median_pair(pairs: list[tuple[Burst, Burst]]) -> tuple[Burst, Burst, float]:
    """Each figure's median over the rounds, and the median of the rounds' own ratios
    (deployed accepts / alone accepts, each pair measured one right after the other)."""

    def median(bursts: list[Burst]) -> Burst:
        figures = {
            name: statistics.median(getattr(b, name) for b in bursts)
            for name in ("accepts_per_s", "p99_ms", "deliveries_per_s", "drain_s",
                         "cpu_ms_per_submission")
        }  # fmt: skip
        return Burst(
            clients=bursts[0].clients,
            accepted=sum(b.accepted for b in bursts),
            errors=sum(b.errors for b in bursts),
            **figures,
        )

    ratio = statistics.median(d.accepts_per_s / a.accepts_per_s for a, d in pairs)
    return median([a for a, _ in pairs]), median([d for _, d in pairs]), ratio


def report(rows: list[tuple[Burst, Burst, float]], rounds: list[list[tuple[Burst, Burst]]]) -> None:
    print()
    print(
        f"{'c':>3s} {'alone/s':>8s} {'p99':>6s} {'accepts/s':>9s} {'x alone':>7s} {'p99 ms':>7s} "
        f"{'deliv/s':>8s} {'drain s':>7s} {'x mailform':>10s} {'cpu ms/sub':>10s} {'errors':>6s}"
    )
    for (alone, d, ratio), pairs in zip(rows, rounds, strict=True):
        mailform = MAILFORM.get(d.clients)
        vs_mailform = d.accepts_per_s / mailform if mailform else float("nan")
        print(
            f"{d.clients:3d} {alone.accepts_per_s:8.0f} {alone.p99_ms:6.1f} {d.accepts_per_s:9.0f} "
            f"{ratio:7.2f} {d.p99_ms:7.1f} "
            f"{d.deliveries_per_s:8.0f} {d.drain_s:7.2f} {vs_mailform:10.1f} "
            f"{d.cpu_ms_per_submission:10.2f} {d.errors:6d}"
        )
        each = ", ".join(
            f"{a.accepts_per_s:.0f}/{b.accepts_per_s:.0f} {b.accepts_per_s / a.accepts_per_s:.2f}"
            for a, b in pairs
        )
        print(f"    each round, alone / deployed: {each}")
    print(
        f"medians of {len(rounds[0]) if rounds else 0} rounds (x alone: the median of the rounds' "
        "own ratios). alone/s, p99: accepts with RELAY_DISPATCH_IN_SERVE=false; deliv/s: "
        "deliveries during the burst; drain s: from the burst's end to the last delivery; cpu: "
        "the server's, per accepted submission, over the burst and the drain"
    )
    by_c = {d.clients: (d, ratio) for _, d, ratio in rows}
    if 16 in by_c:
        d, ratio = by_c[16]
        checks = [
            ("accepts >= 0.8x the dispatch-off rate at 16", ratio >= 0.8),
            ("p99 <= 50 ms at 16", d.p99_ms <= 50),
            ("drained within 2 s of the burst's end at 16", d.drain_s <= 2),
        ]
        for name, ok in checks:
            print(f"target {name}: {'met' if ok else 'MISSED'}")
    for _, d, _ in rows:
        if d.clients in MAILFORM:
            ok = d.accepts_per_s >= 5 * MAILFORM[d.clients]
            print(f"target >= 5x mailform at {d.clients}: {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
