"""/admin in a real headless Chromium against a real `relay serve`, without JavaScript tricks.

Debian's `chromium` is driven through Playwright's `executable_path` (Playwright's own browser
download is never used). Locally, without chromium or Playwright, the test skips saying so;
with CI=true it must run (`make test` installs chromium there).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.admin_helpers import PASSWORDS, USERS_JSON
from tests.browser_support import chromium, relay_serving, run_with_asyncio
from tests.deliveries_helpers import WEBHOOK_KEY, event_data, signed
from tests.helpers import VALID

pytestmark = [pytest.mark.browser, pytest.mark.slow]


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


@run_with_asyncio
async def test_admin_in_a_real_browser(relay_url):
    """Log in, see a delivered and a failed submission, open a timeline, retry, log out; a
    viewer cannot reach the prospect page."""
    ids = _seed(relay_url)
    async with chromium() as browser:
        page = await (await browser.new_context(java_script_enabled=False)).new_page()
        page.set_default_timeout(5000)
        await page.goto(f"{relay_url}/admin/deliveries")
        assert "/admin/login" in page.url
        await page.fill("#username", "diane")
        await page.fill("#password", PASSWORDS["diane"])
        await page.click("button[type=submit]")
        assert page.url.endswith("/admin/deliveries")
        table = await page.inner_text("#deliveries")
        assert f"{ids['delivered']}\tcontact" in table
        rows = {r.split("\t")[0]: r for r in table.splitlines()}
        assert "\tdelivered\t" in rows[ids["delivered"]]
        assert "\tfailed\t" in rows[ids["failed"]]

        await page.click(f"text={ids['failed']}")
        assert await page.inner_text("#state") == "failed"
        assert "failed/permanent" in await page.inner_text("#timeline")
        assert "RecipNotFound" in await page.inner_text("#last-error")
        await page.click("text=Retry delivery")
        assert "Requeued" in await page.inner_text("[role=status]")
        assert await page.inner_text("#state") == "queued"

        await page.click("text=Log out")
        assert page.url.endswith("/admin/login")
        await page.goto(f"{relay_url}/admin/deliveries")
        assert "/admin/login" in page.url

        await page.fill("#username", "vera")
        await page.fill("#password", PASSWORDS["vera"])
        await page.click("button[type=submit]")
        assert "Prospects" not in await page.inner_text("header")
        response = await page.goto(f"{relay_url}/admin/prospects")
        assert response is not None
        assert response.status == 403
        assert "Not allowed" in await page.inner_text("h1")
