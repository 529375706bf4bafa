"""Backups that keep erasures: `relay db backup` and `relay db restore` (SQLite, PostgreSQL).

Backup: SQLite's online backup API copies a consistent snapshot while relay keeps serving
(WAL: neither readers nor the writer stop). The copy holds what the database holds, so
personal data stays as ciphertexts and keyed hashes; the keys are not in it
(RELAY_SECRET_KEY, or the trial key file): keep them apart from it.

Restore: the backup replaces the database; the schema is brought up to date; then every
erasure, restriction and consent withdrawal in the rights register of the database being
replaced (or of `register_from`) that the backup does not hold is applied again — so a person
erased after the backup stays erased (relay.store.rights_register). Across a key rotation,
the restored data is rotated to the newest key too (as `relay keys rotate` would), and the
register is applied before and after, so hashes under the old key or the new one both match.

PostgreSQL: the same two steps with its own tools: `pg_dump --format=custom` (a consistent
snapshot while relay serves) and `pg_restore --clean`; the register is read from the live
database before it is replaced. The tools must be installed (postgresql-client).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError

from relay.config import Settings
from relay.crypto import KeyRing
from relay.errors import RelayError
from relay.rights.erasure import erase_rows
from relay.store import Store, audit
from relay.store import rights_register as register
from relay.store.db import create_engine as create_store_engine
from relay.store.db import current_revision, is_sqlite
from relay.store.rotation import RotationReport, rotate_job

POSTGRES_RECIPE = (
    "relay runs PostgreSQL's own tools (README: Backups): "
    'pg_dump --format=custom --file=relay.dump "$DATABASE" to back up, and '
    'pg_restore --clean --if-exists --no-owner --dbname="$DATABASE" relay.dump to restore'
)
PG_TIMEOUT = 3600


class BackupError(RelayError):
    """A backup or restore cannot be done as asked (no database, file exists, not a backup)."""


@dataclass(frozen=True)
class RestoreReport:
    """What a restore did: the schema revision, where the register came from, what it redid."""

    revision: str | None
    register_source: str | None
    reapplied: dict[str, int]
    rotation: RotationReport


def database_file(settings: Settings) -> Path:
    """The SQLite file relay uses (BackupError for PostgreSQL: see `pg_tool`)."""
    url = settings.effective_database_url
    if not is_sqlite(url):
        raise BackupError(f"the database is not SQLite: {POSTGRES_RECIPE}")
    database = make_url(url).database
    if not database or database == ":memory:":
        msg = "RELAY_DATABASE_URL names no SQLite file to back up or restore"
        raise BackupError(msg)
    return Path(database)


@contextlib.contextmanager
def _sqlite(path: Path, *, readonly: bool = False) -> Iterator[sqlite3.Connection]:
    target = f"file:{path}?mode=ro" if readonly else str(path)
    conn = sqlite3.connect(target, uri=readonly)
    try:
        yield conn
    finally:
        conn.close()


def describe(settings: Settings) -> str:
    """The database as the commands name it (no password)."""
    url = settings.effective_database_url
    if is_sqlite(url):
        return str(database_file(settings))
    return make_url(url).render_as_string(hide_password=True)


def pg_tool(settings: Settings, tool: str, *args: str) -> None:
    """Run pg_dump or pg_restore on relay's PostgreSQL database (password in the environment,
    not on the command line); BackupError with what it said if it fails."""
    url = make_url(settings.effective_database_url)
    dsn = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    path = shutil.which(tool)
    if path is None:
        raise BackupError(f"{tool} is not installed (Debian: postgresql-client); {POSTGRES_RECIPE}")
    try:
        result = subprocess.run(  # noqa: S603 - a fixed tool, arguments relay built
            [path, *args, f"--dbname={dsn}"],
            capture_output=True,
            text=True,
            env=env,
            timeout=PG_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackupError(f"{tool} could not run ({type(exc).__name__})") from None
    if result.returncode != 0:
        said = " ".join(result.stderr.split())[-500:]
        raise BackupError(f"{tool} failed (exit {result.returncode}): {said}")


def backup(settings: Settings, dest: Path) -> int:
    """Copy the live database to `dest` (a new file, mode 0600); returns its size in bytes."""
    if dest.exists():
        raise BackupError(f"{dest} already exists; relay does not overwrite a file")
    if not is_sqlite(settings.effective_database_url):
        os.close(os.open(dest, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        try:
            pg_tool(settings, "pg_dump", "--format=custom", f"--file={dest}")
        except BackupError:
            dest.unlink(missing_ok=True)
            raise
        return dest.stat().st_size
    live = database_file(settings)
    if not live.is_file():
        raise BackupError(f"{live}: no database to back up (has relay run here?)")
    partial = dest.with_name(dest.name + ".partial")
    try:
        os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        with _sqlite(live) as source, _sqlite(partial) as copy:
            source.backup(copy)  # one step: a consistent snapshot, writers wait a moment
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        partial.replace(dest)
    except (OSError, sqlite3.Error) as exc:
        partial.unlink(missing_ok=True)
        msg = f"cannot write the backup to {dest} ({type(exc).__name__}: {exc})"
        raise BackupError(msg) from None
    return dest.stat().st_size


def _revision(path: Path) -> str:
    """The schema revision of a relay database file, or BackupError if it is not one."""
    try:
        with _sqlite(path, readonly=True) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        row = None
    if row is None:
        raise BackupError(f"{path} is not a relay database backup")
    return str(row[0])


def read_register(path: Path) -> list[register.Entry]:
    """The rights register of a database file ([] if it has none yet)."""
    engine = create_engine(f"sqlite+pysqlite:///file:{path}?mode=ro&uri=true")
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("rights_register"):
                return []
            return register.entries(conn)
    finally:
        engine.dispose()


async def read_live_register(url: str) -> list[register.Entry]:
    """The rights register of the live (PostgreSQL) database ([] if it has none yet)."""
    engine = create_store_engine(url)

    def query(conn: Connection) -> list[register.Entry]:
        return register.entries(conn) if inspect(conn).has_table("rights_register") else []

    try:
        async with engine.connect() as conn:
            return await conn.run_sync(query)
    except (SQLAlchemyError, OSError) as exc:
        raise BackupError(f"cannot read the rights register ({type(exc).__name__})") from None
    finally:
        await engine.dispose()


def _register_source(live: Path, register_from: Path | None) -> Path | None:
    if register_from is not None:
        _revision(register_from)
        return register_from
    return live if live.is_file() else None


def reapply(
    live_entries: list[register.Entry], keyring: KeyRing, now: datetime
) -> Callable[[Connection], tuple[dict[str, int], RotationReport]]:
    """The write job run on the restored database (see the module docstring)."""

    def job(conn: Connection) -> tuple[dict[str, int], RotationReport]:
        todo = register.missing(live_entries, register.entries(conn))
        register.apply(conn, todo, now, erase_rows)
        rotation = rotate_job(keyring)(conn)
        counts = register.apply(conn, todo, now, erase_rows)
        register.record(conn, todo)
        detail = json.dumps({"reapplied": counts, "rotation": rotation.as_dict()}, sort_keys=True)
        audit.add_entry(conn, now, "cli", "db.restore", None, detail)
        return counts, rotation

    return job


async def restore(
    settings: Settings,
    keyring: KeyRing,
    source: Path,
    *,
    now: datetime,
    register_from: Path | None = None,
) -> RestoreReport:
    """Replace the database with `source`, then re-apply the rights register (see above)."""
    url = settings.effective_database_url
    if is_sqlite(url):
        where, entries = _restore_sqlite(settings, source, register_from)
    else:
        if register_from is not None:
            entries = read_register(_checked(register_from))
            where = str(register_from)
        else:
            entries = await read_live_register(url)
            where = describe(settings)
        pg_tool(settings, "pg_restore", "--clean", "--if-exists", "--no-owner", str(source))
    store = await Store.open(
        url,
        synchronous=settings.sqlite_synchronous,
        busy_timeout_ms=settings.db_busy_timeout_ms,
        migrate=True,
    )
    try:
        counts, rotation = await store.write(reapply(entries, keyring, now))
        revision = await current_revision(store.engine)
    finally:
        await store.close()
    return RestoreReport(revision, where, counts, rotation)


def _checked(path: Path) -> Path:
    _revision(path)
    return path


def _restore_sqlite(
    settings: Settings, source: Path, register_from: Path | None
) -> tuple[str | None, list[register.Entry]]:
    live = database_file(settings)
    _revision(source)
    where = _register_source(live, register_from)
    entries = read_register(where) if where is not None else []
    live.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _sqlite(source, readonly=True) as backup_conn, _sqlite(live) as live_conn:
            backup_conn.backup(live_conn)
    except sqlite3.Error as exc:
        msg = f"cannot restore {source} over {live} ({type(exc).__name__}: {exc})"
        raise BackupError(msg) from None
    return (None if where is None else str(where)), entries
