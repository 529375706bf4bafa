"""Operations: check the configuration, migrate the database, generate keys."""

from __future__ import annotations

import click

from relay.cli.common import run, settings_or_exit
from relay.config import load_forms
from relay.crypto import KeyRing, generate_key
from relay.errors import RelayError
from relay.store.db import create_engine, current_revision, head_revision, upgrade


@click.command()
def check() -> None:
    """Validate the settings and the forms file; exit 1 and say what is wrong otherwise.

    Example: RELAY_FORMS_FILE=forms.toml relay check
    """
    settings = settings_or_exit()
    problems: list[str] = []
    forms = {}
    try:
        forms = load_forms(settings.effective_forms_file)
    except RelayError as exc:
        problems.append(str(exc))
    if settings.secret_key is not None:
        try:
            KeyRing.from_text(settings.secret_key.get_secret_value())
        except RelayError as exc:
            problems.append(str(exc))
    if problems:
        raise click.ClickException("\n".join(problems))
    click.echo(f"settings: ok ({settings.environment})")
    click.echo(
        f"forms file: {settings.effective_forms_file}: {len(forms)} form(s): "
        + ", ".join(sorted(forms))
    )
    if settings.secret_key is None:
        click.echo(
            f"keys: RELAY_SECRET_KEY not set; the trial key file {settings.key_file} is used"
        )


@click.group()
def db() -> None:
    """Database schema: upgrade and inspect (Alembic migrations)."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema up to date.

    Example: RELAY_DATABASE_URL=postgresql+asyncpg://relay@db/relay relay db upgrade
    """
    settings = settings_or_exit()

    async def go() -> str | None:
        engine = create_engine(settings.effective_database_url)
        try:
            await upgrade(engine)
            return await current_revision(engine)
        finally:
            await engine.dispose()

    click.echo(f"database at revision {run(go())} (head {head_revision()})")


@db.command("current")
def db_current() -> None:
    """Print the schema revision the database is at, and the newest one relay knows.

    Example: relay db current
    """
    settings = settings_or_exit()

    async def go() -> str | None:
        engine = create_engine(settings.effective_database_url)
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    click.echo(f"current: {run(go()) or 'empty'}; head: {head_revision()}")


@click.group()
def keys() -> None:
    """Encryption keys for personal data at rest."""


@keys.command("generate")
def keys_generate() -> None:
    """Print a new random key for RELAY_SECRET_KEY.

    Example: export RELAY_SECRET_KEY="$(relay keys generate)"
    """
    click.echo(generate_key())
