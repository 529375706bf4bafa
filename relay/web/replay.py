"""Where relay remembers which proofs of work were used: Redis when configured, else the database.

With RELAY_REDIS_URL, `SET <prefix>pow:<nonce hash> 1 NX EXAT <expiry>` (one round trip, the
key vanishes when the challenge expires); otherwise a row in `proof_nonces`. If Redis cannot
be reached, the database keeps the record instead (so the form keeps working; a proof used once
against Redis and once against the database during such an outage could pass twice).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, cast

from starlette.requests import Request

from relay.config import Settings
from relay.store import Store
from relay.store.proofs import use_once

log = logging.getLogger("relay.replay")


class ProofLedger:
    """`first_use(nonce_id, expires_at)`: True once per proof, shared between instances."""

    def __init__(self, settings: Settings) -> None:
        self._prefix = f"{settings.redis_key_prefix}pow:"
        self._redis: Any = None
        self._failures: tuple[type[Exception], ...] = (OSError,)
        if settings.redis_url:  # redis is imported only when configured
            import redis.asyncio as aioredis
            from redis.exceptions import RedisError

            self._redis = aioredis.Redis.from_url(settings.redis_url)
            self._failures = (RedisError, OSError)

    async def first_use(self, store: Store, nonce_id: str, expires_at: datetime) -> bool:
        if self._redis is not None:
            try:
                stored = await self._redis.set(
                    self._prefix + nonce_id, b"1", nx=True, exat=int(expires_at.timestamp()) + 1
                )
                return bool(stored)
            except self._failures as exc:
                log.warning(
                    "proof record not in Redis (%s); using the database", type(exc).__name__
                )
        return await store.write(use_once(nonce_id, expires_at))

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


def ledger_of(request: Request) -> ProofLedger:
    return cast("ProofLedger", request.app.state.proof_ledger)
