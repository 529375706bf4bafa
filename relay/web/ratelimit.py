"""Per-client and per-form rate limits on POST /f/{form_id}, without ever keeping an IP.

The client key is ``base64url(HMAC-SHA256(K_day, "rl1|" + packed IP))[:22]``. ``K_day`` is 32
random bytes made for each UTC day and kept only in memory, or, with several instances, in
Redis (``SET <prefix>rlkey:<day> NX EX 172800``, so every instance shares it and it vanishes
after two days). Once the key is gone nobody, relay included, can map a counter back to an
address. Counters live in the `limits` storage (memory, or Redis with TTL = window); the
sliding-window-counter strategy is `limits`' own (slowapi's engine, used here directly because the
endpoint is plain Starlette and async).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import math
import os
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import redis.asyncio as aioredis
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from redis.exceptions import RedisError

from relay.clock import Clock
from relay.config import Settings
from relay.errors import SubmissionRejected
from relay.i18n import N_

if TYPE_CHECKING:
    from starlette.requests import Request

log = logging.getLogger("relay.ratelimit")
DAY_KEY_TTL_SECONDS = 2 * 86_400
KEY_CHARS = 22


class RateLimited(SubmissionRejected):
    """Raised when a client (or a whole form) sent too many submissions; carries Retry-After."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            429, "RATE_LIMITED", N_("Too many submissions; please wait a moment and send it again.")
        )
        self.retry_after = retry_after


def _packed(ip: str) -> bytes:
    try:
        return ipaddress.ip_address(ip.split("%", 1)[0]).packed
    except ValueError:
        return ip.encode("utf-8", "replace")  # a test client's name; never stored either way


def client_key(day_key: bytes, ip: str) -> str:
    """The pseudonymous counter key of one client for one day (pure)."""
    digest = hmac.new(day_key, b"rl1|" + _packed(ip), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")[:KEY_CHARS]


class RateLimiter:
    """Holds the day key and the counters; `check` raises RateLimited when a limit is hit."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self._clock = clock
        self._prefix = settings.redis_key_prefix
        self._client_limits: list[RateLimitItem] = parse_many(settings.rate_limit_client)
        self._form_limits: list[RateLimitItem] = parse_many(settings.rate_limit_form)
        self._redis: Any = None
        self.storage: Storage
        if settings.redis_url:
            self._redis = aioredis.Redis.from_url(settings.redis_url)
            self.storage = RedisStorage(
                "async+" + settings.redis_url,
                implementation="redispy",
                key_prefix=f"{self._prefix}rl",
                wrap_exceptions=True,
            )
        else:
            self.storage = MemoryStorage()
        # sliding-window counters: two counters per key whatever the limit (a moving window
        # keeps one timestamp per hit, so memory would grow with the limit)
        self._strategy = SlidingWindowCounterRateLimiter(self.storage)
        self._day: str | None = None
        self._day_key = b""

    async def day_key(self, now: datetime) -> bytes:
        """Today's key (UTC day), made once and shared through Redis when there is one."""
        day = now.strftime("%Y%m%d")
        if day == self._day:
            return self._day_key
        fresh = os.urandom(32)
        if self._redis is not None:
            name = f"{self._prefix}rlkey:{day}"
            await self._redis.set(name, fresh, nx=True, ex=DAY_KEY_TTL_SECONDS)
            stored = await self._redis.get(name)
            fresh = bytes(stored) if stored else fresh
        self._day, self._day_key = day, fresh
        return fresh

    async def check(self, ip: str, form_id: str) -> None:
        """Count one submission of `ip` to `form_id`; RateLimited if over any limit."""
        try:
            key = client_key(await self.day_key(self._clock()), ip)
            for item in self._client_limits:
                if not await self._strategy.hit(item, "client", form_id, key):
                    await self._refuse(item, "client", form_id, key)
            for item in self._form_limits:
                if not await self._strategy.hit(item, "form", form_id):
                    await self._refuse(item, "form", form_id)
        except (StorageError, RedisError, OSError) as exc:
            # Fail open: losing an inquiry because the counter store is down is worse than
            # letting a burst through for a while. The log says which, never who.
            log.warning("rate limit not checked (%s)", type(exc).__name__)

    async def _refuse(self, item: RateLimitItem, *identifiers: str) -> None:
        stats = await self._strategy.get_window_stats(item, *identifiers)
        raise RateLimited(max(1, math.ceil(stats.reset_time - time.time())))

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
        timer = getattr(self.storage, "timer", None)
        if timer is not None:
            timer.cancel()


def limiter_of(request: Request) -> RateLimiter:
    return cast("RateLimiter", request.app.state.limiter)
