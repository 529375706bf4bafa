"""The real ALTCHA widget (npm `altcha`, pinned in the root package.json) in Debian's
chromium solves relay's challenge on a page, and relay accepts the form once.

The page is served by a small local HTTP server of the test (another origin than relay, as on a
real site): the form, and the widget's own dist file from node_modules, installed
by the test setup (`npm ci`; `make test` runs it), never committed. The page posts with fetch
and Accept: application/json, as Formspree's clients do, and shows each answer.
"""

from __future__ import annotations

import asyncio
import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser_support import chromium, missing, relay_serving, run_with_asyncio
from tests.helpers import VALID

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NODE_DIR = Path(__file__).resolve().parent.parent  # the repository root's package.json
WIDGET = NODE_DIR / "node_modules" / "altcha" / "dist" / "main" / "altcha.js"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Contact</title>
<script type="module" src="/altcha.js"></script></head>
<body>
<form id="contact" action="{relay}/f/guarded" method="post">
  <input name="name" value="{name}"> <input name="email" value="{email}">
  <textarea name="message">{message}</textarea>
  <altcha-widget challenge="{relay}/f/guarded/challenge" auto="onload"
    configuration='{{"humanInteractionSignature": false}}'></altcha-widget>
  <button type="submit">Send</button>
</form>
<ol id="answers"></ol>
<script>
document.getElementById("contact").addEventListener("submit", async (event) => {{
  event.preventDefault();
  const response = await fetch(event.target.action, {{
    method: "POST", body: new FormData(event.target), headers: {{"Accept": "application/json"}}
  }});
  const body = await response.json();
  const item = document.createElement("li");
  item.textContent = response.status + " " + (body.ok ? "ok" : body.errors[0].code);
  document.getElementById("answers").appendChild(item);
}});
</script>
</body></html>
"""

FORMS = """
[[forms]]
id = "guarded"
recipients = ["sales@example.com"]
allowed_origins = ["{origin}"]
legal_basis = "legitimate_interest"
notice_version = "2026-03-20"
proof_of_work = true
min_fill_seconds = 1
"""


def _node_modules() -> None:
    """`npm ci` when node_modules lacks the widget (what `make npm`, run by `make test`, does)."""
    if WIDGET.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        missing("npm is not installed (needed for the ALTCHA widget)")
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR, check=True
    )


class _Site(http.server.SimpleHTTPRequestHandler):
    """The web site: `/` is the form page, `/altcha.js` the widget from node_modules."""

    page = b""

    def do_GET(self) -> None:
        if self.path == "/altcha.js":
            body, kind = WIDGET.read_bytes(), "text/javascript"
        else:
            body, kind = self.page, "text/html; charset=utf-8"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        return


@pytest.fixture(name="site")
def fixture_site(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A real `relay serve` with a proof-of-work form, and the site whose page uses it."""
    _node_modules()

    class Site(_Site):  # this test's own page, set once relay's URL is known
        page = b""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Site)  # the system picks the port
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with relay_serving(tmp_path, FORMS.format(origin=origin)) as relay:
            Site.page = PAGE.format(relay=relay, **VALID).encode()
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            try:
                yield {"page": f"{origin}/", "relay": relay, "var": str(tmp_path / "var")}
            finally:
                server.shutdown()
    finally:
        server.server_close()


def _queued(var: str) -> list[tuple[str, str]]:
    import sqlite3

    db = sqlite3.connect(Path(var) / "relay.db")
    try:
        return list(db.execute("SELECT form_id, state FROM submissions"))
    finally:
        db.close()


@run_with_asyncio
async def test_the_altcha_widget_solves_relays_challenge_and_the_form_is_accepted_once(site):
    """The widget fetches and solves the challenge; the form is accepted (202, queued); the
    same page sent again with the same payload is refused as PROOF_OF_WORK_REUSED."""
    async with chromium() as browser:
        page = await browser.new_page()
        page.set_default_timeout(60_000)
        await page.goto(site["page"])
        await page.wait_for_function(
            "document.querySelector('input[name=altcha]')"
            " && document.querySelector('input[name=altcha]').value.length > 0"
        )
        payload = await page.input_value("input[name=altcha]")
        await asyncio.sleep(1.2)  # a person takes longer than min_fill_seconds to write the message
        await page.click("button[type=submit]")
        await page.wait_for_selector("#answers li:nth-child(1)")
        await page.click("button[type=submit]")
        await page.wait_for_selector("#answers li:nth-child(2)")
        answers = (await page.inner_text("#answers")).splitlines()
        assert await page.input_value("input[name=altcha]") == payload  # the same payload twice
    assert answers == ["202 ok", "403 PROOF_OF_WORK_REUSED"]
    assert _queued(site["var"]) == [("guarded", "queued")]
