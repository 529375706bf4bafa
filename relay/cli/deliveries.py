"""`relay deliveries`: the delivery log from a terminal — list, show a timeline, retry, sync.

Output convention: an aligned table on a terminal, tab-separated lines when piped (for grep,
cut, awk), JSON with --json. Nothing printed here is personal data: ids, forms, states,
times, Mailgun's reasons.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click

from relay import spans, states
from relay.cli.common import clock_now, run, settings_or_exit
from relay.config import Settings, load_forms
from relay.defence.quarantine import Result, release, remove
from relay.errors import RelayError
from relay.keyfile import load_keyring
from relay.mail.mailgun_logs import MailgunLogs, MailgunLogsError, check_settings
from relay.mail.reconcile import SyncReport, sync_deliveries
from relay.spans import human_age, zoned
from relay.store import Store
from relay.store.deliveries import (
    Delivery,
    DeliveryFilter,
    list_deliveries,
    requeue,
    timeline,
)

T = TypeVar("T")
COLUMNS = ("id", "form", "received", "state", "attempts", "last event", "age")
MAX_LIMIT = 10_000


def parse_since(text: str, now: datetime) -> datetime:
    """--since as a span or a date; a clear usage error otherwise."""
    try:
        return spans.parse_since(text, now)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, tty: bool) -> str:
    """Aligned columns for a person; tab-separated lines (header included) for a pipe."""
    if not tty:
        return "\n".join("\t".join(r) for r in [header, *rows])
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _row(d: Delivery, now: datetime, zone: tzinfo = UTC) -> list[str]:
    return [
        d.id,
        d.form_id,
        zoned(d.received_at, zone),
        d.state,
        str(d.attempts),
        d.last_event or (d.caught_by if d.quarantined else ""),
        human_age(d.age(now)),
    ]


def _as_json(d: Delivery, now: datetime) -> dict[str, Any]:
    return {
        "id": d.id,
        "form": d.form_id,
        "received_at": d.received_at.isoformat(),
        "state": d.state,
        "attempts": d.attempts,
        "last_event": d.last_event,
        "last_event_at": d.last_event_at.isoformat() if d.last_event_at else None,
        "last_error": d.last_error,
        "final_at": d.final_at.isoformat() if d.final_at else None,
        "body_present": d.body_present,
        "quarantine_reason": d.quarantine_reason,
        "age_seconds": int(d.age(now).total_seconds()),
    }


async def with_store(settings: Settings, use: Callable[[Store], Awaitable[T]]) -> T:
    """Open the configured database for one command, and close it whatever happens."""
    store = await Store.from_settings(settings)
    try:
        return await use(store)
    finally:
        await store.close()


def actor() -> str:
    """Who runs the command, for the audit log: the operating-system user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@click.group(invoke_without_command=True)
