"""Redis connections with bounded waits: every client relay opens on Redis is built here.

Why: redis-py waits 5 s to connect and 5 s per reply by default, and retries ten times, so a
hanging Redis would add a minute to a submission. Here a connection gives up after
RELAY_REDIS_CONNECT_TIMEOUT_SECONDS, a reply after RELAY_REDIS_SOCKET_TIMEOUT_SECONDS, and
nothing is retried: the caller decides (the rate limiter fails open or closed).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from relay.config import Settings
from relay.errors import RelayError


class RedisUnavailable(RelayError):
    """Raised by `ping` when Redis does not answer; names the host, never the password."""


def redis_connection_kwargs(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `redis.asyncio.Redis.from_url` (and `limits`' RedisStorage)."""
    return {
        "socket_connect_timeout": settings.redis_connect_timeout_seconds,
        "socket_timeout": settings.redis_socket_timeout_seconds,
        "retry": Retry(NoBackoff(), 0),
        "retry_on_timeout": False,
    }


def redis_client(settings: Settings) -> aioredis.Redis:
    """A client on RELAY_REDIS_URL with the timeouts above; the caller closes it (`aclose`)."""
    if not settings.redis_url:
        msg = "RELAY_REDIS_URL is not set"
        raise RedisUnavailable(msg)
    return aioredis.Redis.from_url(settings.redis_url, **redis_connection_kwargs(settings))


def redis_where(url: str) -> str:
    """The URL as logs and errors show it: the password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port is not None else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


async def ping(settings: Settings) -> None:
    """PING Redis once; RedisUnavailable saying where, why and what to check if it fails."""
    client = redis_client(settings)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        where = redis_where(settings.redis_url or "")
        why = "no answer in time" if "Timeout" in type(exc).__name__ else type(exc).__name__
        msg = (
            f"cannot use Redis at {where} ({why}): check RELAY_REDIS_URL, that the server is "
            "up and reachable from this host, and RELAY_REDIS_*_TIMEOUT_SECONDS"
        )
        raise RedisUnavailable(msg) from None
    finally:
        await client.aclose()
