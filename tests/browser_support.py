"""For the browser suites: a real `relay serve` (its own var/, a forms file, the test key) and
Debian's chromium driven through Playwright's async API.

The async API, not the sync one: the sync API runs the test's code in greenlets, which
coverage (`concurrency = ["thread"]`) does not follow, so a browser test's lines after
`sync_playwright()` were reported as never run. Debian's `chromium` is driven through
`executable_path` (Playwright's own browser download is never used). Locally, without chromium
or Playwright, a test skips saying so; with CI=true it must run (`make test` installs chromium).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import socket
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec, TypeVar

import pytest

from tests.conftest import TEST_KEY
from tests.instances import Proc

if TYPE_CHECKING:
    from playwright.async_api import Browser

CHROMIUM = os.environ.get("RELAY_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

P = ParamSpec("P")
T = TypeVar("T")


def missing(what: str) -> NoReturn:
    """Skips the test saying what is missing; with CI=true, fails it instead."""
    message = f"{what}; `make test` installs Debian's chromium when CI=true"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def run_with_asyncio(test: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """An `async def` test run by an ordinary pytest test function with `asyncio.run`."""

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return asyncio.run(test(*args, **kwargs))

    return run


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's chromium, headless, closed on the way out."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        missing("Playwright for Python is not installed")
    if not shutil.which(CHROMIUM):
        missing(f"{CHROMIUM} is not installed")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


def reserved_port() -> int:
    """A port nothing listens on yet (bound, then closed): only for an address that must be
    known before its server starts (see relay_serving); servers otherwise bind port 0."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def relay_serving(tmp_path: Path, forms_toml: str, **env_extra: str) -> Iterator[str]:
    """A real `relay serve` on `forms_toml`; yields its URL once it listens.

    It binds port 0 and names the port it got, unless the forms file holds `{relay}` (its
    own origin, an allowed origin for relay's example page): that must be written before it
    starts, so then a port is reserved first.
    """
    tmp_path.mkdir(parents=True, exist_ok=True)
    forms = tmp_path / "forms.toml"
    port = 0
    if "{relay}" in forms_toml:
        port = reserved_port()
        forms_toml = forms_toml.replace("{relay}", f"http://127.0.0.1:{port}")
    forms.write_text(forms_toml, encoding="utf-8")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "RELAY_VAR_DIR": str(tmp_path / "var"),
        "RELAY_FORMS_FILE": str(forms),
        "RELAY_SECRET_KEY": TEST_KEY,
        "RELAY_LOG_FORMAT": "json",
        "RELAY_DISPATCH_IN_SERVE": "false",
        **env_extra,
    }
    process = Proc("relay serve", ["serve", "--port", str(port)], env, tmp_path)
    try:
        yield process.url()
    finally:
        process.stop()
