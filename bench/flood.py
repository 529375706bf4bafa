"""Flood benchmark: what spam costs one relay worker, against a bare Starlette 202, same run.

Prints the req/s of each kind of refused or caught request and its ratio to the bare endpoint:
a filled honeypot (answered 202, nothing stored), the rate limit (429), a refused proof of work
(403), an unknown form (404); the challenges one worker issues per second (PBKDF2 cost 1000,
the default); and the p50/p99 latency of real submissions (valid proofs of work) sent one by
one while a mixed flood (honeypot, bad proof, no proof, unknown form) runs. It then checks
that the database holds exactly the real submissions, queued, and nothing of the flood.

Needs `wrk` (Debian: apt-get install wrk). Reuses bench/accept.py's helpers. Usage:

    python bench/flood.py [--seconds 3] [--warmup 2] [--clients 64] [--rounds 5] [--real 100]

The three servers (the bare app, relay, relay with its limits on) run side by side; each case
is measured right beside the bare app (which goes first alternates), and the ratios printed
are the medians of those pairs: on a shared machine the bare app's own rate moves by 10 % or
more from one minute to the next, so a ratio against a bare figure taken minutes earlier
measures the machine as much as relay. Each server is held to one core and wrk to the other
(taskset, where there are two).

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
from contextlib import ExitStack
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


#: The servers on one core, wrk on the other (accept.on_cpu), the same for the bare app and relay.
SERVER_CPU, LOAD_CPU = 1, 0


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
        accept.on_cpu(LOAD_CPU, ["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--timeout", "5s",
                                 "-s", str(script), f"http://127.0.0.1:{port}/"]),
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


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    var: Path  # relay's data folder; the bare app's working folder


def warm(workdir: Path, server: Server, case: Case, args: argparse.Namespace) -> None:
    probe(server.port, case)
    run_wrk(workdir, server.port, case, args.clients, args.warmup)


def measure(workdir: Path, server: Server, case: Case, args: argparse.Namespace) -> Measured:
    cpu0 = accept.cpu_seconds(server.proc.pid)
    raw = run_wrk(workdir, server.port, case, args.clients, args.seconds)
    cpu = accept.cpu_seconds(server.proc.pid) - cpu0
    return Measured(
        case.name,
        raw["requests"] / (raw["duration_us"] / 1e6),
        raw["p50_us"] / 1000,
        raw["p99_us"] / 1000,
        cpu / max(raw["requests"], 1) * 1e6,
    )


@dataclass
class Pair:
    """A case and the bare app, measured one right after the other."""

    case: Measured
    bare: Measured

    @property
    def ratio(self) -> float:
        return self.case.rps / self.bare.rps


def paired(
    workdir: Path, bare: Server, server: Server, case: Case, turn: int, args: argparse.Namespace
) -> Pair:
    """The case beside the bare app answering the same request; which goes first alternates
    with `turn`, so a machine getting busier or quieter favours neither."""
    method, path, body = case.requests[0]
    same = [(method, path, body)] if method == "POST" else [("POST", "/f/contact", "{}")]
    bare_case = Case("bare 202", same, 202)  # the bare app answers POST /f/{form} only
    if turn % 2:
        measured = measure(workdir, server, case, args)
        return Pair(measured, measure(workdir, bare, bare_case, args))
    bare_measured = measure(workdir, bare, bare_case, args)
    return Pair(measure(workdir, server, case, args), bare_measured)


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


def start_relay(workdir: Path, name: str, limited: bool) -> Server:
    var = workdir / f"var-{name}"
    forms = workdir / "forms.toml"
    forms.write_text(FORMS, encoding="utf-8")
    # WARNING: one line per caught request would measure the disk
    env = accept.relay_env(var, forms, limited=limited, RELAY_LOG_LEVEL="WARNING")
    port = accept.free_port()
    cmd = accept.on_cpu(SERVER_CPU, [sys.executable, "-m", "relay", "serve", "--port", str(port)])
    return Server(accept.start(cmd, env, port, workdir / f"relay-{name}.log"), port, var)


def limit_spent(server: Server, body: str) -> None:
    """Past 30/minute for this client: every later answer is 429."""
    for _ in range(40):
        httpx.post(f"http://127.0.0.1:{server.port}/f/plain", content=body,
                   headers={"Content-Type": "application/json", "Origin": ORIGIN})  # fmt: skip


def flood_with_real(
    workdir: Path, bare: Server, server: Server, flood: Case, args: argparse.Namespace
) -> tuple[Pair, dict[str, float]]:
    """The mixed flood, with real people sending valid proofs of work meanwhile; then the
    database must hold exactly their submissions."""
    latencies: list[float] = []
    failures: list[str] = []
    real = threading.Thread(
        target=real_submissions, args=(server.port, args.real, latencies, failures)
    )
    real.start()
    pair = paired(workdir, bare, server, flood, 1, args)  # the flood first: the real ones ride it
    real.join()
    rows = (
        sqlite3.connect(server.var / "relay.db")
        .execute("SELECT form_id, state, count(*) FROM submissions GROUP BY form_id, state")
        .fetchall()
    )
    if failures or rows != [("real", "queued", args.real)]:
        raise SystemExit(f"real submissions refused {failures[:3]} or spam stored: {rows}")
    print(f"  database: {rows} (the real ones only, none refused)", flush=True)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return pair, {"p50": statistics.median(latencies), "p99": p99, "n": len(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5, help="bare/case pairs per case")
    parser.add_argument("--real", type=int, default=100, help="real submissions during the flood")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/flood.py needs wrk: apt-get install wrk")
    with tempfile.TemporaryDirectory(prefix="relay-flood-") as tmp, ExitStack() as running:
        workdir = Path(tmp)
        print("starting the bare app and two relay workers (limits off, limits on) ...", flush=True)
        bare = Server(*accept.start_bare(workdir, cpu=SERVER_CPU), workdir)
        running.callback(accept.stop, bare.proc)
        relay = start_relay(workdir, "open", limited=False)
        running.callback(accept.stop, relay.proc)
        limited = start_relay(workdir, "limited", limited=True)
        running.callback(accept.stop, limited.proc)

        caught = json.dumps({**FIELDS, "_gotcha": "http://spam.example"})
        wrong = json.dumps({**FIELDS, "altcha": bad_proof(relay.port)})
        plain = json.dumps(FIELDS)
        limit_spent(limited, plain)
        cases = [
            (relay, Case("honeypot 202", [("POST", "/f/contact", caught)], 202)),
            (limited, Case("rate-limited 429", [("POST", "/f/plain", plain)], 429)),
            (relay, Case("bad proof 403", [("POST", "/f/contact", wrong)], 403)),
            (relay, Case("unknown form 404", [("POST", "/f/nope", caught)], 404)),
            (relay, Case("challenge 200", [("GET", "/f/contact/challenge", "")], 200)),
        ]
        flood = Case(
            "mixed flood",
            [
                ("POST", "/f/contact", caught),
                ("POST", "/f/contact", wrong),
                ("POST", "/f/contact", plain),  # no proof: 400
                ("POST", "/f/nope", caught),
            ],
            0,
        )
        print("warming up ...", flush=True)
        warm(workdir, bare, Case("bare 202", [("POST", "/f/contact", caught)], 202), args)
        for server, case in cases:
            warm(workdir, server, case, args)
        pairs: dict[str, list[Pair]] = {case.name: [] for _, case in cases}
        for turn in range(args.rounds):
            print(f"round {turn + 1} of {args.rounds}: each case beside the bare app", flush=True)
            for server, case in cases:
                pairs[case.name].append(paired(workdir, bare, server, case, turn, args))
        print("a mixed flood, with real submissions sent meanwhile ...", flush=True)
        pair, real = flood_with_real(workdir, bare, relay, flood, args)
        pairs[flood.name] = [pair]
    report(pairs, real, args)


def median_of(measured: list[Measured], field: str) -> float:
    return statistics.median(float(getattr(m, field)) for m in measured)


def report(pairs: dict[str, list[Pair]], real: dict[str, float], args: argparse.Namespace) -> None:
    bares = [p.bare for ps in pairs.values() for p in ps]
    head = f"{'case':22s} {'req/s':>8s} {'x bare':>7s} {'p50 ms':>7s} {'p99 ms':>7s}"
    print(f"\n{head} {'cpu us/req':>10s}  x bare, each round")
    print(f"{'bare 202 (body unread)':22s} {median_of(bares, 'rps'):8.0f} {1:7.2f} "
          f"{median_of(bares, 'p50_ms'):7.2f} {median_of(bares, 'p99_ms'):7.2f} "
          f"{median_of(bares, 'cpu_us'):10.0f}")  # fmt: skip
    ratios = {}
    for name, ps in pairs.items():
        cases = [p.case for p in ps]
        ratios[name] = statistics.median(p.ratio for p in ps)
        each = " ".join(f"{p.ratio:.2f}" for p in ps)
        print(f"{name:22s} {median_of(cases, 'rps'):8.0f} {ratios[name]:7.2f} "
              f"{median_of(cases, 'p50_ms'):7.2f} {median_of(cases, 'p99_ms'):7.2f} "
              f"{median_of(cases, 'cpu_us'):10.0f}  {each}")  # fmt: skip
    print(f"\n{args.clients} wrk connections, one relay worker; medians of {args.rounds} rounds, "
          "each case measured right beside the bare app;")  # fmt: skip
    print("challenges issued per second = the 'challenge 200' row.")
    print(f"Real submissions during the flood: n={real['n']:.0f}, p50 {real['p50']:.1f} ms, "
          f"p99 {real['p99']:.1f} ms")  # fmt: skip
    targets = [
        ("honeypot >= 0.7x bare", ratios["honeypot 202"] >= 0.7),
        ("rate-limited 429 >= 0.7x bare", ratios["rate-limited 429"] >= 0.7),
        ("refused proof of work >= 0.5x bare", ratios["bad proof 403"] >= 0.5),
        ("unknown form >= 0.8x bare", ratios["unknown form 404"] >= 0.8),
    ]
    for name, ok in targets:
        print(f"target {name}: {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
