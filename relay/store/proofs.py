"""The single-use record of proofs of work in the database (when there is no Redis).

The `altcha` library accepts the same solved payload as often as it is sent; relay records a
hash of each challenge's nonce the first time a proof is used, until the challenge expires, so
every instance sharing the database refuses a second use. The Housekeeper purges expired rows.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from relay.store.db import insert_for
from relay.store.tables import proof_nonces


def _insert(dialect: str) -> Any:
    insert_fn = insert_for(dialect)
    return insert_fn(proof_nonces).on_conflict_do_nothing(index_elements=["nonce_id"])


def use_once(nonce_id: str, expires_at: datetime) -> Callable[[Connection], bool]:
    """True the first time `nonce_id` is used; False ever after (until it is purged)."""

    def job(conn: Connection) -> bool:
        result = conn.execute(
            _insert(conn.dialect.name), {"nonce_id": nonce_id, "expires_at": expires_at}
        )
        return bool(result.rowcount)

    return job
