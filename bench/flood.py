"""Flood benchmark: what spam costs one relay worker, against a bare Starlette 202, same run.

Prints the req/s of each kind of refused or caught request and its ratio to the bare endpoint:
a filled honeypot (answered 202, nothing stored), the rate limit (429), a refused proof of work
(403), an unknown form (404); the challenges one worker issues per second (PBKDF2 cost 1000,
the default); and the p50/p99 latency of real submissions (valid proofs of work) sent one by
one while a mixed flood (honeypot, bad proof, no proof, unknown form) runs. It then checks
that the database holds exactly the real submissions, queued, and nothing of the flood.

Needs `wrk` (Debian: apt-get install wrk). Reuses bench/accept.py's helpers. Usage:

    python bench/flood.py [--seconds 10] [--warmup 2] [--clients 64] [--real 100]

Targets (issue 8): honeypot >= 0.7x bare, 429 >= 0.7x, refused proof of work >= 0.5x,
unknown form >= 0.8x.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import accept  # bench/accept.py: the same bare app, wrk runner conventions and process helpers
import httpx
from altcha import Challenge, Payload, solve_challenge

FIELDS = {k: v for k, v in accept.FIELDS.items() if k != "message"} | {
    "message": "Bonjour, je voudrais un devis pour 200 flacons. Merci."
}
ORIGIN = "https://www.example.com"
FORMS = f"""
[[forms]]
id = "contact"
recipients = ["sales@example.com"]
allowed_origins = ["{ORIGIN}"]
legal_basis = "legitimate_interest"
notice_version = "2026-03-20"
honeypot = "website_url"
proof_of_work = true
max_links = 2

[[forms]]
id = "real"
recipients = ["sales@example.com"]
allowed_origins = ["{ORIGIN}"]
legal_basis = "legitimate_interest"
notice_version = "2026-03-20"
proof_of_work = true
proof_of_work_cost = 1
proof_of_work_counter = 1
min_fill_seconds = 0

[[forms]]
id = "plain"
recipients = ["sales@example.com"]
allowed_origins = ["{ORIGIN}"]
legal_basis = "legitimate_interest"
notice_version = "2026-03-20"
"""
LUA = (
    """
local bodies = %s
local paths = %s
local methods = %s
local i = 0
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
wrk.headers["Origin"] = "%s"
request = function()
  i = i + 1
  local k = i %% #bodies + 1
  return wrk.format(methods[k], paths[k], nil, bodies[k])
