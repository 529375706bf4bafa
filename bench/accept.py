"""Accept-path benchmark: relay's POST /f/{form_id} against a bare Starlette 202, same run.

Prints accepted submissions per second, p50/p99 latency at 16 and 64 concurrent clients for
the JSON and the urlencoded paths, the ratios to the bare endpoint, the server's CPU per
request and peak RSS, and checks that every 2xx answer has its row in the database.

With `--workers 1 2`, the bare app and relay's JSON path are measured with each number of
processes (`relay serve --workers N`; ratios compare the same number); with
`--database-url postgresql+asyncpg://...`, relay's JSON path is measured on that PostgreSQL
database too (upgraded first; its rows are counted before and after, never deleted).

Needs `wrk` (Debian: apt-get install wrk). Usage:

    python bench/accept.py [--seconds 10] [--warmup 2] [--concurrency 16 64] [--workers 1 2]
                           [--database-url URL] [--rounds 3]

With `--rounds N` every case is measured N times, interleaved (bare, relay, bare, relay, ...),
and each figure printed is the median of its rounds: this machine is noisy.

Targets (issue "Fast and light"): JSON accept >= 0.25x bare at 16 clients (moonshot 0.35x),
p99 <= 20 ms at 16 clients, form path >= 0.8x the JSON path, <= 60 MB RSS, one worker; on
PostgreSQL, p99 <= 50 ms at 16 clients.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from relay.crypto import generate_key

ROOT = Path(__file__).resolve().parent.parent
FIELDS = {
    "name": "Jeanne Martin",
    "email": "jeanne.martin@example.fr",
    "phone": "06 12 34 56 78",
    "company": "Laboratoires Martin SA",
    "message": (
        "Bonjour, nous souhaiterions recevoir un devis pour 200 flacons de milieu de culture "
        "et connaître vos délais de livraison vers Lyon. Pouvez-vous aussi nous envoyer la "
        "fiche technique ? Merci d'avance, bien cordialement. " * 2
    ),
}
FORMS = """
[[forms]]
id = "contact"
recipients = ["sales@example.com"]
allowed_origins = ["https://www.example.com"]
legal_basis = "legitimate_interest"
notice_version = "2026-03-20"
subject = "Contact - {{ name }}"
max_body_bytes = 20000
"""
BARE_APP = """
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def accept(request):
    return JSONResponse({"ok": True}, status_code=202)

app = Starlette(routes=[Route("/f/{form_id}", accept, methods=["POST"])])
"""
#: wrk's report as one JSON line the benches read (shared by bench/flood.py); %% for LUA's %
WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"non2xx\\": %%d, "
    .. "\\"socket_errors\\": %%d, \\"p50_us\\": %%d, \\"p99_us\\": %%d}\\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""
LUA = (
    """
wrk.method = "POST"
wrk.body = %s
wrk.headers["Content-Type"] = "%s"
wrk.headers["Accept"] = "application/json"
"""
    + WRK_REPORT
)


@dataclass
class Result:
    case: str
    clients: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_req: float
    non2xx: int
    socket_errors: int
    requests: int


#: One load generator is one client: the limits are lifted so the limiter still runs on every
#: request (its cost is measured) but never refuses.
LIFTED_LIMITS = {
    "RELAY_RATE_LIMIT_CLIENT": "100000000/minute",
    "RELAY_RATE_LIMIT_FORM": "100000000/minute",
}


def relay_env(var: Path, forms: Path, *, limited: bool = False, **settings: str) -> dict[str, str]:
    """The environment of a benched `relay serve`: this shell's without RELAY_*, then its own
    var/, forms file and a fresh key, JSON logs, no dispatcher, the limits lifted (unless
    `limited`), and `settings` over all that."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env.update(
        RELAY_VAR_DIR=str(var),
        RELAY_FORMS_FILE=str(forms),
        RELAY_SECRET_KEY=generate_key(),
        RELAY_LOG_FORMAT="json",
        RELAY_DISPATCH_IN_SERVE="false",
    )
    if not limited:
        env.update(LIFTED_LIMITS)
    env.update(settings)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server on port {port} did not come up")


