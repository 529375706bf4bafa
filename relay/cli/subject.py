"""`relay subject …`: the DPO's commands for data-subject requests (`relay consent …` is in
relay.cli.consent).

Each command calls the same functions the admin pages use (relay.rights.privacy); each records the
request in the register (received, due, completed, who) and an audit entry. `--request ID`
completes a request registered earlier with `relay subject receive`; `--received DATE` says
when the request reached us (the deadline runs from then, not from the command).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from relay.cli.common import clock_now, run, settings_or_exit
from relay.config import Settings
from relay.crypto import KeyRing
from relay.keyfile import load_keyring
from relay.minimise.housekeeping import bounds_of
from relay.minimise.retention import request_due
from relay.rights import erasure, privacy
from relay.rights.register import KINDS
from relay.rights.subject_export import controller_info
from relay.store import Store, audit
from relay.store.keycheck import require_keys

T = TypeVar("T")
DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]


def _user() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name in some containers
        return "cli"


def utc_option(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


@contextlib.asynccontextmanager
async def opened() -> AsyncIterator[tuple[Store, KeyRing]]:
    """The store and key ring of the configured relay, for one command."""
    settings = settings_or_exit()
    keyring = load_keyring(settings)
    store = await Store.from_settings(settings)
    try:
        # A wrong or retired key would make every lookup miss: fail naming the key id instead
        # of answering "nothing held".
        await store.read(require_keys(keyring))
        yield store, keyring
    finally:
        await store.close()


def with_store(action: Callable[[Store, KeyRing], Awaitable[T]]) -> T:
    async def go() -> T:
        async with opened() as (store, keyring):
            return await action(store, keyring)

    return run(go())


actor_option = click.option(
    "--actor", default=_user, show_default="cli:<login>", help="Who runs it (recorded)."
)
request_option = click.option(
    "--request", "request_id", type=int, help="Complete this registered request instead."
)
received_option = click.option(
    "--received",
    type=click.DateTime(DATE_FORMATS),
    help="When the request reached us (UTC); default: now.",
)


def controller_of(settings: Settings) -> dict[str, Any]:
    return controller_info(
        settings.controller_name, settings.controller_address, settings.privacy_contact
    )


@click.group()
def subject() -> None:
    """Data-subject requests: export, erase, rectify, restrict; the request register."""


@subject.command("export")
@click.argument("email")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here.")
@actor_option
@request_option
@received_option
def export(
    email: str,
    output: Path | None,
    actor: str,
    request_id: int | None,
    received: datetime | None,
) -> None:
    """Print everything held about EMAIL as JSON (access and portability).

    Example: relay subject export jeanne@example.fr --output jeanne.json
    """
    settings = settings_or_exit()
    data = with_store(
        lambda store, keyring: privacy.export_subject(
            store,
            keyring,
            email,
            actor=actor,
            now=clock_now(),
            controller=controller_of(settings),
            bounds=bounds_of(settings),
            request_id=request_id,
            received_at=utc_option(received),
        )
    )
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    if not data["found"]:
        click.echo(f'relay holds nothing about this address; {output} says so ("found": false)')
        return
    click.echo(f"export written to {output} (personal data: send it only to the person)")


@subject.command("erase")
@click.argument("email")
@actor_option
@request_option
@received_option
def erase(email: str, actor: str, request_id: int | None, received: datetime | None) -> None:
    """Delete the record of EMAIL, its consent history and messages; report what went.

    Example: relay subject erase jeanne@example.fr --received 2026-11-20
    """

    settings = settings_or_exit()

    async def action(store: Store, keyring: KeyRing) -> tuple[list[dict[str, Any]], dict[str, int]]:
        relayed = await erasure.relayed_emails(store, keyring, email)
        counts = await erasure.erase_subject(
            store,
            keyring,
            email,
            actor=actor,
            now=clock_now(),
            mail_dir=settings.var_dir / "mail",
            request_id=request_id,
            received_at=utc_option(received),
        )
        return relayed, counts

    relayed, counts = with_store(action)
    removed = {k: v for k, v in counts.items() if k != "opposition_added"}
    if not any(removed.values()):
        click.echo("nothing to erase: relay holds no record or message for this address")
    else:
        for key, value in removed.items():
            click.echo(f"{key}: {value}")
    click.echo(
        "opposition list: address kept as a keyed hash only, so it is not re-enrolled in "
        "marketing without a new consent"
    )
    if relayed:
        click.echo(
            "emails already handed on (relay cannot delete these copies): delete them in the "
            "Microsoft 365 mailbox; Mailgun's logs keep the subject and the addresses for its "
            "log retention (a few days), or ask Mailgun to delete them sooner:"
        )
        for item in relayed:
            click.echo(
                f"  {item['received_at']}  form {item['form']}  {item['state']}  "
                f"message id {item['message_id'] or '-'}"
            )


@subject.command("rectify")
@click.argument("email")
@click.option("--name")
@click.option("--company")
@click.option("--phone")
@click.option("--new-email")
@actor_option
@request_option
@received_option
def rectify(
    email: str,
    name: str | None,
    company: str | None,
    phone: str | None,
    new_email: str | None,
    actor: str,
    request_id: int | None,
    received: datetime | None,
) -> None:
    """Correct fields of the record of EMAIL (refused while it is restricted).

    Example: relay subject rectify jeanne@example.fr --company "Laboratoires Martin SA"
    """
    if name is None and company is None and phone is None and new_email is None:
        msg = "give at least one of --name, --company, --phone, --new-email"
        raise click.UsageError(msg)
    region = settings_or_exit().phone_default_region
    with_store(
        lambda store, keyring: privacy.rectify_subject(
            store,
            keyring,
            email,
            actor=actor,
            now=clock_now(),
            phone_region=region,
            name=name,
            company=company,
            phone=phone,
            new_email=new_email,
            request_id=request_id,
            received_at=utc_option(received),
        )
    )
    click.echo("record rectified")


def _restrict(email: str, actor: str, restricted: bool, request_id: int | None) -> None:
    with_store(
        lambda store, keyring: privacy.restrict_subject(
            store,
            keyring,
            email,
            actor=actor,
            now=clock_now(),
            restricted=restricted,
            request_id=request_id,
        )
    )
    click.echo("record restricted (frozen)" if restricted else "restriction lifted")


@subject.command("restrict")
@click.argument("email")
@actor_option
@request_option
def restrict(email: str, actor: str, request_id: int | None) -> None:
    """Freeze the record of EMAIL: kept, marked, changed by nothing until unrestricted.

    Example: relay subject restrict jeanne@example.fr
    """
    _restrict(email, actor, True, request_id)


@subject.command("unrestrict")
@click.argument("email")
@actor_option
@request_option
def unrestrict(email: str, actor: str, request_id: int | None) -> None:
    """Lift the restriction on the record of EMAIL.

    Example: relay subject unrestrict jeanne@example.fr
    """
    _restrict(email, actor, False, request_id)


@subject.command("touch")
@click.argument("email")
@click.option("--at", type=click.DateTime(DATE_FORMATS), help="When (UTC); default: now.")
@click.option("--client", is_flag=True, help="The person became a client (kept 5 years).")
@actor_option
def touch(email: str, at: datetime | None, client: bool, actor: str) -> None:
    """Record a contact EMAIL initiated (a reply, a call, a meeting): expiry moves.

    Example: relay subject touch jeanne@example.fr --at 2026-11-24
    """
    when = utc_option(at)

    def action(store: Store, keyring: KeyRing) -> Awaitable[datetime | None]:
        now = clock_now()
        return privacy.touch_subject(
            store,
            keyring,
            email,
            actor=actor,
            now=now,
            at=when,
            client_since=(when or now) if client else None,
        )

    expires = with_store(action)
    if expires is None:
        raise click.ClickException("no record for this address")
    click.echo(f"record kept until {expires.date().isoformat()}")


@subject.command("show")
@click.argument("email")
@actor_option
def show(email: str, actor: str) -> None:
    """Show the record of EMAIL (the view is audited).

    Example: relay subject show jeanne@example.fr
    """
    record = with_store(
        lambda store, keyring: privacy.find_prospect(
            store, keyring, email, actor=actor, now=clock_now()
        )
    )
    if record is None:
        raise click.ClickException("no record for this address")
    click.echo(json.dumps(record, indent=2, ensure_ascii=False))


@subject.command("receive")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("email")
@received_option
@actor_option
def receive(kind: str, email: str, received: datetime | None, actor: str) -> None:
    """Register a request as received (its month starts then); complete it with --request.

    Example: relay subject receive erase jeanne@example.fr --received 2026-11-20
    """
    when = utc_option(received) or clock_now()
    request_id = with_store(
        lambda store, keyring: privacy.open_request(
            store, keyring, email, actor=actor, now=clock_now(), kind=kind, received_at=when
        )
    )
    due = request_due(when)
    click.echo(f"request {request_id} registered; answer due by {due.date().isoformat()}")


def _request_row(r: audit.Request, now: datetime) -> dict[str, Any]:
    status = r.status(now)
    return {
        "id": r.id,
        "kind": r.kind,
        "received": r.received_at.date().isoformat(),
        "due": r.due_at.date().isoformat(),
        "status": status,
        "completed": r.completed_at.date().isoformat() if r.completed_at else None,
        "actor": r.actor,
    }


@subject.command("requests")
@click.option("--days", default=90, show_default=True, help="Also list those done this recently.")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@click.pass_context
def requests(ctx: click.Context, days: int, as_json: bool) -> None:
    """List open and recent requests; exit 1 if one is overdue (for a cron alert).

    Example: relay subject requests || mail -s "GDPR request overdue" dpo@example.com
    """
    now = clock_now()
    rows = with_store(lambda store, _k: store.read(audit.list_requests(now - timedelta(days=days))))
    shaped = [_request_row(r, now) for r in rows]
    if as_json:
        click.echo(json.dumps(shaped, indent=2))
    elif not shaped:
        click.echo("no open or recent requests")
    else:
        click.echo(f"{'id':>5}  {'kind':<10} {'received':<10}  {'due':<10}  {'status':<12} actor")
        for r in shaped:
            click.echo(
                f"{r['id']:>5}  {r['kind']:<10} {r['received']:<10}  {r['due']:<10}  "
                f"{r['status']:<12} {r['actor']}"
            )
    overdue = sum(r["status"] == "OVERDUE" for r in shaped)
    if overdue:
        click.echo(f"{overdue} request(s) overdue", err=True)
        ctx.exit(1)
