"""Operations: check the configuration, migrate the database, generate and rotate keys."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from relay.accept.form_input import kept_fields
from relay.cli.common import clock_now, run, settings_or_exit
from relay.config import FormConfig, Settings, load_forms
from relay.crypto import KeyRing, generate_key
from relay.errors import RelayError, StoreUnavailable
from relay.keyfile import load_keyring
from relay.minimise.housekeeping import wordings_of
from relay.ops.preflight import Probe, probe_database, probe_redis
from relay.store import Store, audit, missing_database
from relay.store.consent import wording_conflicts
from relay.store.db import current_revision, engine_for, head_revision, upgrade
from relay.store.keycheck import sample_problems
from relay.store.rotation import RotationReport, rotate_job


def audit_job(action: str, detail: str) -> Callable[[Connection], None]:
    now = clock_now()

    def job(conn: Connection) -> None:
        audit.add_entry(conn, now, "cli", action, None, detail)

    return job


async def _probe_all(settings: Settings) -> list[Probe]:
    """The database, and Redis when configured: reachable, and the schema this release's."""
    probes = [await probe_database(settings)]
    redis = await probe_redis(settings)
    return probes if redis is None else [*probes, redis]


def _stored_wording_problems(settings: Settings, forms: dict[str, FormConfig]) -> list[str]:
    """Wordings changed without a new version, compared with the database (if it exists)."""
    url = settings.effective_database_url
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if not Path(path).exists():
            return []

    async def go() -> list[str]:
        engine = engine_for(settings)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(wording_conflicts(wordings_of(forms)))
        except (SQLAlchemyError, OSError):
            return []  # no database yet, or no schema: nothing published to compare with
        finally:
            await engine.dispose()

    return run(go())


def _key_problems(settings: Settings) -> list[str]:
    """Open a sample of stored rows; every key id the database needs must be in the ring."""
    if missing_database(settings) is not None:
        return []  # no database yet: nothing sealed to open
    try:
        keyring = load_keyring(settings)
    except RelayError as exc:
        return [str(exc)]

    async def go() -> list[str]:
        # `relay check` changes nothing: no migration, even where serve would migrate
        store = await Store.from_settings(settings.model_copy(update={"auto_migrate": False}))
        try:
            return await store.read(sample_problems(keyring))
        except StoreUnavailable:
            return []  # no schema yet: nothing sealed to open
        finally:
            await store.close()

    try:
        return run(go())
    except click.ClickException as exc:
        return [exc.message]


@click.command()
def check() -> None:
    """Validate the settings and the forms file; reach the database (its schema revision
    against this release's) and Redis when configured; open a sample of the stored rows (every
    key id the database holds must be in RELAY_SECRET_KEY); exit 1 and say what is wrong.

    Example: RELAY_FORMS_FILE=forms.toml relay check
    """
    settings = settings_or_exit()
    problems: list[str] = []
    forms: dict[str, FormConfig] = {}
    try:
        forms = load_forms(settings.effective_forms_file)
    except RelayError as exc:
        problems.append(str(exc))
    if settings.secret_key is not None:
        try:
            KeyRing.from_text(settings.secret_key.get_secret_value())
        except RelayError as exc:
            problems.append(str(exc))
    probes = run(_probe_all(settings))
    problems.extend(p.problem for p in probes if p.problem)
    if not any(p.problem for p in probes):
        if forms:
            problems.extend(_stored_wording_problems(settings, forms))
        problems.extend(_key_problems(settings))
    if problems:
        raise click.ClickException("\n".join(problems))
    click.echo(f"settings: ok ({settings.environment})")
    for probe in probes:
        click.echo(probe.line)
    click.echo(
        f"forms file: {settings.effective_forms_file}: {len(forms)} form(s): "
        + ", ".join(sorted(forms))
    )
    for form_id in sorted(forms):  # issue 10: what each form keeps; all else is dropped
        click.echo(f"  {form_id}: keeps {kept_fields(forms[form_id])}")
    if settings.secret_key is None:
        click.echo(
            f"keys: RELAY_SECRET_KEY not set; the trial key file {settings.key_file} is used"
        )
    if settings.uses_file_transport:
        click.echo(
            f"transport: files under {settings.var_dir / 'mail'} (plain text, for trials; "
            "deleted after RELAY_BODY_RETENTION_DAYS)"
        )
    else:
        click.echo(f"transport: Mailgun at {settings.mailgun_base_url}")


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
        engine = engine_for(settings, statements=False)  # a migration may take its time
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
    problem = missing_database(settings)
    if problem is not None:
        raise click.ClickException(problem)

    async def go() -> str | None:
        engine = engine_for(settings)
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


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt stored personal data under the newest key and re-hash email lookups.

    Put the new key first in RELAY_SECRET_KEY (keep the old one after it), run this, then the
    old key may be removed (see the report for hashes that still need it).

    Example: RELAY_SECRET_KEY="$NEW,$OLD" relay keys rotate
    """
    settings = settings_or_exit()

    async def go() -> RotationReport:
        keyring = load_keyring(settings)
        store = await Store.from_settings(settings)
        try:
            report = await store.write(rotate_job(keyring))
            await store.write(audit_job("keys.rotate", json.dumps(report.as_dict())))
            return report
        finally:
            await store.close()

    report = run(go())
    click.echo(
        f"re-encrypted {report.prospects_resealed} prospect record(s) and "
        f"{report.bodies_resealed} outbox bod(y/ies); moved {report.hashes_moved} lookup hash(es)"
    )
    if report.old_ciphertexts_left:
        raise click.ClickException(
            f"{report.old_ciphertexts_left} ciphertext(s) still under an older key"
        )
    click.echo("every stored ciphertext is now under the newest key")
    if report.orphan_hashes:
        click.echo(
            f"{report.orphan_hashes} person(s) known only by a hash (opposition list, consent "
            "events): without an address they cannot be re-hashed, and hashes made before this "
            "rotation are matched only while the older key stays listed in RELAY_SECRET_KEY; "
            "keep it listed (after the new one) until they expire, at most 3 years"
        )
