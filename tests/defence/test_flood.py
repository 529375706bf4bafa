"""A flood through the trusted proxy does not reach sales and does not lock real visitors out.

Spam of every kind (honeypot filled, no proof of work, a forged one, sent too fast, stuffed
with links) from many addresses, interleaved with real visitors' submissions that carry a
valid proof of work, all through the trusted reverse proxy: the mailbox (the fake transport)
ends with exactly the real messages, no real visitor is refused, and of the bots nothing is
kept but a bounded quarantine. The benchmark of the same mix is bench/flood.py.
"""

from __future__ import annotations

import random
import sqlite3
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from relay.app import create_app
from tests.defence_helpers import DEFENCE_FORMS_TOML, fetch_challenge, real_clock, solve, tamper
from tests.deliveries_helpers import drained
from tests.fakes import FakeTransport
from tests.helpers import ORIGIN, VALID

pytestmark = pytest.mark.slow

PROXY = "10.0.0.1"
BOTS, PER_BOT, REAL = 100, 10, 20  # the 1,000 bots x 10 and 100 people, scaled down
QUARANTINE_PER_MINUTE = 15
HEADERS = {"Accept": "application/json", "Origin": ORIGIN}


@pytest.fixture(name="forms_file")
def fixture_forms_file(tmp_path: Path) -> Path:
    path = tmp_path / "forms.toml"
    path.write_text(DEFENCE_FORMS_TOML, encoding="utf-8")
    return path


def _post(client: TestClient, ip: str, body: dict[str, Any]) -> Any:
    return client.post(
        "/f/guarded", json=body, headers={**HEADERS, "X-Forwarded-For": f"198.18.0.9, {ip}"}
    )


def _rows(settings: Any, sql: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(settings.var_dir / "relay.db")
    try:
        return list(db.execute(sql))
    finally:
        db.close()


def test_a_flood_of_spam_leaves_sales_exactly_the_real_messages(settings_factory):
    """Sales receive exactly the real submissions and no spam; no real visitor is refused;
    quarantine keeps no more than its budget; no prospect record is made for a bot."""
    clock = real_clock()
    transport = FakeTransport()
    settings = settings_factory(
        trusted_proxies=PROXY,
        rate_limit_quarantine=f"{QUARANTINE_PER_MINUTE}/minute",
        dispatch_in_serve=True,
    )
    app = create_app(settings, clock=clock, transport=transport)
    rng = random.Random(8)
    with TestClient(app, base_url="http://relay.test", client=(PROXY, 1)) as client:
        # real visitors load the page (and its challenge), then take their time to write
        people = [(f"203.0.113.{n}", solve(fetch_challenge(client))) for n in range(REAL)]
        clock.now += timedelta(seconds=20)
        real_emails = {f"person{n}@example.fr" for n in range(REAL)}
        plan: list[tuple[str, str, dict[str, Any]]] = [
            ("real", ip, {**VALID, "email": f"person{n}@example.fr", "altcha": payload})
            for n, (ip, payload) in enumerate(people)
        ]
        for bot in range(BOTS):
            ip = f"198.51.{bot // 200}.{bot % 200}"
            for kind in ("honeypot", "no_proof", "forged", "too_fast", "links") * (PER_BOT // 5):
                plan.append((kind, ip, {**VALID, "email": f"bot{bot}@example.net"}))
        rng.shuffle(plan)

        answers: dict[str, Counter[int]] = {}
        for kind, ip, body in plan:
            if kind == "honeypot":
                body["website_url"] = "https://casino.example"
            elif kind == "forged":
                body["altcha"] = tamper(  # a made-up solution: no work done
                    solve(fetch_challenge(client)),
                    lambda d: d["solution"].update(derivedKey="00" * 32, counter=0),
                )
            elif kind == "too_fast":  # solved and sent at once: the time trap
                body["altcha"] = solve(fetch_challenge(client))
            elif kind == "links":  # a patient bot, but its message is a list of links
                body["altcha"] = solve(fetch_challenge(client))
                body["message"] = " ".join(f"https://spam.example/{n}" for n in range(8))
            answers.setdefault(kind, Counter())[_post(client, ip, body).status_code] += 1

        drained(client)  # everything due is sent: no waiting to see whether more comes
        delivered = {email.reply_to.rsplit("<", 1)[-1].rstrip(">") for email in transport.sent}
        quarantined = _rows(settings, "SELECT count(*) FROM submissions WHERE state='quarantined'")
        prospects = _rows(settings, "SELECT count(*) FROM prospects")
        metrics = client.get("/metrics").text

    assert answers["real"] == Counter({202: REAL})  # no real visitor refused
    assert delivered == real_emails  # exactly the real ones, no spam
    assert len(transport.sent) == REAL
    assert answers["honeypot"] == Counter({202: BOTS * PER_BOT // 5})  # told "accepted"
    assert answers["no_proof"] == Counter({400: BOTS * PER_BOT // 5})
    assert answers["forged"] == Counter({403: BOTS * PER_BOT // 5})
    assert answers["too_fast"] + answers["links"] == Counter({202: 2 * BOTS * PER_BOT // 5})
    assert quarantined == [(QUARANTINE_PER_MINUTE,)]  # bounded: the rest dropped
    assert prospects == [(REAL,)]  # no record of any bot
    assert 'rule="quarantine_full"' in metrics