end
"""
    + accept.WRK_REPORT
)


@dataclass
class Case:
    name: str
    requests: list[tuple[str, str, str]]  # (method, path, body)
    expect: int


@dataclass
class Measured:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float


def lua_list(items: list[str]) -> str:
    return "{" + ", ".join(json.dumps(i) for i in items) + "}"


def run_wrk(workdir: Path, port: int, case: Case, clients: int, seconds: int) -> dict[str, int]:
    script = workdir / f"{case.name.replace(' ', '_')}.lua"
    methods, paths, bodies = zip(*case.requests, strict=True)
    script.write_text(
        LUA % (lua_list(list(bodies)), lua_list(list(paths)), lua_list(list(methods)), ORIGIN),
        encoding="utf-8",
    )
    out = subprocess.run(
        ["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--timeout", "5s", "-s", str(script),
         f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    ).stdout  # fmt: skip
    for line in out.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, int] = json.loads(line[7:])
            return result
    raise SystemExit("wrk printed no RESULT line:\n" + out)


def probe(port: int, case: Case) -> None:
    """One request of each kind first: the flood must get the answer it is meant to get."""
    for method, path, body in case.requests:
        response = httpx.request(
            method,
            f"http://127.0.0.1:{port}{path}",
            content=body or None,
            headers={"Content-Type": "application/json", "Accept": "application/json",
                     "Origin": ORIGIN},
        )  # fmt: skip
        if case.expect and response.status_code != case.expect:
            raise SystemExit(
                f"{case.name}: {path} answered {response.status_code}, not {case.expect}"
            )


def measure(
    workdir: Path, proc: subprocess.Popen[bytes], port: int, case: Case, args: argparse.Namespace
) -> Measured:
    probe(port, case)
    run_wrk(workdir, port, case, args.clients, args.warmup)
    pid = proc.pid
    cpu0 = accept.cpu_seconds(pid)
    raw = run_wrk(workdir, port, case, args.clients, args.seconds)
    cpu = accept.cpu_seconds(pid) - cpu0
    return Measured(
        case.name,
        raw["requests"] / (raw["duration_us"] / 1e6),
        raw["p50_us"] / 1000,
        raw["p99_us"] / 1000,
        cpu / max(raw["requests"], 1) * 1e6,
    )


def bad_proof(port: int) -> str:
    """A real challenge of the flooded form with a made-up solution (what a cheap bot sends)."""
    challenge = httpx.get(f"http://127.0.0.1:{port}/f/contact/challenge").json()
    payload = {"challenge": challenge, "solution": {"counter": 7, "derivedKey": "ab" * 32}}
    return base64.b64encode(json.dumps(payload).encode()).decode()


def real_submissions(port: int, count: int, latencies: list[float], failures: list[str]) -> None:
    """Real people during the flood: fetch a challenge, solve it, send; time the send."""
    base = f"http://127.0.0.1:{port}"
    headers = {"Accept": "application/json", "Origin": ORIGIN}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        for _ in range(count):
            challenge = Challenge.from_dict(client.get("/f/real/challenge").json())
            solution = solve_challenge(challenge)
            if solution is None:
                raise SystemExit("could not solve a cost-1 challenge")
            body = {**FIELDS, "altcha": Payload(challenge, solution).to_base64()}
            started = time.perf_counter()
            response = client.post("/f/real", json=body)
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code != 202:
                failures.append(f"{response.status_code} {response.text[:80]}")
            time.sleep(0.05)


def relay_env(workdir: Path, name: str, limited: bool) -> tuple[dict[str, str], Path]:
    var = workdir / f"var-{name}"
    forms = workdir / "forms.toml"
    forms.write_text(FORMS, encoding="utf-8")
    # WARNING: one line per caught request would measure the disk
    env = accept.relay_env(var, forms, limited=limited, RELAY_LOG_LEVEL="WARNING")
    return env, var


def run_open(workdir: Path, args: argparse.Namespace) -> tuple[list[Measured], dict[str, float]]:
    env, var = relay_env(workdir, "open", limited=False)
    port = accept.free_port()
    cmd = [sys.executable, "-m", "relay", "serve", "--port", str(port)]
    proc = accept.start(cmd, env, port, workdir / "relay-open.log")
    try:
        caught = json.dumps({**FIELDS, "_gotcha": "http://spam.example"})
        wrong = json.dumps({**FIELDS, "altcha": bad_proof(port)})
        cases = [
            Case("honeypot 202", [("POST", "/f/contact", caught)], 202),
            Case("bad proof 403", [("POST", "/f/contact", wrong)], 403),
            Case("unknown form 404", [("POST", "/f/nope", caught)], 404),
            Case("challenge 200", [("GET", "/f/contact/challenge", "")], 200),
        ]
        results = [measure(workdir, proc, port, case, args) for case in cases]
        flood = Case(
            "mixed flood",
            [
                ("POST", "/f/contact", caught),
                ("POST", "/f/contact", wrong),
                ("POST", "/f/contact", json.dumps(FIELDS)),  # no proof: 400
                ("POST", "/f/nope", caught),
            ],
            0,
        )
        latencies: list[float] = []
        failures: list[str] = []
        real = threading.Thread(
            target=real_submissions, args=(port, args.real, latencies, failures)
        )
        real.start()
        results.append(measure(workdir, proc, port, flood, args))
        real.join()
    finally:
        accept.stop(proc)
    rows = (
        sqlite3.connect(var / "relay.db")
        .execute("SELECT form_id, state, count(*) FROM submissions GROUP BY form_id, state")
        .fetchall()
    )
    if failures or rows != [("real", "queued", args.real)]:
        raise SystemExit(f"real submissions refused {failures[:3]} or spam stored: {rows}")
    print(f"  database: {rows} (the real ones only, none refused)", flush=True)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return results, {"p50": statistics.median(latencies), "p99": p99, "n": len(latencies)}


def run_limited(workdir: Path, args: argparse.Namespace) -> Measured:
    env, _ = relay_env(workdir, "limited", limited=True)
    port = accept.free_port()
    cmd = [sys.executable, "-m", "relay", "serve", "--port", str(port)]
    proc = accept.start(cmd, env, port, workdir / "relay-limited.log")
    try:
        body = json.dumps(FIELDS)
        for _ in range(40):  # past 30/minute for this client: every later answer is 429
            httpx.post(f"http://127.0.0.1:{port}/f/plain", content=body,
                       headers={"Content-Type": "application/json", "Origin": ORIGIN})  # fmt: skip
        return measure(
            workdir, proc, port, Case("rate-limited 429", [("POST", "/f/plain", body)], 429), args
        )
    finally:
        accept.stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--real", type=int, default=100, help="real submissions during the flood")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/flood.py needs wrk: apt-get install wrk")
    with tempfile.TemporaryDirectory(prefix="relay-flood-") as tmp:
        workdir = Path(tmp)
        print("measuring bare Starlette ...", flush=True)
        bare_args = argparse.Namespace(
            seconds=args.seconds, warmup=args.warmup, concurrency=[args.clients]
        )
        bare = accept.run_bare(workdir, bare_args)[0]
        print("measuring relay: caught and refused requests, challenges, a flood ...", flush=True)
        results, real = run_open(workdir, args)
        print("measuring relay: rate-limited ...", flush=True)
        results.insert(1, run_limited(workdir, args))
    report(bare, results, real, args.clients)


def report(bare: accept.Result, results: list[Measured], real: dict[str, float], c: int) -> None:
    head = f"{'case':22s} {'req/s':>8s} {'x bare':>7s} {'p50 ms':>7s} {'p99 ms':>7s}"
    print(f"\n{head} {'cpu us/req':>10s}")
    print(f"{'bare 202 (body unread)':22s} {bare.rps:8.0f} {1:7.2f} {bare.p50_ms:7.2f} "
          f"{bare.p99_ms:7.2f} {bare.cpu_us_per_req:10.0f}")  # fmt: skip
    by_name = {}
    for r in results:
        by_name[r.name] = r.rps / bare.rps
        print(f"{r.name:22s} {r.rps:8.0f} {r.rps / bare.rps:7.2f} {r.p50_ms:7.2f} "
              f"{r.p99_ms:7.2f} {r.cpu_us:10.0f}")  # fmt: skip
    print(f"\n{c} wrk connections, one relay worker; challenges issued per second = the")
    print(f"'challenge 200' row. Real submissions during the flood: n={real['n']:.0f}, "
          f"p50 {real['p50']:.1f} ms, p99 {real['p99']:.1f} ms")  # fmt: skip
    targets = [
        ("honeypot >= 0.7x bare", by_name["honeypot 202"] >= 0.7),
        ("rate-limited 429 >= 0.7x bare", by_name["rate-limited 429"] >= 0.7),
        ("refused proof of work >= 0.5x bare", by_name["bad proof 403"] >= 0.5),
        ("unknown form >= 0.8x bare", by_name["unknown form 404"] >= 0.8),
    ]
    for name, ok in targets:
        print(f"target {name}: {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
