"""Rate limits on POST /f/{form_id}: keyed by a daily HMAC of the IP, never the IP itself."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from redis.exceptions import RedisError
from starlette.testclient import TestClient

from relay.app import create_app
from tests.conftest import REDIS_URL, service_missing
from tests.helpers import ORIGIN, post_form, post_json

PROXY = "10.0.0.1"


def via_proxy(ip: str) -> dict[str, str]:
    """The header a trusted proxy adds for a visitor at `ip`."""
    return {"X-Forwarded-For": ip}


CLIENT_IP = "203.0.113.7"
IP_LITERAL = re.compile(rb"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|[0-9a-f]{1,4}(?::[0-9a-f]{0,4}){2,7}")


@pytest.fixture(name="limited")
def fixture_limited(settings_factory, clock) -> Any:
    def make(**overrides: Any) -> TestClient:
        settings = settings_factory(rate_limit_client="2/minute", **overrides)
        peer = PROXY if "trusted_proxies" in overrides else CLIENT_IP
        return TestClient(create_app(settings, clock=clock), client=(peer, 40000))

    return make


def test_limits_are_per_form_and_per_client(limited):
    """Another form has its own count; the per-form budget counts every client's accepted
    submissions together."""
    with limited(rate_limit_form="3/minute") as client:
        post_json(client)
        post_json(client)
        post_json(client, form_id="quote")
        post_json(client, form_id="quote")
        post_json(client, form_id="quote", expect=429)  # the client's 2/minute
    with limited(rate_limit_form="1/minute", trusted_proxies="10.0.0.1") as client:
        post_json(client, headers=via_proxy("198.51.100.1"))
        refused = post_json(client, headers=via_proxy("198.51.100.2"), expect=429)
    assert refused.headers["retry-after"] == "60"  # one in this minute: wait for it to fade


def test_refused_submissions_do_not_spend_the_form_budget(limited):
    """Only a submission about to be stored spends the form-wide budget: invalid ones (and
    spam the defences drop) cannot lock real visitors out."""
    with limited(rate_limit_form="1/minute", trusted_proxies="10.0.0.1") as client:
        for n in range(5):
            post_json(client, email="not-an-address", headers=via_proxy(f"192.0.2.{n}"), expect=422)
        post_json(client, headers=via_proxy("198.51.100.9"))


def test_bad_limit_setting_is_refused(settings_factory):
    """A malformed limit is a settings error that says what a limit looks like."""
    with pytest.raises(ValueError, match="is not a rate limit such as"):
        settings_factory(rate_limit_client="lots")


async def _redis_keys(prefix: str) -> dict[bytes, bytes]:
    """Every key under `prefix`, with all the bytes its value holds, whatever its type."""
    import redis.asyncio as aioredis

    conn = aioredis.Redis.from_url(REDIS_URL)
    try:
        out: dict[bytes, bytes] = {}
        async for key in conn.scan_iter(match=f"{prefix}*"):
            dumped = await conn.dump(key)  # the serialised value, whatever the type
            out[bytes(key)] = bytes(dumped or b"")
        return out
    finally:
        await conn.aclose()


async def _drop(prefix: str) -> None:
    import redis.asyncio as aioredis

    conn = aioredis.Redis.from_url(REDIS_URL)
    try:
        async for key in conn.scan_iter(match=f"{prefix}*"):
            await conn.delete(key)
    finally:
        await conn.aclose()


@pytest.fixture(name="redis_prefix")
def fixture_redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own, removed afterwards; fails in CI if Redis is down."""
    prefix = f"relaytest:{uuid.uuid4().hex[:12]}:"
    try:
        asyncio.run(_redis_keys(prefix))
    except (OSError, RedisError) as exc:
        service_missing("Redis at 127.0.0.1:6379", exc)
    yield prefix
    asyncio.run(_drop(prefix))


