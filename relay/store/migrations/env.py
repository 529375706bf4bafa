"""Alembic environment: relay always passes an open connection (see relay.store.db.upgrade)."""

from __future__ import annotations

from alembic import context

from relay.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached by calling the alembic CLI directly
    msg = "run migrations with `relay db upgrade`, which supplies the database connection"
    raise RuntimeError(msg)

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
