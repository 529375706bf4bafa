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
from tests.helpers import post_form, post_json

CLIENT_IP = "203.0.113.7"
IP_LITERAL = re.compile(rb"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|[0-9a-f]{1,4}(?::[0-9a-f]{0,4}){2,7}")


@pytest.fixture(name="limited")
def fixture_limited(settings_factory, clock) -> Any:
    def make(**overrides: Any) -> TestClient:
        settings = settings_factory(rate_limit_client="2/minute", **overrides)
        return TestClient(create_app(settings, clock=clock), client=(CLIENT_IP, 40000))

    return make


def test_third_post_in_a_minute_gets_429_json(limited):
    """Over the per-client limit: 429 with Retry-After, in the JSON shape of other errors."""
    with limited() as client:
        assert post_json(client).status_code == 202
        assert post_json(client).status_code == 202
        response = post_json(client)
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 60
    body = response.json()
    assert body["ok"] is False
    assert body["errors"][0]["code"] == "RATE_LIMITED"
    assert "set-cookie" not in response.headers


def test_html_client_gets_429_page(limited):
    """A browser gets an HTML page with the same status and Retry-After."""
    with limited() as client:
        post_form(client)
        post_form(client)
        response = post_form(client)
    assert response.status_code == 429
    assert "Too many submissions" in response.text
    assert "retry-after" in response.headers


def test_limits_are_per_form_and_per_client(limited, settings_factory, clock):
    """Another form has its own count; the per-form limit counts everyone together."""
    with limited(rate_limit_form="3/minute") as client:
        assert post_json(client).status_code == 202
        assert post_json(client).status_code == 202
        assert post_json(client, form_id="quote").status_code == 202
        assert post_json(client).status_code == 429
    with limited(rate_limit_form="1/minute") as client:
        assert post_json(client).status_code == 202
        other = TestClient(client.app, client=("198.51.100.1", 1))
        assert post_json(other).status_code == 429


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
        assert post_json(client).status_code == 202
        assert post_json(client).status_code == 202
        assert post_json(client).status_code == 429
        stored = asyncio.run(_redis_keys(redis_prefix))
        clock.now = clock.now + timedelta(days=1)
        assert post_json(client).status_code == 202
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
        assert post_json(one).status_code == 202
        assert post_json(two).status_code == 202
        assert post_json(one).status_code == 429


def test_redis_down_fails_open(limited, caplog):
    """If the counter store is unreachable, submissions are still accepted (and it is logged)."""
    with limited(redis_url="redis://127.0.0.1:1/0") as client:
        response = post_json(client)
    assert response.status_code == 202
    assert "rate limit not checked" in caplog.text
    assert CLIENT_IP not in caplog.text
