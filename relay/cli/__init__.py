"""The `relay` command: one click group; each command parses, calls, and shapes the output.

Domain errors become click.ClickException (exit 1) with a message that says what to fix.

Commands are imported when run, not when listed: importing all of them (and SQLAlchemy,
pydantic, the privacy modules with them) takes half a second, so `relay --help` would wait for
it. COMMANDS says where each lives and its one-line help; tests/test_docs.py checks each line
against the command's own docstring.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Callable

import click

from relay import __version__


def _load(path: str) -> click.Command:
    """Import a command's module with the cyclic garbage collector paused, then freeze it.

    An import makes objects that live as long as the process (for `relay serve`, ~800 modules
    of them). The collector walking them again and again while they are made, and after, is
    about 15% of the start-up CPU, for no garbage; frozen (gc.freeze), they are never walked
    again, which also keeps the full collections of a busy server short.
    """
    module, _, name = path.partition(":")
    collecting = gc.isenabled()
    gc.collect()  # so that no garbage is frozen (cheap: before the import the heap is small)
    gc.disable()
    try:
        command: click.Command = getattr(importlib.import_module(module), name)
        gc.freeze()
    finally:
        if collecting:
            gc.enable()
    return command


def _db() -> click.Command:
    db = _load("relay.cli.ops:db")
    assert isinstance(db, click.Group)  # noqa: S101 - `relay db` is a group
    for name in ("db_backup", "db_restore"):  # issue 12
        db.add_command(_load(f"relay.cli.backup:{name}"))
    return db


#: name → (how to import it, the first paragraph of its docstring, for `relay --help`).
COMMANDS: dict[str, tuple[Callable[[], click.Command], str]] = {
    "admin": (lambda: _load("relay.cli.admin:admin"), "Admin web access (/admin)."),
    "check": (
        lambda: _load("relay.cli.ops:check"),
        "Validate the settings and the forms file; reach the database (its schema revision "
        "against this release's) and Redis when configured; open a sample of the stored rows "
        "(every key id the database holds must be in RELAY_SECRET_KEY); exit 1 and say what "
        "is wrong.",
    ),
    "consent": (
        lambda: _load("relay.cli.consent:consent"),
        "Marketing consent: withdrawal and self-service withdrawal links.",
    ),
    "db": (_db, "Database schema: upgrade and inspect (Alembic migrations)."),
    "deliveries": (
        lambda: _load("relay.cli.deliveries:deliveries"),
        "List recent submissions: id, form, received, state, attempts, last event, age.",
    ),
    "keys": (lambda: _load("relay.cli.ops:keys"), "Encryption keys for personal data at rest."),
    "purge": (
        lambda: _load("relay.cli.purge:purge_command"),
        "Delete what has outlived its retention period now, or with --dry-run show it.",
    ),
    "send-test": (
        lambda: _load("relay.cli.send_test:send_test_command"),
        "Send a clearly marked test message to a form's recipients through the configured "
        "transport, wait for Mailgun's verdict, and say what happened (and how to fix it).",
    ),
    "serve": (
        lambda: _load("relay.cli.serve:serve"),
        "Serve the forms (POST /f/{form_id}) on HOST:PORT, and deliver them.",
    ),
    "subject": (
        lambda: _load("relay.cli.subject:subject"),
        "Data-subject requests: export, erase, rectify, restrict; the request register.",
    ),
    "worker": (
        lambda: _load("relay.cli.serve:worker"),
        "Deliver queued submissions, without serving forms, until SIGTERM or Ctrl-C.",
    ),
}


def short_help(first: str, limit: int) -> str:
    """A docstring's first paragraph shortened as click shortens a command's help."""
    return click.Command(None, help=first).get_short_help_str(limit)


class LazyGroup(click.Group):
    """A group whose COMMANDS are imported on first use, and listed without importing them."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.add_command(COMMANDS[cmd_name][0](), cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            loaded = self.commands.get(name)
            if loaded is not None:
                rows.append((name, loaded.get_short_help_str(limit)))
            else:
                rows.append((name, short_help(COMMANDS[name][1], limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="relay")
def main() -> None:
    """relay: a privacy-first contact-form relay.

    Settings come from RELAY_* environment variables (see the README); the forms file from
    RELAY_FORMS_FILE.
    """