@pytest.mark.redis
def test_redis_holds_no_ip_and_the_day_key_rotates(limited, redis_prefix, clock):
    """With Redis: shared counters and day key; no IP literal in any key or value; a new day
    gives a new key and a fresh window."""
    with limited(redis_url=REDIS_URL, redis_key_prefix=redis_prefix) as client:
        post_json(client)
        post_json(client)
        post_json(client, expect=429)
        stored = asyncio.run(_redis_keys(redis_prefix))
        clock.now = clock.now + timedelta(days=1)
        post_json(client)
        next_day = asyncio.run(_redis_keys(redis_prefix))
    assert stored, "the limiter wrote nothing to Redis"
    for key, value in next_day.items():
        assert CLIENT_IP.encode() not in key + value
        assert not IP_LITERAL.search(key)
    day_keys = sorted(k for k in next_day if b"rlkey:" in k)
    assert len(day_keys) == 2
    assert next_day[day_keys[0]] != next_day[day_keys[1]]


@pytest.mark.redis
def test_instances_share_the_day_key(limited, redis_prefix):
    """Two apps (two instances) on one Redis count the same client together."""
    with (
        limited(redis_url=REDIS_URL, redis_key_prefix=redis_prefix) as one,
        limited(redis_url=REDIS_URL, redis_key_prefix=redis_prefix) as two,
    ):
        post_json(one)
        post_json(two)
        post_json(one, expect=429)


def test_redis_down_fails_open(limited, caplog):
    """If the counter store is unreachable, submissions are still accepted (and it is logged)."""
    with limited(redis_url="redis://127.0.0.1:1/0") as client:
        post_json(client)
    assert "rate limit not checked" in caplog.text
    assert CLIENT_IP not in caplog.text


def test_visitors_behind_a_trusted_proxy_have_their_own_counters(limited):
    """Behind a trusted proxy, each visitor's address (not the proxy's) is counted."""
    with limited(trusted_proxies=PROXY) as client:
        post_json(client, headers=via_proxy("198.51.100.1"))
        post_json(client, headers=via_proxy("198.51.100.1"))
        post_json(client, headers=via_proxy("198.51.100.1"), expect=429)
        post_json(client, headers=via_proxy("198.51.100.2"))


def test_a_visitor_cannot_spend_another_visitors_counter(limited):
    """A visitor who writes a victim's address into X-Forwarded-For is counted under the
    address the proxy appended, so the victim's counter is untouched."""
    victim, attacker = "198.51.100.1", "203.0.113.66"
    with limited(trusted_proxies=PROXY) as client:
        for _ in range(2):
            spoofed = {"X-Forwarded-For": f"{victim}, {attacker}"}
            post_json(client, headers=spoofed)
        post_json(client, headers=via_proxy(attacker), expect=429)
        post_json(client, headers=via_proxy(victim))


def test_forwarding_headers_from_an_untrusted_peer_are_ignored(limited):
    """Without RELAY_TRUSTED_PROXIES a client rotating X-Forwarded-For is still one client."""
    with limited() as client:
        post_json(client, headers=via_proxy("198.51.100.1"))
        post_json(client, headers=via_proxy("198.51.100.2"))
        post_json(client, headers=via_proxy("198.51.100.3"), expect=429)


def test_forwarded_header_is_understood(limited):
    """A proxy that writes RFC 7239 Forwarded identifies visitors with it, and then a
    visitor's own X-Forwarded-For is ignored."""
    with limited(trusted_proxies=PROXY, trusted_proxy_header="forwarded") as client:
        for _ in range(2):
            visitor = {"Forwarded": 'for="[2001:db8::1]:5000";proto=https'}
            post_json(client, headers=visitor)
        post_json(client, headers=visitor, expect=429)
        other = {"Forwarded": "for=198.51.100.2", **via_proxy("2001:db8::1")}
        post_json(client, headers=other)


def test_redis_down_fails_closed_when_asked(limited, caplog):
    """RELAY_REDIS_FAIL=closed: with the counters unreachable the form answers 503
    RATE_LIMIT_UNAVAILABLE with Retry-After, logs why, and the unavailability metric counts it
    (that nothing is stored: tests/test_answer_table.py)."""
    with limited(redis_url="redis://127.0.0.1:1/0", redis_fail="closed") as client:
        response = post_json(client, expect=503)
        metrics = client.get("/metrics").text
    assert response.json()["errors"][0]["code"] == "RATE_LIMIT_UNAVAILABLE"
    assert response.headers["retry-after"] == "5"
    assert 'relay_rate_limit_unavailable_total{mode="closed"} 1.0' in metrics
    assert "rate limit store unavailable; refusing" in caplog.text


