"""`relay admin`: what an operator needs to give people access to /admin."""

from __future__ import annotations

import click
from argon2 import PasswordHasher

MIN_PASSWORD = 12


@click.group()
def admin() -> None:
    """Admin web access (/admin)."""


@admin.command("hash-password")
@click.password_option(
    "--password",
    prompt="Password",
    confirmation_prompt=True,
    help="Read from the prompt (never type it on the command line).",
)
def hash_password(password: str) -> None:
    """Print an argon2 hash of a password, for RELAY_ADMIN_USERS.

    Example: relay admin hash-password
    """
    if len(password) < MIN_PASSWORD:
        raise click.ClickException(f"use at least {MIN_PASSWORD} characters")
    click.echo(PasswordHasher().hash(password))
