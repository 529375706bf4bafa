"""Helpers for the privacy tests: move the clock, read the raw database."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from tests.conftest import FakeClock, invoke


@contextlib.contextmanager
def at(clock: FakeClock, when: datetime) -> Iterator[None]:
    """The test's clock, which the app and the CLI (the `cli` fixture) both read, says `when`."""
    clock.now = when
    yield


def export(cli: CliRunner, email: str) -> dict[str, Any]:
    result = invoke(cli, "subject", "export", email)
    data: dict[str, Any] = json.loads(result.output)
    return data


def rows(var_dir: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Raw rows of the relay's SQLite database (for what no interface shows: raw bytes)."""
    conn = sqlite3.connect(var_dir / "relay.db")
    try:
        return list(conn.execute(sql, params))
    finally:
        conn.close()


def raw_bytes(var_dir: Path) -> bytes:
    """Every byte relay's SQLite files hold (database and write-ahead log)."""
    out = b""
    for path in sorted(var_dir.glob("relay.db*")):
        out += path.read_bytes()
    return out
