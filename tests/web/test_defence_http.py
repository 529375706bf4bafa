"""Spam defence through HTTP: the challenge endpoint, honeypots, proofs of work, quarantine."""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from relay.app import create_app
from tests.conftest import REDIS_URL, service_missing
from tests.defence_helpers import (
    DEFENCE_FORMS_TOML,
    JSON_HEADERS,
    fetch_challenge,
    post_guarded,
    proof,
    real_clock,
)
from tests.helpers import ORIGIN, VALID

TABLES = ("submissions", "prospects", "consent_events", "idempotency_keys", "proof_nonces")


@pytest.fixture(name="forms_file")
def fixture_forms_file(tmp_path: Path) -> Path:
    path = tmp_path / "forms.toml"
    path.write_text(DEFENCE_FORMS_TOML, encoding="utf-8")
    return path


@pytest.fixture(name="clock")
def fixture_clock() -> Any:
    return real_clock()


@pytest.fixture(name="client")
def fixture_client(settings, clock) -> Iterator[TestClient]:
    with TestClient(create_app(settings, clock=clock), base_url="http://relay.test") as client:
        yield client


def count(settings, table: str) -> int:
    db = sqlite3.connect(settings.var_dir / "relay.db")
    try:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608 - test tables
    finally:
        db.close()


def row(settings, sql: str = "SELECT * FROM submissions") -> dict[str, Any]:
    db = sqlite3.connect(settings.var_dir / "relay.db")
    db.row_factory = sqlite3.Row
    try:
        [found] = [dict(r) for r in db.execute(sql)]
        return found
    finally:
        db.close()


def metric(client: TestClient, line_start: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def patient(client: TestClient, clock: Any, form_id: str = "guarded") -> str:
    """A proof fetched, then the person takes 10 s to fill the form."""
    payload = proof(client, form_id)
    clock.now += timedelta(seconds=10)
    return payload


# --- the challenge endpoint ---------------------------------------------------------------


def test_a_challenge_is_signed_uncached_cookieless_and_allowed_for_the_forms_origin(client):
    """GET /f/{id}/challenge: JSON challenge, no-store, CORS for the form's origin, no cookie."""
    response = client.get("/f/guarded/challenge", headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "set-cookie" not in response.headers
    assert "access-control-allow-credentials" not in response.headers
    params = response.json()["parameters"]
    assert params["data"]["form"] == "guarded"
    assert response.json()["signature"]


@pytest.mark.parametrize(
    ("path", "headers", "status", "code"),
    [
        ("/f/nope/challenge", {"Origin": ORIGIN}, 404, "FORM_NOT_FOUND"),
        ("/f/contact/challenge", {"Origin": ORIGIN}, 404, "FORM_NOT_FOUND"),
        ("/f/guarded/challenge", {"Origin": "https://evil.example"}, 403, "ORIGIN_NOT_ALLOWED"),
    ],
)
def test_a_challenge_is_refused_for_unknown_forms_forms_without_it_and_foreign_sites(
    client, path, headers, status, code
):
    """Unknown form or no proof of work → 404 JSON; another site → 403 without CORS."""
    response = client.get(path, headers=headers)
    assert (response.status_code, response.json()["code"]) == (status, code)
    own_site = path == "/f/contact/challenge"  # the form's own page may read why
    assert ("access-control-allow-origin" in response.headers) is own_site
    assert response.headers["cache-control"] == "no-store"


def test_a_challenge_without_origin_is_given_for_server_side_pages(client):
    """A page rendered server-side (no Origin header) gets a challenge, without CORS."""
    response = client.get("/f/guarded/challenge")
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    ("path", "origin", "status"),
    [
        ("/f/guarded/challenge", ORIGIN, 204),
        ("/f/guarded/challenge", "https://evil.example", 403),
        ("/f/contact/challenge", ORIGIN, 404),
    ],
)
def test_the_challenge_preflight_allows_only_the_forms_origins(client, path, origin, status):
    """OPTIONS on the challenge: 204 with GET allowed for the form's sites, else 403/404."""
    response = client.options(path, headers={"Origin": origin})
    assert response.status_code == status
    if status == 204:
        assert response.headers["access-control-allow-methods"] == "GET, OPTIONS"


def test_challenges_are_counted_by_form_and_outcome(client):
    """relay_pow_challenges_total counts issued and refused challenges per form."""
    fetch_challenge(client)
    client.get("/f/nope/challenge")
    assert metric(client, 'relay_pow_challenges_total{form="guarded",outcome="issued"}') == 1
    assert metric(client, 'relay_pow_challenges_total{form="unknown",outcome="not_found"}') == 1


# --- honeypot ------------------------------------------------------------------------------


@pytest.mark.parametrize("trap", ["_gotcha", "website_url"])
def test_a_filled_honeypot_gets_the_success_answer_and_nothing_is_kept(client, settings, trap):
    """JSON: 202 {ok, next, id (a UUIDv7)} exactly as a success; no row in any table."""
    trapped: dict[str, Any] = {trap: "http://spam.example"}
    caught = post_guarded(client, **trapped, newsletter="on")
    real = post_guarded(client, altcha=proof(client))
    assert caught.status_code == real.status_code == 202
    assert set(caught.json()) == set(real.json()) == {"ok", "next", "id"}
    assert caught.json()["next"] == real.json()["next"]
    assert caught.json()["id"][14] == "7"  # a version-7 UUID, like a real id
    assert caught.headers.keys() == real.headers.keys()
    assert count(settings, "submissions") == 1  # the real one only
    assert count(settings, "idempotency_keys") == 0
    assert count(settings, "consent_events") == 0


def test_a_filled_honeypot_in_a_browser_gets_the_same_redirect(client):
    """HTML: the same 303 to the same page a success goes to."""
    data = {**VALID, "_gotcha": "x"}
    headers = {"Accept": "text/html", "Origin": ORIGIN}
    caught = client.post("/f/other", data=data, headers=headers, follow_redirects=False)
    assert (caught.status_code, caught.headers["location"]) == (
        303,
        "https://www.example.com/merci",
    )


def test_a_honeypot_with_an_idempotency_key_stores_no_answer(client, settings):
    """Nothing is kept for a dropped submission, not even its idempotency answer."""
    headers = {**JSON_HEADERS, "Idempotency-Key": "k-1"}
    response = client.post("/f/guarded", json={**VALID, "_gotcha": "x"}, headers=headers)
    assert response.status_code == 202
    assert [count(settings, t) for t in TABLES] == [0, 0, 0, 0, 0]


def test_a_dropped_submission_is_counted_and_logged_without_personal_data(client, caplog):
    """relay_spam counts it by form, verdict and rule; one log line holds no field value."""
    with caplog.at_level(logging.INFO, logger="relay"):
        post_guarded(client, _gotcha="x")
    assert metric(client, 'relay_spam_total{form="guarded",rule="honeypot",verdict="dropped"}') == 1
    assert metric(client, 'relay_submissions_total{form="guarded",outcome="dropped"}') == 1
    lines = [r for r in caplog.records if r.getMessage() == "submission dropped"]
    assert len(lines) == 1
    text = json.dumps(lines[0].__dict__, default=str)
    for value in VALID.values():
        assert value not in text


def test_a_honeypot_is_dropped_even_when_the_other_fields_are_invalid(client, settings):
    """A bot learns nothing from field errors: the trap is checked first."""
    post_guarded(client, _gotcha="x", email="not an email")
    assert count(settings, "submissions") == 0


# --- proof of work refusals ---------------------------------------------------------------
# Each refusal's status, code, page, metric and empty store: rows of tests/test_answer_table.py.


def test_a_proof_is_not_spent_by_a_submission_with_field_errors(client, clock):
    """After a 422 the person corrects the field and sends the same solved challenge again."""
    payload = patient(client, clock)
    post_guarded(client, altcha=payload, email="nope", expect=422)
    post_guarded(client, altcha=payload)


def test_a_proof_is_single_use_across_instances_sharing_the_database(settings, clock):
    """Two relay instances on one database: a proof spent on one is refused by the other."""
    with (
        TestClient(create_app(settings, clock=clock)) as one,
        TestClient(create_app(settings, clock=clock)) as two,
    ):
        payload = patient(one, clock)
        post_guarded(one, altcha=payload)
        assert post_guarded(two, altcha=payload, expect=403).json()["errors"][0]["code"] == (
            "PROOF_OF_WORK_REUSED"
        )


@pytest.fixture(name="redis_prefix")
def fixture_redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own in the test Redis, its keys removed afterwards."""
    import redis
    from redis.exceptions import RedisError

    prefix = f"relaytest:{uuid.uuid4().hex[:12]}:"
    conn = redis.Redis.from_url(REDIS_URL)
    try:
        conn.ping()
    except (OSError, RedisError) as exc:
        service_missing("Redis at 127.0.0.1:6379", exc)
    yield prefix
    for key in conn.scan_iter(f"{prefix}*"):
        conn.delete(key)
    conn.close()


def test_with_redis_a_proof_is_single_use_across_instances_with_their_own_databases(
    settings_factory, tmp_path, clock, redis_prefix
):
    """With RELAY_REDIS_URL the record is in Redis: instances on different databases share it."""
    prefix = redis_prefix
    first = settings_factory(redis_url=REDIS_URL, redis_key_prefix=prefix)
    second = settings_factory(
        redis_url=REDIS_URL, redis_key_prefix=prefix, var_dir=tmp_path / "var2"
    )
    with (
        TestClient(create_app(first, clock=clock)) as one,
        TestClient(create_app(second, clock=clock)) as two,
    ):
        payload = patient(one, clock)
        post_guarded(one, altcha=payload)
        refused = post_guarded(two, altcha=payload, expect=403)
        assert refused.json()["errors"][0]["code"] == "PROOF_OF_WORK_REUSED"
    assert count(first, "proof_nonces") == 0  # kept in Redis, not in the database


def test_with_redis_down_the_database_keeps_the_record(settings_factory, clock):
    """An unreachable Redis does not turn the check off: the database answers instead."""
    settings = settings_factory(redis_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings, clock=clock)) as client:
        payload = patient(client, clock)
        post_guarded(client, altcha=payload)
        post_guarded(client, altcha=payload, expect=403)
    assert count(settings, "proof_nonces") == 1


# --- quarantine ---------------------------------------------------------------------------


def test_a_proof_sent_too_soon_is_answered_as_a_success_and_quarantined(client, settings):
    """Time trap: 202 as usual, stored encrypted as quarantined, no prospect, no consent event."""
    response = post_guarded(client, altcha=proof(client), newsletter="on")
    stored = row(settings)
    assert stored["id"] == response.json()["id"]
    assert (stored["state"], stored["quarantine_reason"]) == ("quarantined", "time_trap")
    assert stored["next_attempt_at"] is None
    assert stored["body_enc"]
    assert VALID["message"].encode() not in stored["body_enc"]
    assert count(settings, "prospects") == 0
    assert count(settings, "consent_events") == 0
    assert (
        metric(client, 'relay_spam_total{form="guarded",rule="time_trap",verdict="quarantined"}')
        == 1
    )
    assert metric(client, 'relay_submissions_total{form="guarded",outcome="quarantined"}') == 1


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"message": "http://a.example http://b.example"}, "max_links"),
        ({"email": "bot@spam.example"}, "blocked_domain"),
        ({"message": "Best casino in town"}, "blocked_word"),
        ({"company": "Crypto Airdrop Ltd"}, "blocked_word"),
        ({"email": "bot@mailinator.com"}, "disposable_domain"),
    ],
)
def test_content_rules_quarantine_with_the_rule_named(client, settings, clock, fields, reason):
    """Each content rule of the form quarantines, and the row names the rule."""
    post_guarded(client, altcha=patient(client, clock), **fields)
    assert row(settings)["quarantine_reason"] == reason
    assert count(settings, "prospects") == 0


def test_a_clean_patient_submission_is_queued_with_its_prospect(client, settings, clock):
    """No rule caught: queued and recorded as usual."""
    post_guarded(client, altcha=patient(client, clock))
    assert (row(settings)["state"], row(settings)["quarantine_reason"]) == ("queued", None)
    assert count(settings, "prospects") == 1
