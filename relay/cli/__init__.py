"""The `relay` command: one click group; each command parses, calls, and shapes the output.

Domain errors become click.ClickException (exit 1) with a message that says what to fix.
"""

from __future__ import annotations

import click

from relay import __version__
from relay.cli.admin import admin
from relay.cli.backup import db_backup, db_restore
from relay.cli.consent import consent
from relay.cli.deliveries import deliveries
from relay.cli.ops import check, db, keys
from relay.cli.purge import purge_command
from relay.cli.send_test import send_test_command
from relay.cli.serve import serve, worker
from relay.cli.subject import subject


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="relay")
def main() -> None:
    """relay: a privacy-first contact-form relay.

    Settings come from RELAY_* environment variables (see the README); the forms file from
    RELAY_FORMS_FILE.
    """


main.add_command(serve)
main.add_command(check)
main.add_command(db)
main.add_command(keys)
# --- issue 5 ---
main.add_command(deliveries)
main.add_command(admin)
# --- issue 4 ---
main.add_command(subject)
main.add_command(consent)
main.add_command(purge_command)
# --- issue 3 ---
main.add_command(worker)
# --- issue 12 ---
db.add_command(db_backup)
db.add_command(db_restore)
main.add_command(send_test_command)
