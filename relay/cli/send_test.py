"""`relay send-test`: prove a form's delivery works before a prospect depends on it."""

from __future__ import annotations

import click

from relay.cli.common import clock, run, settings_or_exit
from relay.config import load_forms
from relay.deliver.send_test import send_test
from relay.errors import RelayError


@click.command("send-test")
@click.option("--form", "form_id", required=True, help="The form whose recipients get it.")
@click.option(
    "--timeout",
    default=60.0,
    show_default=True,
    type=click.FloatRange(0, 600),
    help="Seconds to wait for Mailgun's verdict (0: do not wait).",
)
def send_test_command(form_id: str, timeout: float) -> None:
    """Send a clearly marked test message to a form's recipients through the configured
    transport, wait for Mailgun's verdict, and say what happened (and how to fix it).

    Recorded in the delivery log as a test; creates no prospect. Exit 1 if it failed.

    Example: relay send-test --form contact --timeout 120
    """
    settings = settings_or_exit()
    try:
        forms = load_forms(settings.effective_forms_file)
    except RelayError as exc:
        raise click.ClickException(str(exc)) from None
    form = forms.get(form_id)
    if form is None:
        known = ", ".join(sorted(forms))
        raise click.ClickException(f"there is no form {form_id!r} (the forms file has: {known})")
    click.echo(f"sending a test message for form {form.id} to {', '.join(form.recipients)}")
    report = run(send_test(settings, form, clock=clock(), wait_seconds=timeout))
    click.echo(f"via {report.via}; delivery log id {report.submission_id} (marked as a test)")
    for step in report.steps:
        click.echo(step)
    for line in report.verdict.lines():
        click.echo(line)
    click.echo(f"timeline: relay deliveries show {report.submission_id}")
    if not report.verdict.ok:
        raise SystemExit(1)
