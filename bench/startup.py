"""Start-up and memory benchmark: how soon relay answers, and how much memory it holds.

Prints, each the median of --runs starts:

- `relay --help` wall time;
- `relay serve` wall time from the exec to the first 200 of GET /healthz, on a database
  created by a first start (whose time is printed too: it runs the migrations);
- the resident memory (VmRSS) of an idle `relay serve` a second after it answered, and how
  much of it is file-backed (RssFile: the interpreter and extension modules, shared with
  other processes that map them);
- its peak resident memory (VmHWM) after --submissions JSON submissions from --concurrency
  clients (httpx), and that every 2xx answer has its row in the database.

`relay serve` runs on its defaults (SQLite under a fresh var/, the dispatcher writing .eml
files) with one forms file and the rate limits lifted, from relay's modules compiled to
bytecode first, as an installed relay is (pip compiles them at install; an environment with
PYTHONDONTWRITEBYTECODE would otherwise compile relay's 19,000 lines at every start). Usage:

    python bench/startup.py [--runs 5] [--submissions 2000] [--concurrency 16]

Targets (issue "Fast and light"): `relay --help` <= 0.3 s, /healthz <= 0.4 s after start,
idle <= 50 MB, peak <= 60 MB under load.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from accept import FORMS, cpu_seconds, free_port, relay_env  # the accept bench's helpers

ROOT = Path(__file__).resolve().parent.parent
FIELDS = {
    "name": "Jeanne Martin",
    "email": "jeanne.martin@example.fr",
    "phone": "06 12 34 56 78",
    "message": "Bonjour, pouvez-vous nous envoyer un devis pour 200 flacons ? Merci.",
}


def relay_command() -> list[str]:
    """The console script beside this interpreter (what users run), else `python -m relay`."""
    script = Path(sys.executable).parent / "relay"
    return [str(script)] if script.exists() else [sys.executable, "-m", "relay"]


def memory_mb(pid: int, field: str) -> float:
    """VmRSS (resident now), RssFile (of it, file-backed) or VmHWM (resident peak), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def healthz_ok(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def environment(workdir: Path, var: Path) -> dict[str, str]:
    forms = workdir / "forms.toml"
    forms.write_text(FORMS, encoding="utf-8")
    return relay_env(var, forms, RELAY_LOG_LEVEL="WARNING", RELAY_DISPATCH_IN_SERVE="true")


def time_help(env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([*relay_command(), "--help"], env=env, capture_output=True, check=True)
    return time.perf_counter() - started


class Serving:
    """One `relay serve` process, timed from its exec to its first 200 on /healthz."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        command = [*relay_command(), "serve", "--port", str(self.port)]
        with log.open("ab") as handle:
            self.started = time.perf_counter()
            self.proc = subprocess.Popen(command, env=env, stdout=handle, stderr=handle, cwd=ROOT)
        deadline = self.started + 30
        while not healthz_ok(self.port):
            if self.proc.poll() is not None or time.perf_counter() > deadline:
                self.stop()
                raise SystemExit(f"relay serve did not answer /healthz; see {log}")
            time.sleep(0.005)
        self.ready_after = time.perf_counter() - self.started
        self.cpu = cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def submit(port: int, count: int, concurrency: int) -> int:
    """POST `count` JSON submissions from `concurrency` clients; the number answered 2xx."""
    url = f"http://127.0.0.1:{port}/f/contact"
    headers = {"Accept": "application/json", "Origin": "https://www.example.com"}
    remaining = iter(range(count))
    accepted = 0

    async def client() -> None:
        nonlocal accepted
        async with httpx.AsyncClient(timeout=10) as http:
            for _ in remaining:
                response = await http.post(url, json=FIELDS, headers=headers)
                if response.is_success:
                    accepted += 1
                elif response.status_code >= 500:
                    raise SystemExit(f"relay answered {response.status_code}: {response.text}")

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return accepted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--submissions", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    compiled = subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "relay")], check=False
    )
    if compiled.returncode:
        raise SystemExit("could not compile relay's modules to bytecode")
    with tempfile.TemporaryDirectory(prefix="relay-startup-") as tmp:
        workdir = Path(tmp)
        log = workdir / "relay.log"
        env = environment(workdir, workdir / "var")
        first = Serving(env, log)  # creates the database: migrations, a new key file
        first.stop()
        helps, readies, cpus, idles, files = [], [], [], [], []
        for _ in range(args.runs):
            helps.append(time_help(env))
            server = Serving(env, log)
            try:
                readies.append(server.ready_after)
                cpus.append(server.cpu)
                time.sleep(1)
                idles.append(memory_mb(server.proc.pid, "VmRSS"))
                files.append(memory_mb(server.proc.pid, "RssFile"))
            finally:
                server.stop()
        var = workdir / "var-load"
        server = Serving(environment(workdir, var), log)
        try:
            started = time.perf_counter()
            accepted = asyncio.run(submit(server.port, args.submissions, args.concurrency))
            seconds = time.perf_counter() - started
            peak = memory_mb(server.proc.pid, "VmHWM")
        finally:
            server.stop()
        with sqlite3.connect(var / "relay.db") as db:
            rows = db.execute("SELECT count(*) FROM submissions").fetchone()[0]
        if rows < accepted:
            raise SystemExit(f"LOST SUBMISSIONS: {accepted} answered 2xx, {rows} rows stored")
        if os.environ.get("RELAY_BENCH_KEEP_LOG"):
            shutil.copy(log, ROOT / "startup-bench.log")
    help_s, ready_s, cpu, idle, file = (
        statistics.median(v) for v in (helps, readies, cpus, idles, files)
    )
    print(f"relay --help:                     {help_s:6.3f} s  (median of {args.runs})")
    print(f"relay serve → /healthz 200:       {ready_s:6.3f} s  (median of {args.runs})")
    print(f"  CPU it used by then:            {cpu:6.3f} s  (median of {args.runs})")
    print(f"  the first start, creating the database: {first.ready_after:.3f} s")
    print(f"idle RSS, 1 s after start:        {idle:6.1f} MB (median of {args.runs})")
    print(f"  of which file-backed (shared):  {file:6.1f} MB")
    print(
        f"peak RSS after {args.submissions} submissions: {peak:6.1f} MB "
        f"(c{args.concurrency}, {accepted / seconds:.0f}/s, {accepted} 2xx, {rows} rows)"
    )
    checks = [
        ("relay --help <= 0.3 s", help_s <= 0.3),
        ("/healthz <= 0.4 s after start", ready_s <= 0.4),
        ("idle RSS <= 50 MB", idle <= 50),
        ("peak RSS <= 60 MB", peak <= 60),
    ]
    for name, ok in checks:
        print(f"target {name}: {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
