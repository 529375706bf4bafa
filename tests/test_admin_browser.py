"""/admin in a real headless Chromium against a real `relay serve`, without JavaScript tricks.

Debian's `chromium` is driven through Playwright's `executable_path` (Playwright's own browser
download is never used). Locally, without chromium or Playwright, the test skips saying so;
with CI=true it must run (`make test` installs chromium there).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.admin_helpers import PASSWORDS, USERS_JSON
from tests.browser_support import relay_serving
from tests.deliveries_helpers import WEBHOOK_KEY, event_data, signed
from tests.helpers import VALID

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

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _missing(what: str) -> None:
    message = f"{what}; `make test` installs Debian's chromium when CI=true"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(name="relay_url")
def fixture_relay_url(tmp_path: Path, forms_file: Path) -> Iterator[str]:
    """A real `relay serve` on a free 127.0.0.1 port, with two admins and webhooks on. It does
    not dispatch (as when `relay worker` processes deliver), so a retried row stays queued."""
    forms = forms_file.read_text(encoding="utf-8")
    extra = {"RELAY_ADMIN_USERS": USERS_JSON, "RELAY_MAILGUN_WEBHOOK_SIGNING_KEY": WEBHOOK_KEY}
    with relay_serving(tmp_path / "serve", forms, **extra) as url:
        yield url


def _seed(url: str) -> dict[str, str]:
    """One delivered and one permanently failed submission, through the real HTTP endpoints."""
    headers = {"Accept": "application/json", "Origin": "https://www.example.com"}
    ids = {}
    for name in ("delivered", "failed"):
        response = httpx.post(f"{url}/f/contact", json=VALID, headers=headers)
        assert response.status_code == 202
        ids[name] = response.json()["id"]
    now = datetime.now(UTC)
    status = {"code": 550, "message": "5.1.1 RESOLVER.ADR.RecipNotFound"}
    events = [
        event_data(ids["delivered"], "delivered", now),
        event_data(
            ids["failed"], "failed", now, severity="permanent", reason="bounce", status=status
        ),
    ]
    for data in events:
        assert httpx.post(f"{url}/webhooks/mailgun", json=signed(data, now)).status_code == 200
    return ids


def _browser() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright for Python is not installed")
    if not shutil.which(CHROMIUM):
        _missing(f"{CHROMIUM} is not installed")
    return sync_playwright()


def test_admin_in_a_real_browser(relay_url):
    """Log in, see a delivered and a failed submission, open a timeline, retry, log out; a
    viewer cannot reach the prospect page."""
    ids = _seed(relay_url)
    with _browser() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(java_script_enabled=False).new_page()
            page.set_default_timeout(5000)
            page.goto(f"{relay_url}/admin/deliveries")
            assert "/admin/login" in page.url
            page.fill("#username", "diane")
            page.fill("#password", PASSWORDS["diane"])
            page.click("button[type=submit]")
            assert page.url.endswith("/admin/deliveries")
            table = page.inner_text("#deliveries")
            assert f"{ids['delivered']}\tcontact" in table
            rows = {r.split("\t")[0]: r for r in table.splitlines()}
            assert "\tdelivered\t" in rows[ids["delivered"]]
            assert "\tfailed\t" in rows[ids["failed"]]

            page.click(f"text={ids['failed']}")
            assert page.inner_text("#state") == "failed"
            assert "failed/permanent" in page.inner_text("#timeline")
            assert "RecipNotFound" in page.inner_text("#last-error")
            page.click("text=Retry delivery")
            assert "Requeued" in page.inner_text("[role=status]")
            assert page.inner_text("#state") == "queued"

            page.click("text=Log out")
            assert page.url.endswith("/admin/login")
            page.goto(f"{relay_url}/admin/deliveries")
            assert "/admin/login" in page.url

            page.fill("#username", "vera")
            page.fill("#password", PASSWORDS["vera"])
            page.click("button[type=submit]")
            assert "Prospects" not in page.inner_text("header")
            response = page.goto(f"{relay_url}/admin/prospects")
            assert response is not None
            assert response.status == 403
            assert "Not allowed" in page.inner_text("h1")
        finally:
            browser.close()
