"""Rate limits on POST /f/{form_id} and on admin logins, without ever keeping an IP.

Three budgets, checked at different points of a submission (relay.web.submit):

- **per client** (``RELAY_RATE_LIMIT_CLIENT``), first, before the body is read: one address
  cannot flood a form;
- **per form, for what will be delivered** (``RELAY_RATE_LIMIT_FORM``), last, only for a
  submission that passed every defence and is about to be stored for delivery. Spam that the
  honeypot drops or that lacks a valid proof of work never spends it, so a botnet cannot use
  the form-wide limit to lock real visitors out;
- **per form, for quarantine** (``RELAY_RATE_LIMIT_QUARANTINE``): suspicious submissions are
  kept for review up to this rate; past it they are dropped (answered like a success), so a
  flood cannot fill the database either.

Admin logins count failures per (user name, client network) and per client network, so wrong
passwords from one network never keep an admin out when they log in from another.

The client key is ``base64url(HMAC-SHA256(K_day, label + packed address))[:22]``. ``K_day`` is
32 random bytes made for each UTC day and kept only in memory, or, with several instances, in
Redis (``SET <prefix>rlkey:<day> NX EX 172800``, so every instance shares it and it vanishes
after two days). Once the key is gone nobody, relay included, can map a counter back to an
address. Counters live in process memory (relay.defence.windows: a dict, microseconds per
hit) or, with
``RELAY_REDIS_URL``, in Redis through the `limits` library's sliding-window-counter strategy.
If Redis fails, ``RELAY_REDIS_FAIL`` decides: ``open`` lets the request through unchecked,
``closed`` refuses it with 503; either way it is logged and counted in
``relay_rate_limit_unavailable_total``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import ipaddress
import logging
import math
import os
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, cast

from relay.clock import Clock
from relay.config import Settings
from relay.defence.windows import Limit, MemoryWindows, parse_limits
from relay.errors import SubmissionRejected
from relay.i18n import N_
from relay.metrics import Metrics

if TYPE_CHECKING:
    from limits import RateLimitItem
    from limits.aio.storage import RedisStorage
    from limits.aio.strategies import SlidingWindowCounterRateLimiter
    from starlette.requests import Request

log = logging.getLogger("relay.ratelimit")
DAY_KEY_TTL_SECONDS = 2 * 86_400
KEY_CHARS = 22
LOGIN_WINDOW_MINUTES = 15
#: After Redis fails, checks skip it (and apply RELAY_REDIS_FAIL) for this long (by the app's
#: clock), so a hanging Redis costs one timeout per few seconds instead of one or two per
#: request; the skips do not extend it, so Redis is tried again however busy the form.
REDIS_RETRY = timedelta(seconds=5)
Budget = Literal["deliver", "quarantine"]


class RateLimited(SubmissionRejected):
    """Raised when a client (or a whole form) sent too many submissions; carries Retry-After."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            429, "RATE_LIMITED", N_("Too many submissions; please wait a moment and send it again.")
        )
        self.retry_after = retry_after


class LimitsUnavailable(SubmissionRejected):
    """Raised when the shared counters cannot be read and RELAY_REDIS_FAIL=closed."""

    def __init__(self) -> None:
        super().__init__(
            503,
            "RATE_LIMIT_UNAVAILABLE",
            "The form cannot be checked right now; please try again in a moment.",
        )


def _packed(ip: str) -> bytes:
    try:
        return ipaddress.ip_address(ip.split("%", 1)[0]).packed
    except ValueError:
        return ip.encode("utf-8", "replace")  # a test client's name; never stored either way


