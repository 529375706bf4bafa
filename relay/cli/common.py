"""Helpers shared by the commands: settings loading with readable errors, async running, and
the clock they read."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import click

from relay.clock import Clock, utcnow
from relay.config import Settings, load_settings
from relay.errors import RelayError

T = TypeVar("T")


@dataclass(frozen=True)
class Seams:
    """What a caller of `relay.cli.main` may replace, passed as click's `obj`: the clock.

    The console script passes nothing (the system clock); tests pass their fake clock
    (`CliRunner.invoke(main, args, obj=Seams(clock))`), so a command and the app they drive
    read the same "now" without patching time.
    """

    clock: Clock = utcnow


def clock() -> Clock:
    """The clock of the running command: the caller's (click `obj`), else the system's."""
    ctx = click.get_current_context(silent=True)
    seams = ctx.find_object(Seams) if ctx is not None else None
    return seams.clock if seams is not None else utcnow


def clock_now() -> datetime:
    """Now, by the running command's clock (aware UTC)."""
    return clock()()


def settings_or_exit() -> Settings:
    """The settings from the environment, or exit 1 with every problem listed."""
    try:
        return load_settings()
    except RelayError as exc:
        raise click.ClickException(str(exc)) from None


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine, turning relay's own errors into a clean exit 1."""
    try:
        return asyncio.run(coro)
    except RelayError as exc:
        raise click.ClickException(str(exc)) from None
