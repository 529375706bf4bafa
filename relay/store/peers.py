"""Other dispatching processes on the same PostgreSQL database, seen in pg_stat_activity.

Why: without RELAY_MAILGUN_READ_KEY, a worker killed mid-send leaves its in-flight messages to
whichever dispatcher claims them once their lease expires, and they are sent again (duplicates
carrying the same Message-Id). The risk exists only when several processes dispatch, so each
dispatching process names its PostgreSQL connections `relay dispatcher <host>:<pid>`
(application_name), and a dispatcher without a read key counts the *other* names it sees:
at start and then every minute, it logs a warning when there are some (once, until they are
gone). It sees only what PostgreSQL shows it: sessions of roles it is a member of (the usual
case: every instance uses the same role). On SQLite nothing is checked.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection

from relay.errors import StoreUnavailable

if TYPE_CHECKING:
    from relay.store import Store

log = logging.getLogger("relay.dispatch")

DISPATCHER_PREFIX = "relay dispatcher "
CHECK_EVERY = timedelta(minutes=1)


def application_name(*, dispatching: bool) -> str:
    """How this process's PostgreSQL sessions are named (at most 63 characters)."""
    if not dispatching:
        return "relay"
    return f"{DISPATCHER_PREFIX}{socket.gethostname()[:32]}:{os.getpid()}"[:63]


def other_dispatchers(me: str) -> Callable[[Connection], int]:
    """How many other dispatching processes have a session on this database."""

    def query(conn: Connection) -> int:
        found = conn.execute(
            text(
                "SELECT count(DISTINCT application_name) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name LIKE :prefix "
                "AND application_name <> :me"
            ),
            {"prefix": DISPATCHER_PREFIX + "%", "me": me},
        ).scalar()
        return int(found or 0)

    return query


class PeerWatch:
    """Warns when several processes dispatch on this database without a read key."""

    def __init__(self, store: Store, has_lookup: bool, concurrency: int) -> None:
        self._store = store
        self._active = not has_lookup and not store.is_sqlite and bool(store.application_name)
        self._concurrency = concurrency
        self._last: datetime | None = None
        self._warned = False
        self.others: int | None = None

    async def check(self, now: datetime) -> None:
        """Count the others (at most once a minute) and warn when they appear."""
        if not self._active or (self._last is not None and now - self._last < CHECK_EVERY):
            return
        self._last = now
        try:
            self.others = await self._store.read(other_dispatchers(self._store.application_name))
        except StoreUnavailable:
            return  # the claim loop reports the database; this is only a warning
        if self.others and not self._warned:
            log.warning(
                "several dispatchers run on this database without RELAY_MAILGUN_READ_KEY: if "
                "one dies mid-send, the messages it had in flight (up to "
                "RELAY_DISPATCH_CONCURRENCY each) are sent again when their lease expires, as "
                "duplicates with the same Message-Id; set RELAY_MAILGUN_READ_KEY so a takeover "
                "first asks Mailgun's logs",
                extra={"other_dispatchers": self.others, "concurrency": self._concurrency},
            )
        self._warned = bool(self.others)