def tree(pid: int) -> list[int]:
    """The process and its descendants (the web processes of `--workers N`)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):  # per thread: the supervisor
            try:  # of --workers starts them from a thread of its own
                todo.extend(int(child) for child in (task / "children").read_text().split())
            except OSError:
                continue
    return out


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU used by the process and its descendants (the children alive now)."""
    return sum(_cpu(p) for p in tree(pid))


def _hwm(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of the process plus each of its descendants', in MB."""
    return sum(_hwm(p) for p in tree(pid))


def write_lua(workdir: Path, name: str, body: str, content_type: str) -> Path:
    path = workdir / f"{name}.lua"
    path.write_text(LUA % (json.dumps(body), content_type), encoding="utf-8")
    return path


def wrk(port: int, script: Path, clients: int, seconds: int) -> dict[str, int]:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{clients}",
            f"-d{seconds}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/f/contact",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    for line in out.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, int] = json.loads(line[7:])
            return result
    raise SystemExit("wrk printed no RESULT line:\n" + out)


def start(cmd: list[str], env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        proc = subprocess.Popen(cmd, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)
    wait_port(port)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def measure(
    case: str,
    proc: subprocess.Popen[bytes],
    port: int,
    script: Path,
    args: argparse.Namespace,
) -> tuple[list[Result], int]:
    results, ok = [], 0
    warm = wrk(port, script, 16, args.warmup)
    ok += warm["requests"] - warm["non2xx"]
    for clients in args.concurrency:
        cpu0 = cpu_seconds(proc.pid)
        raw = wrk(port, script, clients, args.seconds)
        cpu = cpu_seconds(proc.pid) - cpu0
        ok += raw["requests"] - raw["non2xx"]
        results.append(
            Result(
                case=case,
                clients=clients,
                rps=(raw["requests"] - raw["non2xx"]) / (raw["duration_us"] / 1e6),
                p50_ms=raw["p50_us"] / 1000,
                p99_ms=raw["p99_us"] / 1000,
                cpu_us_per_req=cpu / max(raw["requests"], 1) * 1e6,
                non2xx=raw["non2xx"],
                socket_errors=raw["socket_errors"],
                requests=raw["requests"],
            )
        )
    return results, ok


def times(workers: int) -> str:
    return "" if workers == 1 else f" x{workers}"


def on_cpu(cpu: int, cmd: list[str]) -> list[str]:
    """`cmd` held to the `cpu`-th of this process's CPUs (taskset), when there are two or more.
    A one-worker server and its load generator then each have a core: left to the scheduler on
    two shared cores, they sometimes share one for a while, and that window's rate falls by a
    third."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or shutil.which("taskset") is None:
        return cmd
    return ["taskset", "-c", str(cpus[cpu % len(cpus)]), *cmd]


def start_bare(
    workdir: Path, workers: int = 1, cpu: int | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """The bare Starlette app under uvicorn (uvloop, httptools), as relay serve runs: (process,
    port); held to one CPU when `cpu` is given (see `on_cpu`)."""
    (workdir / "bare_app.py").write_text(BARE_APP, encoding="utf-8")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(workdir)}
    cmd = [
        sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port),
        "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
        "--workers", str(workers),
    ]  # fmt: skip
    if cpu is not None:
        cmd = on_cpu(cpu, cmd)
    return start(cmd, env, port, workdir / "bare.log"), port


def run_bare(workdir: Path, args: argparse.Namespace, workers: int = 1) -> list[Result]:
    proc, port = start_bare(workdir, workers)
    try:
        script = write_lua(workdir, "bare", json.dumps(FIELDS), "application/json")
        results, _ = measure("bare 202", proc, port, script, args)
        for r in results:
            r.case = f"bare 202 (body unread){times(workers)}"
        return results
    finally:
        stop(proc)


def count_rows(env: dict[str, str], var: Path, database_url: str | None) -> int:
    """Rows in `submissions` (SQLite under `var`, or the PostgreSQL database)."""
    if database_url is None:
        with sqlite3.connect(var / "relay.db") as db:
            return int(db.execute("SELECT count(*) FROM submissions").fetchone()[0])
    code = (
        "import asyncio, sys\n"
        "from sqlalchemy import text\n"
        "from relay.store.db import create_engine\n"
        "async def main():\n"
        "    engine = create_engine(sys.argv[1])\n"
        "    async with engine.connect() as conn:\n"
        "        print((await conn.execute(text('SELECT count(*) FROM submissions'))).scalar())\n"
        "    await engine.dispose()\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, database_url], env=env, capture_output=True, text=True
    )
    if out.returncode:
        raise SystemExit(f"cannot count the rows of {database_url}:\n{out.stderr}")
    return int(out.stdout)


def run_relay(
    workdir: Path,
    args: argparse.Namespace,
    kind: str,
    workers: int = 1,
    database_url: str | None = None,
) -> tuple[list[Result], float]:
    name = f"{kind}{times(workers).strip()}{'-pg' if database_url else ''}"
    var = workdir / f"var-{name}"
    shutil.rmtree(var, ignore_errors=True)
    forms = workdir / "forms.toml"
    forms.write_text(FORMS, encoding="utf-8")
    port = free_port()
    # the accept path alone: delivery is measured by bench/dispatch.py (in a real deployment
    # under load, `relay worker` processes deliver beside `relay serve`)
    env = relay_env(var, forms, RELAY_LOG_LEVEL=args.log_level)
    before = 0
    if database_url is not None:
        env["RELAY_DATABASE_URL"] = database_url
        upgrade = [sys.executable, "-m", "relay", "db", "upgrade"]
        subprocess.run(upgrade, env=env, cwd=ROOT, check=True, capture_output=True)
        before = count_rows(env, var, database_url)
    cmd = [sys.executable, "-m", "relay", "serve", "--port", str(port), "--workers", str(workers)]
    proc = start(cmd, env, port, workdir / f"relay-{name}.log")
    if kind == "json":
        script = write_lua(workdir, "json", json.dumps(FIELDS), "application/json")
    else:
        script = write_lua(workdir, "form", urlencode(FIELDS), "application/x-www-form-urlencoded")
    case = f"relay {kind}{times(workers)}{' pg' if database_url else ''}"
    try:
        if workers > 1:
            wait_workers(proc, workers)
        results, ok = measure(case, proc, port, script, args)
        rss = peak_rss_mb(proc.pid)
    finally:
        stop(proc)
    count = count_rows(env, var, database_url) - before
    if count < ok:
        raise SystemExit(f"LOST SUBMISSIONS: {ok} answered 2xx but only {count} rows stored")
    print(f"  {case}: {ok} answered 2xx, {count} rows stored (none lost)", flush=True)
    return results, rss


def wait_workers(proc: subprocess.Popen[bytes], workers: int, seconds: float = 60) -> None:
    """Until the parent has its `workers` web processes (and a moment for them to start)."""
    deadline = time.monotonic() + seconds
    while len(tree(proc.pid)) < workers + 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2)  # each imports relay; the warm-up run follows anyway


@dataclass
class Run:
    """One server measured at each concurrency: which kind, how many processes, its peak RSS."""

    kind: str  # "bare", "json", "form", "json pg"
    workers: int
    results: list[Result]
    rss: float = 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1], help="process counts to compare (1 2)"
    )
    parser.add_argument("--database-url", help="also measure the JSON path on this PostgreSQL")
    parser.add_argument("--log-level", default="INFO", help="relay's RELAY_LOG_LEVEL")
    parser.add_argument(
        "--rounds", type=int, default=1, help="interleaved rounds; medians are reported (3)"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/accept.py needs wrk: apt-get install wrk")
    runs: list[Run] = []
    for number in range(args.rounds):
        if args.rounds > 1:
            print(f"round {number + 1} of {args.rounds}", flush=True)
        runs += one_round(args)
    report(medians(runs))


def medians(runs: list[Run]) -> list[Run]:
    """One Run per (kind, workers): each figure the median of its rounds (errors summed)."""
    merged: dict[tuple[str, int], list[Run]] = {}
    for run in runs:
        merged.setdefault((run.kind, run.workers), []).append(run)
    out = []
    for (kind, workers), same in merged.items():
        results = []
        for first in same[0].results:
            each = [r for run in same for r in run.results if r.clients == first.clients]
            results.append(
                Result(
                    case=first.case,
                    clients=first.clients,
                    rps=statistics.median(r.rps for r in each),
                    p50_ms=statistics.median(r.p50_ms for r in each),
                    p99_ms=statistics.median(r.p99_ms for r in each),
                    cpu_us_per_req=statistics.median(r.cpu_us_per_req for r in each),
                    non2xx=sum(r.non2xx for r in each),
                    socket_errors=sum(r.socket_errors for r in each),
                    requests=sum(r.requests for r in each),
                )
            )
        out.append(Run(kind, workers, results, max(run.rss for run in same)))
    return out


def one_round(args: argparse.Namespace) -> list[Run]:
    """Every case once: bare, JSON (and PostgreSQL) per process count, then the form path."""
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp:
        workdir = Path(tmp)
        for workers in args.workers:
            print(f"measuring bare Starlette{times(workers)} ...", flush=True)
            runs.append(Run("bare", workers, run_bare(workdir, args, workers)))
            print(f"measuring relay, JSON{times(workers)} ...", flush=True)
            runs.append(Run("json", workers, *run_relay(workdir, args, "json", workers)))
            if args.database_url:
                print(f"measuring relay, JSON on PostgreSQL{times(workers)} ...", flush=True)
                measured = run_relay(workdir, args, "json", workers, args.database_url)
                runs.append(Run("json pg", workers, *measured))
        print("measuring relay, urlencoded form ...", flush=True)
        runs.append(
            Run("form", args.workers[0], *run_relay(workdir, args, "form", args.workers[0]))
        )
    return runs


def report(runs: list[Run]) -> None:
    def find(kind: str, workers: int) -> dict[int, Result]:
        return {r.clients: r for run in runs if (run.kind, run.workers) == (kind, workers)
                for r in run.results}  # fmt: skip

    print()
    print(
        f"{'case':32s} {'c':>3s} {'req/s':>8s} {'x bare':>7s} {'x json':>7s} "
        f"{'p50 ms':>7s} {'p99 ms':>7s} {'cpu us/req':>10s} {'errors':>7s}"
    )
    for run in runs:
        bare, js = find("bare", run.workers), find("json", run.workers)
        for r in run.results:
            ratio = r.rps / bare[r.clients].rps
            vs_json = r.rps / js[r.clients].rps if run.kind == "form" else float("nan")
            print(
                f"{r.case:32s} {r.clients:3d} {r.rps:8.0f} {ratio:7.2f} {vs_json:7.2f} "
                f"{r.p50_ms:7.2f} {r.p99_ms:7.2f} {r.cpu_us_per_req:10.0f} "
                f"{r.non2xx + r.socket_errors:7d}"
            )
    print()
    for run in runs:
        if run.kind != "bare":
            print(
                f"peak RSS, relay {run.kind}{times(run.workers)}: {run.rss:.1f} MB (all processes)"
            )
    print("req/s counts 2xx answers only; errors = non-2xx answers + socket errors")
    one = min(run.workers for run in runs)
    bare, js = find("bare", one), find("json", one)
    form = next(run for run in runs if run.kind == "form")
    json_rss = next(run.rss for run in runs if (run.kind, run.workers) == ("json", one))
    c16 = 16 if 16 in bare else min(bare)
    checks = [
        ("JSON accept >= 0.25x bare", js[c16].rps / bare[c16].rps >= 0.25),
        ("(moonshot) JSON accept >= 0.35x bare", js[c16].rps / bare[c16].rps >= 0.35),
        (f"p99 <= 20 ms at {c16} clients", js[c16].p99_ms <= 20),
        ("form path >= 0.8x JSON", form.results[0].rps / js[form.results[0].clients].rps >= 0.8),
        ("peak RSS <= 60 MB", max(json_rss, form.rss) <= 60),
    ]
    for run in runs:
        if run.kind == "json pg":
            pg = {r.clients: r for r in run.results}
            label = f"PostgreSQL{times(run.workers)}: p99 <= 50 ms at {c16} clients"
            checks.append((label, pg[c16].p99_ms <= 50))
    for name, ok in checks:
        print(f"target {name}: {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
