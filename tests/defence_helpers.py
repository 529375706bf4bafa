"""Spam-defence test helpers: a forms file with every rule on, and an ALTCHA solver.

The solver is the `altcha` library's own `solve_challenge` (what a Python client would run);
the browser test uses the real widget. Costs are tiny (PBKDF2 with 1 iteration, counter 1) so
a proof takes microseconds.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from altcha import Challenge, Payload, solve_challenge
from starlette.testclient import TestClient

from tests.conftest import FORMS_TOML, FakeClock
from tests.helpers import ORIGIN, VALID, expected

GUARDED_TOML = """
[[forms]]
id = "guarded"
recipients = ["sales@example.com"]
allowed_origins = ["https://www.example.com"]
legal_basis = "legitimate_interest"
notice_version = "2026-03-20"
honeypot = "website_url"
proof_of_work = true
proof_of_work_cost = 1
proof_of_work_counter = 1
min_fill_seconds = 3
max_links = 1
blocked_domains = ["spam.example"]
blocked_words = ["casino", "crypto airdrop"]
block_disposable_domains = true

[forms.marketing_consent]
field = "newsletter"
wording = "I agree to receive news about Biosera products by email."
wording_version = "v1"

[[forms]]
id = "other"
recipients = ["sales@example.com"]
allowed_origins = ["https://www.example.com"]
legal_basis = "contract"
notice_version = "2026-03-20"
proof_of_work = true
proof_of_work_cost = 1
proof_of_work_counter = 1
success_url = "https://www.example.com/merci"

[[forms]]
id = "filtered"
recipients = ["sales@example.com"]
allowed_origins = ["https://www.example.com"]
legal_basis = "legitimate_interest"
notice_version = "2026-03-20"
blocked_words = ["casino"]

[forms.marketing_consent]
field = "newsletter"
wording = "I agree to receive news about Biosera products by email."
wording_version = "v1"
"""

DEFENCE_FORMS_TOML = FORMS_TOML + GUARDED_TOML
JSON_HEADERS = {"Accept": "application/json", "Origin": ORIGIN}


def real_clock() -> FakeClock:
    """A test clock at the real time: the altcha library also checks expiry on the system clock."""
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


def solve(challenge: dict[str, Any]) -> str:
    """The widget's answer to a challenge: base64 JSON of challenge and solution."""
    parsed = Challenge.from_dict(challenge)
    solution = solve_challenge(parsed, timeout=10)
    assert solution is not None
    return Payload(parsed, solution).to_base64()


def fetch_challenge(client: TestClient, form_id: str = "guarded") -> dict[str, Any]:
    response = client.get(f"/f/{form_id}/challenge", headers={"Origin": ORIGIN})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def proof(client: TestClient, form_id: str = "guarded") -> str:
    """A fresh, solved proof of work for `form_id`."""
    return solve(fetch_challenge(client, form_id))


def tamper(payload: str, change: Any) -> str:
    """The payload with `change(decoded_dict)` applied (the signature left as it was)."""
    decoded = json.loads(base64.b64decode(payload))
    change(decoded)
    return base64.b64encode(json.dumps(decoded).encode()).decode()


def post_guarded(
    client: TestClient, form_id: str = "guarded", *, expect: int | None = 202, **fields: Any
) -> Any:
    """A JSON submission (fields default to a valid person's) to a guarded form; its status must
    be `expect` (None: any)."""
    body = {**VALID, **fields}
    return expected(client.post(f"/f/{form_id}", json=body, headers=JSON_HEADERS), expect)
