"""Admin sessions on the server: created at login, checked on every admin request, deleted at
logout. Store jobs (functions of a Connection), like the rest of store/.

Why: a signed cookie alone stays valid until it expires, whatever the user does; with a row per
session, logging out ends the session for every copy of the cookie. Only a keyed hash of the
session id is stored, so the table cannot be used to forge a cookie.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from relay.store.tables import admin_sessions


def create(
    id_mac: str, user: str, now: datetime, expires_at: datetime
) -> Callable[[Connection], None]:
    """Record a new session (and drop the expired ones, so the table stays small)."""

    def job(conn: Connection) -> None:
        conn.execute(delete(admin_sessions).where(admin_sessions.c.expires_at <= now))
        conn.execute(
            insert(admin_sessions).values(
                id_mac=id_mac, user_name=user, created_at=now, expires_at=expires_at
            )
        )

    return job


def is_live(id_mac: str, user: str, now: datetime) -> Callable[[Connection], bool]:
    """Whether this session exists, belongs to `user` and has not expired."""

    def query(conn: Connection) -> bool:
        row = conn.execute(
            select(admin_sessions.c.user_name).where(
                admin_sessions.c.id_mac == id_mac, admin_sessions.c.expires_at > now
            )
        ).first()
        return row is not None and row[0] == user

    return query


def revoke(id_mac: str) -> Callable[[Connection], None]:
    """End a session (logout): every copy of its cookie stops working."""

    def job(conn: Connection) -> None:
        conn.execute(delete(admin_sessions).where(admin_sessions.c.id_mac == id_mac))

    return job