@functools.lru_cache(maxsize=4096)
def client_key(day_key: bytes, ip: str, label: bytes = b"rl1|") -> str:
    """The pseudonymous counter key of one client for one day (pure; the last few thousand are
    kept in memory, keyed by the day key, so a flood from one address costs a dict lookup).
    """
    digest = hmac.new(day_key, label + _packed(ip), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")[:KEY_CHARS]


def network_of(ip: str) -> str:
    """The client's network (IPv4 /24, IPv6 /48, the masks of gdpr-cnil.md I1), or `ip` itself."""
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return ip
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


#: An item of a rate limit: the `limits` library's (for Redis) or None, and relay's own.
Item = tuple["RateLimitItem | None", Limit]


def _items(text: str, *, shared: bool) -> list[Item]:
    """A RELAY_RATE_LIMIT_* string's limits; with Redis, the `limits` library's items too."""
    if not shared:
        return [(None, limit) for limit in parse_limits(text)]
    from limits import parse_many  # only with Redis: relay alone never loads the library

    return [(item, Limit(item.amount, item.get_expiry())) for item in parse_many(text)]


class RateLimiter:
    """Holds the day key and the counters (see the module docstring)."""

    def __init__(self, settings: Settings, clock: Clock, metrics: Metrics | None = None) -> None:
        self._clock = clock
        self._metrics = metrics
        self._prefix = settings.redis_key_prefix
        self._fail_closed = settings.redis_fail == "closed"
        shared = bool(settings.redis_url)
        self._client = _items(settings.rate_limit_client, shared=shared)
        self._budgets: dict[Budget, list[Item]] = {
            "deliver": _items(settings.rate_limit_form, shared=shared),
            "quarantine": _items(settings.rate_limit_quarantine, shared=shared),
        }
        login = f"{settings.admin_login_attempts} per {LOGIN_WINDOW_MINUTES} minutes"
        self._login = _items(login, shared=shared)
        self._memory = MemoryWindows()
        self._redis: Any = None
        self._shared: SlidingWindowCounterRateLimiter | None = None
        self._storage: RedisStorage | None = None
        #: What a failing counter store raises (caught, then RELAY_REDIS_FAIL decides).
        self._failures: tuple[type[Exception], ...] = (OSError,)
        if settings.redis_url:
            # Redis and `limits` are imported only when configured: ~100 ms and several MB less
            # for every relay that runs alone.
            from limits.aio.storage import RedisStorage
            from limits.aio.strategies import SlidingWindowCounterRateLimiter
            from limits.errors import StorageError
            from redis.exceptions import RedisError

            from relay.ops.redis_conn import redis_client, redis_connection_kwargs

            self._redis = redis_client(settings)  # bounded waits: a hanging Redis costs ~1 s
            self._storage = RedisStorage(
                "async+" + settings.redis_url,
                implementation="redispy",
                key_prefix=f"{self._prefix}rl",
                wrap_exceptions=True,
                **redis_connection_kwargs(settings),
            )
            self._shared = SlidingWindowCounterRateLimiter(self._storage)
            self._failures = (StorageError, RedisError, OSError)
        self._ordinal = 0
        self._day_key = b""
        self._down_until: datetime | None = None  # by the injected clock, like the windows

    def _redis_down(self, now: datetime) -> bool:
        return self._down_until is not None and now < self._down_until

    def _refuse_while_down(self, now: datetime) -> None:
        """Raise the counter store's error while Redis is given a rest after a failure."""
        if self._redis_down(now):
            from limits.errors import StorageError  # loaded with the shared counters

            raise StorageError(ConnectionError("Redis failed moments ago"))

    async def day_key(self, now: datetime) -> bytes:
        """Today's key (UTC day), made once and shared through Redis when there is one."""
        ordinal = now.toordinal()  # cheaper per request than formatting the date
        if ordinal == self._ordinal:
            return self._day_key
        day = now.strftime("%Y%m%d")
        self._refuse_while_down(now)
        fresh = os.urandom(32)
        if self._redis is not None:
            name = f"{self._prefix}rlkey:{day}"
            await self._redis.set(name, fresh, nx=True, ex=DAY_KEY_TTL_SECONDS)
            stored = await self._redis.get(name)
            fresh = bytes(stored) if stored else fresh
        self._ordinal, self._day_key = ordinal, fresh
        return fresh

    # --- the three budgets of a submission ---

    async def check_client(self, ip: str, form_id: str) -> None:
        """Count one submission of `ip` to `form_id`; RateLimited if over a per-client limit."""
        now = self._clock()
        if self._shared is None and now.toordinal() == self._ordinal:
            # in memory with today's key already made: no awaits (a flood's every request)
            counted = ("client", form_id, client_key(self._day_key, ip))
            self._spend_in_memory(self._client, counted, now.timestamp())
            return
        try:
            key = client_key(await self.day_key(now), ip)
            await self._spend(self._client, ("client", form_id, key), now)
        except self._failures as exc:
            self._unavailable(exc)

    async def check_form(self, form_id: str, budget: Budget) -> int:
        """Spend one unit of the form's `budget`: 0, or the seconds to wait when it is exhausted.

        The caller decides what exhaustion means: 429 for a real submission, a silent drop for
        a suspicious one.
        """
        try:
            await self._spend(self._budgets[budget], (budget, form_id), self._clock())
        except RateLimited as exc:
            return exc.retry_after
        except self._failures as exc:
            self._unavailable(exc)
        return 0

    # --- admin logins ---

    def _login_keys(self, day_key: bytes, ip: str, name: str) -> list[tuple[str, ...]]:
        network = client_key(day_key, network_of(ip), b"login|")
        user = hmac.new(day_key, b"user|" + name.lower().encode(), hashlib.sha256).hexdigest()
        return [("login-net", network), ("login-user", user[:KEY_CHARS], network)]

    async def login_blocked(self, ip: str, name: str) -> bool:
        """Too many failed logins from this client's network, or for this name from it."""
        try:
            now = self._clock()
            keys = self._login_keys(await self.day_key(now), ip, name)
            for key in keys:
                if not await self._test(self._login, key, now):
                    return True
        except self._failures as exc:
            self._unavailable(exc)
        return False

    async def login_failed(self, ip: str, name: str) -> None:
        """Count one failed login for this client's network and for this name from it."""
        try:
            now = self._clock()
            for key in self._login_keys(await self.day_key(now), ip, name):
                await self._count(self._login, key, now)
        except self._failures as exc:
            self._unavailable(exc)

    # --- counting, in memory or in Redis ---

    async def _spend(self, limits: list[Item], key: tuple[str, ...], now: datetime) -> None:
        if self._shared is None:
            self._spend_in_memory(limits, key, now.timestamp())
            return
        self._refuse_while_down(now)
        for item, _ in limits:
            assert item is not None  # noqa: S101 - shared counters are built with their items
            if not await self._shared.hit(item, *key):
                stats = await self._shared.get_window_stats(item, *key)
                # Redis times these windows itself (key TTLs); `limits` dates reset_time by
                # the system clock, so the wait is measured against that same clock
                raise RateLimited(max(1, math.ceil(stats.reset_time - time.time())))

    def _spend_in_memory(self, limits: list[Item], key: tuple[str, ...], stamp: float) -> None:
        for _, limit in limits:
            wait = self._memory.hit(key, limit, stamp)
            if wait:
                raise RateLimited(wait)

    async def _test(self, limits: list[Item], key: tuple[str, ...], now: datetime) -> bool:
        if self._shared is None:
            return all(self._memory.test(key, limit, now.timestamp()) for _, limit in limits)
        self._refuse_while_down(now)
        for item, _ in limits:
            assert item is not None  # noqa: S101 - shared counters are built with their items
            if not await self._shared.test(item, *key):
                return False
        return True

    async def _count(self, limits: list[Item], key: tuple[str, ...], now: datetime) -> None:
        try:
            await self._spend(limits, key, now)
        except RateLimited:
            return  # already over: nothing more to count

    def _unavailable(self, exc: BaseException) -> None:
        now = self._clock()
        if not self._redis_down(now):  # a real failure, not one of the skips it causes
            self._down_until = now + REDIS_RETRY
        mode = "closed" if self._fail_closed else "open"
        if self._metrics is not None:
            self._metrics.rate_limit_unavailable.labels(mode).inc()
        # The log says which store failed and what relay did, never who.
        if self._fail_closed:
            log.error("rate limit store unavailable; refusing (%s)", type(exc).__name__)
            raise LimitsUnavailable from None
        log.warning("rate limit not checked (%s)", type(exc).__name__)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
        if self._storage is not None:
            timer = getattr(self._storage, "timer", None)
            if timer is not None:
                timer.cancel()


def limiter_of(request: Request) -> RateLimiter:
    return cast("RateLimiter", request.app.state.limiter)