@click.option("--state", type=click.Choice(states.ALL), help="Only submissions in this state.")
@click.option("--form", "form_id", metavar="FORM", help="Only this form's submissions.")
@click.option("--since", metavar="SPAN|DATE", help="Received since: 24h, 7d, or 2026-11-01.")
@click.option(
    "--limit",
    default=100,
    show_default=True,
    type=click.IntRange(1, MAX_LIMIT),
    help="Show at most this many (newest first); a note on stderr says when more match.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
@click.pass_context
def deliveries(
    ctx: click.Context,
    state: str | None,
    form_id: str | None,
    since: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List recent submissions: id, form, received, state, attempts, last event, age.

    At most --limit rows (100), newest first; when more match, a note on stderr says so.

    Example: relay deliveries --state failed --since 7d --limit 500
    """
    if ctx.invoked_subcommand is not None:
        return
    settings = settings_or_exit()
    now = clock_now()
    flt = DeliveryFilter(
        state=state,
        form=form_id,
        since=parse_since(since, now) if since else None,
        limit=limit + 1,  # one more than shown: tells whether the limit cut the list
    )
    rows = run(with_store(settings, lambda s: s.read(list_deliveries(flt))))
    if len(rows) > limit:
        rows = rows[:limit]
        click.echo(
            f"showing the newest {limit} matching submissions; more match: raise --limit "
            f"(at most {MAX_LIMIT}) or narrow with --state, --form or --since",
            err=True,
        )
    if as_json:
        click.echo(json.dumps([_as_json(d, now) for d in rows], indent=2))
        return
    if not rows and sys.stdout.isatty():
        click.echo("no submissions match", err=True)
        return
    click.echo(
        render_table(
            COLUMNS,
            [_row(d, now, ZoneInfo(settings.timezone)) for d in rows],
            tty=sys.stdout.isatty(),
        )
    )


@deliveries.command("show")
@click.argument("submission_id")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")
def show(submission_id: str, as_json: bool) -> None:
    """Print one submission's delivery timeline: attempts and Mailgun events.

    Example: relay deliveries show 0193a5c8-7d1e-7c3a-9f2b-4b1d2e3f4a5b
    """
    settings = settings_or_exit()
    found = run(with_store(settings, lambda s: s.read(timeline(submission_id))))
    if found is None:
        raise click.ClickException(f"no submission {submission_id}")
    now = clock_now()
    d = found.delivery
    if as_json:
        steps = [
            {"at": s.at.isoformat(), "kind": s.kind, "what": s.what, "detail": s.detail}
            for s in found.steps
        ]
        click.echo(json.dumps({**_as_json(d, now), "timeline": steps}, indent=2))
        return
    click.echo(f"submission {d.id}  form {d.form_id}  state {d.state}")
    if d.last_error:
        click.echo(f"last error: {d.last_error}")
    zone = ZoneInfo(settings.timezone)
    body = "present" if d.body_present else f"wiped {zoned(d.body_wiped_at, zone)}".strip()
    click.echo(f"body: {body}")
    rows = [[zoned(s.at, zone), s.kind, s.what, s.detail or ""] for s in found.steps]
    click.echo(render_table(("at", "kind", "what", "detail"), rows, tty=sys.stdout.isatty()))


@deliveries.command("retry")
@click.argument("submission_id")
def retry(submission_id: str) -> None:
    """Requeue a failed or dead submission, while its encrypted body still exists.

    Example: relay deliveries retry 0193a5c8-7d1e-7c3a-9f2b-4b1d2e3f4a5b
    """
    settings = settings_or_exit()
    result = run(
        with_store(settings, lambda s: s.write(requeue(submission_id, clock_now(), actor=actor())))
    )
    explain = {
        "not_found": f"no submission {submission_id}",
        "not_retryable": f"submission {submission_id} is {result.state}; only failed or dead "
        "submissions can be retried",
        "body_gone": f"submission {submission_id} can no longer be sent: its body was wiped",
    }
    if result.outcome != "requeued":
        raise click.ClickException(explain[result.outcome])
    click.echo(f"submission {submission_id} requeued")


@deliveries.command("release")
@click.argument("submission_id")
def release_command(submission_id: str) -> None:
    """Release a quarantined submission: it is delivered and recorded like any other.

    Example: relay deliveries release 0193a5c8-7d1e-7c3a-9f2b-4b1d2e3f4a5b
    """
    settings = settings_or_exit()
    try:
        forms = load_forms(settings.effective_forms_file)
        keyring = load_keyring(settings)
    except RelayError as exc:
        raise click.ClickException(str(exc)) from None
    job = release(submission_id, clock_now(), actor=actor(), keyring=keyring, forms=forms)
    _quarantine_done(submission_id, run(with_store(settings, lambda s: s.write(job))))


@deliveries.command("delete")
@click.argument("submission_id")
def delete_command(submission_id: str) -> None:
    """Delete a quarantined submission for good (only quarantined ones can be deleted).

    Example: relay deliveries delete 0193a5c8-7d1e-7c3a-9f2b-4b1d2e3f4a5b
    """
    settings = settings_or_exit()
    job = remove(submission_id, clock_now(), actor=actor())
    _quarantine_done(submission_id, run(with_store(settings, lambda s: s.write(job))))


def _quarantine_done(submission_id: str, result: Result) -> None:
    if not result.done:
        raise click.ClickException(f"submission {submission_id}: {result.explanation}")
    click.echo(f"submission {submission_id} {result.explanation}")


@deliveries.command("sync")
def sync() -> None:
    """Ask Mailgun's EU Logs API about deliveries without an outcome, and record what it says.

    Needs RELAY_MAILGUN_READ_KEY and RELAY_MAILGUN_DOMAIN. Deliveries still without an
    outcome after RELAY_MAILGUN_RETENTION_DAYS are marked `unknown`.

    Example: relay deliveries sync
    """
    settings = settings_or_exit()

    async def go(store: Store) -> SyncReport:
        logs = MailgunLogs(settings)
        try:
            return await sync_deliveries(store, logs, clock_now(), settings=settings)
        finally:
            await logs.aclose()

    try:
        check_settings(settings)
    except MailgunLogsError as exc:
        raise click.ClickException(str(exc)) from None
    report = run(with_store(settings, go))
    click.echo(report.summary())
    if report.error:
        raise click.ClickException(f"sync stopped early: {report.error}")