def test_redis_down_failing_open_is_counted(limited):
    """RELAY_REDIS_FAIL=open (the default): accepted unchecked, and the metric counts both
    checks (per client, then the form's budget) that were not made."""
    with limited(redis_url="redis://127.0.0.1:1/0") as client:
        post_json(client)
        metrics = client.get("/metrics").text
    assert 'relay_rate_limit_unavailable_total{mode="open"} 2.0' in metrics


@pytest.mark.redis
def test_login_failures_are_shared_between_instances(settings_factory, clock, redis_prefix):
    """With Redis, failures counted by one instance block the same network on another, and
    Redis holds no address."""
    from tests.admin_helpers import PASSWORDS, USERS, Admin

    def instance() -> TestClient:
        settings = settings_factory(
            admin_users=USERS, redis_url=REDIS_URL, redis_key_prefix=redis_prefix
        )
        app = create_app(settings, clock=clock)
        return TestClient(app, base_url="http://localhost", client=(CLIENT_IP, 1))

    def login(client: TestClient, password: str) -> int:
        return int(Admin(client).login("vera", password, expect=None).status_code)

    with instance() as one, instance() as two:
        for _ in range(3):
            assert login(one, "guess") == 401
        for _ in range(2):
            assert login(two, "guess") == 401
        assert login(one, PASSWORDS["vera"]) == 429
        stored = asyncio.run(_redis_keys(redis_prefix))
    assert any(b"login" in key for key in stored)
    for key, value in stored.items():
        assert CLIENT_IP.encode() not in key + value
        assert b"203.0.113.0" not in key + value


def test_login_with_redis_down_and_fail_closed_is_503(settings_factory, clock):
    """RELAY_REDIS_FAIL=closed also guards logins: no check possible, no login attempt."""
    from tests.admin_helpers import PASSWORDS, USERS, Admin

    settings = settings_factory(
        admin_users=USERS, redis_url="redis://127.0.0.1:1/0", redis_fail="closed"
    )
    with TestClient(create_app(settings, clock=clock), base_url="http://localhost") as client:
        response = Admin(client).login("vera", PASSWORDS["vera"], expect=503)
    assert "unavailable for a moment" in response.text


def test_html_refusals_keep_their_own_back_link(limited):
    """Refusal pages are rendered once and reused, yet each keeps the link back to the page
    it came from."""
    with limited() as client:
        post_form(client)
        post_form(client)
        pages = [
            post_form(client, headers={"Referer": f"{ORIGIN}/{page}"}, expect=429).text
            for page in ("contact", "devis", "contact")
        ]
    assert f'href="{ORIGIN}/contact"' in pages[0]
    assert f'href="{ORIGIN}/devis"' in pages[1]
    assert pages[0] == pages[2]


def test_a_hanging_redis_costs_one_timeout_then_nothing(limited, clock):
    """With Redis accepting connections but never answering, the first submission waits about
    RELAY_REDIS_SOCKET_TIMEOUT_SECONDS and is accepted (fail open); the next ones skip Redis
    for five seconds (by the app's clock) instead of waiting again, then try it once more."""
    import time

    from tests.hanging import hanging_listener

    def timed(client: TestClient) -> float:
        """Seconds (real ones: a real socket, not the app's clock) to accept one submission."""
        started = time.monotonic()
        post_json(client)  # accepted whatever Redis does: it fails open
        return time.monotonic() - started

    with hanging_listener() as port:
        settings = {
            "redis_url": f"redis://127.0.0.1:{port}/0",
            "redis_connect_timeout_seconds": 0.3,
            "redis_socket_timeout_seconds": 0.3,
        }
        with limited(**settings) as client:
            first = timed(client)
            clock.now += timedelta(seconds=4.9)
            skipped = timed(client)
            clock.now += timedelta(seconds=0.1)
            again = timed(client)
    assert 0.25 <= first < 2.0
    assert skipped < 0.25
    assert 0.25 <= again < 2.0
