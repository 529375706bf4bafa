"""Migrations: Alembic's head is the one relay checks at start-up without importing Alembic."""

from __future__ import annotations

import asyncio
import sqlite3

from relay.store.db import HEAD, create_engine, current_revision, head_revision, upgrade
from relay.store.tables import metadata


def test_head_constant_is_alembics_head():
    """relay.store.db.HEAD must name the newest migration (bump it with every new one)."""
    assert head_revision() == HEAD


def test_upgrade_creates_every_table_of_the_metadata(tmp_path):
    """The migrations create exactly the tables tables.py defines."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"

    async def go() -> str | None:
        engine = create_engine(url)
        try:
            await upgrade(engine)
            await upgrade(engine)  # at head: a no-op
            return await current_revision(engine)
        finally:
            await engine.dispose()

    assert asyncio.run(go()) == HEAD
    db = sqlite3.connect(tmp_path / "m.db")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables - {"alembic_version"} == set(metadata.tables)


def test_migrations_match_the_table_definitions(tmp_path):
    """Alembic's autogenerate finds no difference between the migrated schema and tables.py."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine as create_sync_engine

    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"

    async def migrate() -> None:
        engine = create_engine(url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(migrate())
    engine = create_sync_engine(f"sqlite:///{tmp_path / 'm.db'}")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []
