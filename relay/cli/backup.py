"""`relay db backup` and `relay db restore`: copies that keep erasures (relay.minimise.backup)."""

from __future__ import annotations

from pathlib import Path

import click

from relay.cli.common import clock_now, run, settings_or_exit
from relay.errors import RelayError
from relay.keyfile import load_keyring
from relay.minimise import backup as backups

FILE = click.Path(dir_okay=False, path_type=Path)


@click.command("backup")
@click.argument("path", type=FILE)
def db_backup(path: Path) -> None:
    """Copy the SQLite database to PATH while relay keeps serving (online backup).

    The copy stays encrypted as the database is; the keys are not in it. With PostgreSQL it
    runs pg_dump (custom format).

    Example: relay db backup /srv/backups/relay-$(date +%F).db
    """
    settings = settings_or_exit()
    try:
        size = backups.backup(settings, path)
    except RelayError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"backed up {backups.describe(settings)} to {path} ({size} bytes)")
    click.echo(
        "personal data in it is encrypted: keep every key of RELAY_SECRET_KEY (or the trial "
        "key file) to restore it, and store them apart from the backup"
    )


@click.command("restore")
@click.argument("path", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--register-from",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Re-apply the rights register of this database file (default: the one replaced).",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def db_restore(path: Path, register_from: Path | None, yes: bool) -> None:
    """Replace the database with the backup PATH, then re-apply every erasure, restriction
    and consent withdrawal recorded after the backup was taken. Stop relay first. With
    PostgreSQL it runs pg_restore --clean on a pg_dump file.

    Example: relay db restore /srv/backups/relay-2026-11-20.db
    """
    settings = settings_or_exit()
    try:
        live = backups.describe(settings)
    except RelayError as exc:
        raise click.ClickException(str(exc)) from None
    if not yes:
        click.confirm(f"replace {live} with {path}? (stop relay first)", abort=True)
    try:
        keyring = load_keyring(settings, create=False)
    except RelayError as exc:
        raise click.ClickException(str(exc)) from None
    report = run(
        backups.restore(settings, keyring, path, now=clock_now(), register_from=register_from)
    )
    click.echo(f"restored {path} over {live} (schema now at {report.revision})")
    if report.register_source is None:
        click.echo(
            "no rights register to re-apply (no database was there before): if erasures were "
            "made after this backup, run again with --register-from <a newer copy>"
        )
    else:
        done = ", ".join(f"{n} {kind}" for kind, n in report.reapplied.items())
        click.echo(f"re-applied from the register of {report.register_source}: {done}")
    moved = report.rotation.prospects_resealed + report.rotation.bodies_resealed
    if moved or report.rotation.hashes_moved:
        click.echo(
            f"rotated the restored data to the newest key: {moved} ciphertext(s) re-encrypted, "
            f"{report.rotation.hashes_moved} lookup hash(es) moved"
        )
