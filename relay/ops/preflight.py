"""What `relay check` asks the dependencies before anything starts: database and Redis.

Each probe returns one line for the operator and, if something must be fixed first, the
problem: where (never a password), why, and what to do. The probes connect with the same
timeouts as serve and worker, so a hanging server costs `relay check` seconds, not minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from relay.config import Settings
from relay.errors import RelayError, SchemaNotReady
from relay.ops.redis_conn import RedisUnavailable, ping, redis_where
from relay.store.db import HEAD, current_revision, engine_for, is_sqlite, require_schema, where


@dataclass(frozen=True)
class Probe:
    """One dependency's answer: a line to print, and the problem that fails the check."""

    line: str
    problem: str | None = None


def _missing_sqlite_file(url: str) -> str | None:
    if not is_sqlite(url):
        return None
    path = make_url(url).database or ""
    return None if Path(path).exists() else path


async def probe_database(settings: Settings) -> Probe:
    """Connect, read the schema revision, compare it with this release's (HEAD)."""
    missing = _missing_sqlite_file(settings.effective_database_url)
    if missing is not None:
        return Probe(f"database: {missing} does not exist yet; relay serve creates it")
    engine = engine_for(settings)
    try:
        revision = await current_revision(engine)
        if revision == HEAD:
            return Probe(f"database: {where(engine)}: schema {revision} (this relay: {HEAD})")
        if settings.migrates_on_start:
            return Probe(
                f"database: {where(engine)}: schema {revision or 'empty'}, upgraded to {HEAD} "
                "when relay serve starts (RELAY_AUTO_MIGRATE)"
            )
        await require_schema(engine)  # raises, worded for the operator
    except SchemaNotReady as exc:
        return Probe(f"database: {where(engine)}: schema {revision or 'empty'}", str(exc))
    except RelayError as exc:
        return Probe(f"database: {where(engine)}: unreachable", str(exc))
    finally:
        await engine.dispose()
    return Probe(f"database: {where(engine)}")  # pragma: no cover - require_schema raised


async def probe_redis(settings: Settings) -> Probe | None:
    """PING Redis when RELAY_REDIS_URL is set (None when it is not)."""
    if not settings.redis_url:
        return None
    shown = redis_where(settings.redis_url)
    try:
        await ping(settings)
    except RedisUnavailable as exc:
        return Probe(f"redis: {shown}: unreachable", str(exc))
    return Probe(f"redis: {shown}: answers")
