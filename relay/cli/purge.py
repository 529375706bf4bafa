"""`relay purge`: apply the retention rules now (the Housekeeper does it daily by itself)."""

from __future__ import annotations

import json

import click

from relay.cli.common import run, settings_or_exit
from relay.clock import utcnow
from relay.housekeeping import bounds_of
from relay.retention import PurgeReport, purge
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

    async def go() -> PurgeReport:
        store = await Store.from_settings(settings)
        try:
            return await purge(
                store, utcnow(), dry_run=dry_run, bounds=bounds_of(settings), actor="cli"
            )
        finally:
            await store.close()

    report = run(go())
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, **report.as_dict()}))
        return
    verb = "would remove" if dry_run else "removed"
    click.echo(f"purge {verb} {report.total} item(s)")
    for key, count in report.as_dict().items():
        click.echo(f"  {LABELS[key]}: {count}")
