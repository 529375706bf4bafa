"""`relay consent …`: withdraw marketing consent, print self-service withdrawal links."""

from __future__ import annotations

from datetime import datetime

import click

from relay.cli.common import clock_now, settings_or_exit
from relay.cli.subject import actor_option, received_option, request_option, utc_option, with_store
from relay.config import is_loopback_url
from relay.errors import RelayError
from relay.keyfile import load_keyring
from relay.rights import consent_link, privacy


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
    done = with_store(
        lambda store, keyring: privacy.withdraw_consent(
            store,
            keyring,
            email,
            actor=actor,
            now=clock_now(),
            source=actor,
            request_id=request_id,
            received_at=utc_option(received),
        )
    )
    if not done.known:
        click.echo(
            "relay holds no record or consent for this address; it is now on the opposition "
            "list (keyed hash only), so it is never enrolled in marketing without a new consent"
        )
    else:
        click.echo("consent withdrawn" if done.changed else "already withdrawn; nothing changed")


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
    base = settings.public_url or "http://127.0.0.1:8000"
    if settings.environment == "production" and is_loopback_url(base):
        msg = (
            "RELAY_PUBLIC_URL is not set: the link would point at this machine, and nobody "
            "else could open it (set RELAY_PUBLIC_URL to relay's public https address)"
        )
        raise click.ClickException(msg)
    token = consent_link.withdrawal_token(
        keyring, email, now=clock_now(), days=settings.consent_link_days
    )
    click.echo(f"{base}/consent/withdraw?token={token}")
