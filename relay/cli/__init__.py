"""The `relay` command: one click group; each command parses, calls, and shapes the output.

Domain errors become click.ClickException (exit 1) with a message that says what to fix.
"""

from __future__ import annotations

import click

from relay import __version__
from relay.cli.ops import check, db, keys
from relay.cli.serve import serve, worker


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
main.add_command(worker)
