"""`relay consent …`: withdraw marketing consent, print self-service withdrawal links."""

from __future__ import annotations

from datetime import datetime

import click

from relay import consent_link, privacy
from relay.cli.common import settings_or_exit
from relay.cli.subject import actor_option, received_option, request_option, utc_option, with_store
from relay.clock import utcnow
from relay.errors import RelayError
from relay.keyfile import load_keyring


@click.group()
def consent() -> None:
    """Marketing consent: withdrawal and self-service withdrawal links."""


@consent.command("withdraw")
@click.argument("email")
@actor_option
@request_option
@received_option
def withdraw(email: str, actor: str, request_id: int | None, received: datetime | None) -> None:
    """Withdraw EMAIL's marketing consent and put it on the opposition list.

    Example: relay consent withdraw jeanne@example.fr
    """
    changed = with_store(
        lambda store, keyring: privacy.withdraw_consent(
            store,
            keyring,
            email,
            actor=actor,
            now=utcnow(),
            source=actor,
            request_id=request_id,
            received_at=utc_option(received),
        )
    )
    click.echo("consent withdrawn" if changed else "already withdrawn; nothing changed")


@consent.command("link")
@click.argument("email")
def link(email: str) -> None:
    """Print a signed, expiring self-service withdrawal link for EMAIL.

    Example: relay consent link jeanne@example.fr
    """
    settings = settings_or_exit()
    try:
        keyring = load_keyring(settings)
    except RelayError as exc:
        raise click.ClickException(str(exc)) from None
    token = consent_link.withdrawal_token(
        keyring, email, now=utcnow(), days=settings.consent_link_days
    )
    base = settings.public_url or "http://127.0.0.1:8000"
    click.echo(f"{base}/consent/withdraw?token={token}")
