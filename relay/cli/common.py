"""Helpers shared by the commands: settings loading with readable errors, and async running."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import click

from relay.config import Settings, load_settings
from relay.errors import RelayError

T = TypeVar("T")


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
