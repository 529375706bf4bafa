"""`relay purge`: apply the retention rules now (the Housekeeper does it daily by itself)."""

from __future__ import annotations

import json

import click

from relay.cli.common import clock_now, run, settings_or_exit
from relay.mail.eml import remove_expired
from relay.minimise.housekeeping import bounds_of
from relay.minimise.retention import PurgeReport, body_cutoff, purge, restricted_past_expiry
from relay.store import Store

LABELS = {
    "prospects": "expired prospect records",
    "consent_events": "consent events of expired records",
    "submissions_unlinked": "delivery-log rows unlinked from expired records",
    "bodies_wiped": "outbox bodies past their bound",
    "delivery_log_rows": "delivery-log rows older than 2 years",
    "opposition_entries": "opposition entries past their 3 years",
    "rights_register_entries": "rights-register entries past their 3 years",
    "audit_entries": "audit entries past their retention",
    "requests": "completed requests past the register's retention",
    "idempotency_keys": "idempotency answers past their TTL",
    "quarantined": "quarantined submissions past their retention",
    "proof_nonces": "used proofs of work past their challenge's expiry",
}


@click.command("purge")
@click.option("--dry-run", is_flag=True, help="Only count what would go; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def purge_command(dry_run: bool, as_json: bool) -> None:
    """Delete what has outlived its retention period now, or with --dry-run show it.

    Example: relay purge --dry-run
    """
    settings = settings_or_exit()

    now = clock_now()

    async def go() -> tuple[PurgeReport, int]:
        store = await Store.from_settings(settings)
        try:
            report = await purge(
                store, now, dry_run=dry_run, bounds=bounds_of(settings), actor="cli"
            )
            return report, await restricted_past_expiry(store, now)
        finally:
            await store.close()

    report, restricted = run(go())
    files = 0
    if not dry_run:
        cutoff = body_cutoff(now, settings.body_retention_days)
        files = remove_expired(settings.var_dir / "mail", cutoff)
    if as_json:
        extra = {"restricted_kept": restricted, "mail_files": files}
        click.echo(json.dumps({"dry_run": dry_run, **report.as_dict(), **extra}))
        return
    verb = "would remove" if dry_run else "removed"
    click.echo(f"purge {verb} {report.total} item(s)")
    for key, count in report.as_dict().items():
        click.echo(f"  {LABELS[key]}: {count}")
    if not dry_run:
        click.echo(f"  trial email files (file transport) past their bound: {files}")
    click.echo(
        f"restricted records past their expiry, kept until the restriction is lifted: {restricted}"
    )
