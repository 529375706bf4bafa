"""Formspree's real clients (@formspree/core, @formspree/react from npm) in Debian's chromium,
posting from a site's page to a real `relay serve`.

The clients come from the pinned package.json (installed by `make npm`, never committed) and
are bundled by esbuild at test time. The site's page is served by Playwright on an origin of
its own (a port nothing listens on), so the browser posts cross-origin with a CORS preflight,
as on a real site. Locally, without chromium, Playwright or node_modules, the test skips
saying so; with CI=true it must run.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser_support import (
    chromium,
    missing,
    relay_serving,
    reserved_port,
    run_with_asyncio,
)

if TYPE_CHECKING:
    from playwright.async_api import Page

ROOT = Path(__file__).resolve().parent.parent
ESBUILD = ROOT / "node_modules" / ".bin" / "esbuild"
SITE_PORT = reserved_port()  # nothing listens: Playwright answers for the site's origin
SITE = f"http://127.0.0.1:{SITE_PORT}"
FORMS = f"""
[[forms]]
id = "demo"
language = "en"
recipients = ["sales@example.com"]
allowed_origins = ["{SITE}", "{{relay}}"]
legal_basis = "contract"
notice_version = "1"
required = ["email", "message"]

[[forms.fields]]
name = "product"
label = {{ fr = "Produit", en = "Product" }}
kind = "select"
choices = ["Sérum", "Milieu"]
required = true

[[forms]]
id = "guarded"
language = "en"
recipients = ["sales@example.com"]
allowed_origins = ["{SITE}"]
legal_basis = "contract"
notice_version = "1"
required = ["email", "message"]
proof_of_work = true
min_fill_seconds = 1
"""
PAGE = """<!doctype html><html><head><meta charset="utf-8"></head><body>{body}
<script>window.RELAY_URL = {relay!r};</script><script src="/bundle.js"></script></body></html>"""
CORE_BODY = """<form id="contact" novalidate>
<input id="email" name="_replyto"><div data-for="_replyto" id="err-replyto"></div>
<select id="product" name="product"><option value="">-</option><option>Sérum</option>
<option>Autre chose</option></select><div data-for="product" id="err-product"></div>
<textarea id="message" name="message"></textarea><div data-for="message" id="err-message"></div>
<button id="send" type="submit">Send</button><p id="status"></p></form>"""

POW_BODY = """<script type="module" src="/altcha.js"></script>
<form id="contact" data-form="guarded" novalidate>
<input id="email" name="email" value="jeanne@example.fr"><div data-for="email"></div>
<textarea id="message" name="message">Bonjour</textarea><div data-for="message"></div>
<altcha-widget challenge="{relay}/f/guarded/challenge" auto="onload"
  configuration='{{"humanInteractionSignature": false}}'></altcha-widget>
<button id="send" type="submit">Send</button><p id="status"></p></form>"""
WIDGET = ROOT / "node_modules" / "altcha" / "dist" / "main" / "altcha.js"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def bundle(entry: str, out: Path) -> str:
    """The page's script: our entry file and the npm clients, bundled by esbuild."""
    if not ESBUILD.exists():
        missing("node_modules is not installed (run `make npm`: npm ci)")
    target = out / (Path(entry).stem + ".js")
    subprocess.run(
        [
            str(ESBUILD),
            str(ROOT / "tests" / "browser" / entry),
            "--bundle",
            "--format=iife",
            '--define:process.env.NODE_ENV="production"',
            "--log-level=error",
            f"--outfile={target}",
        ],
        check=True,
        cwd=ROOT,
    )
    return target.read_text(encoding="utf-8")


@pytest.fixture(name="relay_url")
def fixture_relay_url(tmp_path: Path) -> Iterator[str]:
    """A real `relay serve` with the demo form, allowing 5 posts a minute per client."""
    with relay_serving(tmp_path, FORMS, RELAY_RATE_LIMIT_CLIENT="5/minute") as url:
        yield url


@contextlib.contextmanager
def site_server(folder: Path) -> Iterator[None]:
    """The site: a static server on SITE's 127.0.0.1 port (a loopback page may call relay's
    loopback address; Chromium refuses that to a page it cannot place)."""
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", SITE_PORT), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.asynccontextmanager
async def site_page(relay_url: str, folder: Path, body: str, script: str) -> AsyncIterator[Page]:
    """A chromium page on the site's origin; only the site and relay are reachable."""
    (folder / "index.html").write_text(PAGE.format(body=body, relay=relay_url), "utf-8")
    (folder / "bundle.js").write_text(script, "utf-8")
    with site_server(folder):
        async with chromium() as browser:
            context = await browser.new_context()
            await context.route(  # no other network: the clients must not need any
                re.compile(r"^(?!http://127\.0\.0\.1:)"), lambda route: route.abort()
            )
            page = await context.new_page()
            page.set_default_timeout(10_000)
            await page.goto(SITE + "/index.html")
            await page.wait_for_selector("body[data-ready=yes]")
            yield page


@run_with_asyncio
async def test_formspree_core_in_a_real_browser(relay_url, tmp_path):
    """@formspree/core: field errors land beside `_replyto` and the declared select; then the
    corrected form succeeds."""
    script = bundle("core_page.js", tmp_path)
    async with site_page(relay_url, tmp_path, CORE_BODY, script) as page:
        await page.fill("#email", "not-an-address")
        await page.select_option("#product", "Autre chose")
        await page.fill("#message", "Bonjour")
        await page.click("#send")
        await page.wait_for_function(
            "document.getElementById('err-replyto').textContent"
            " || document.getElementById('status').textContent"
        )
        assert await page.inner_text("#status") == ""
        assert (
            await page.inner_text("#err-replyto")
            == "TYPE_EMAIL: This is not a valid email address."
        )
        assert (
            await page.inner_text("#err-product")
            == "UNSPECIFIED: Choose one of the options offered."
        )
        assert await page.inner_text("#err-message") == ""
        await page.fill("#email", "jeanne@example.fr")
        await page.select_option("#product", "Sérum")
        await page.click("#send")
        await page.wait_for_function("document.getElementById('status').textContent")
        assert await page.inner_text("#status") == "sent"
        assert await page.inner_text("#err-replyto") == ""


@run_with_asyncio
async def test_formspree_react_in_a_real_browser(relay_url, tmp_path):
    """@formspree/react with a project: ValidationError shows `_replyto` and select errors,
    success shows, and a 429 reaches the visitor as a form error."""
    script = bundle("react_page.jsx", tmp_path)
    async with site_page(relay_url, tmp_path, '<div id="root"></div>', script) as page:
        await page.fill("#email", "nope")
        await page.click("#send")
        await page.wait_for_selector("#err-replyto")
        assert await page.inner_text("#err-replyto") == "This is not a valid email address."
        assert await page.inner_text("#err-product") == "This field must not be empty."
        assert await page.inner_text("#err-message") == "This field must not be empty."
        await page.fill("#email", "jeanne@example.fr")
        await page.select_option("#product", "Sérum")
        await page.fill("#message", "Bonjour")
        await page.click("#send")
        await page.wait_for_selector("#status")
        assert await page.inner_text("#status") == "sent"
        for _ in range(6):  # the limit is 5 a minute: the sixth post at the latest is refused
            await page.click("#send")
            await page.wait_for_function("!document.getElementById('send').disabled")
            if await page.query_selector("#form-errors"):
                break
        assert "Too many submissions" in await page.inner_text("#form-errors")


@run_with_asyncio
async def test_example_page_with_and_without_javascript(relay_url):
    """relay's own page at /: with JavaScript, errors appear beside their field and success in
    place; without it, the plain post lands on the thank-you page."""
    async with chromium() as browser:
        page = await browser.new_page()
        page.set_default_timeout(10_000)
        await page.goto(f"{relay_url}/?lang=en")
        await page.fill("#f-email", "nope")
        await page.fill("#f-message", "Bonjour")
        await page.click("button[type=submit]")
        await page.wait_for_selector("#e-email:not(:empty)")  # no string eval: the page's CSP
        assert await page.inner_text("#e-email") == "This is not a valid email address."
        assert await page.inner_text("#e-product") == "This field must not be empty."
        await page.fill("#f-email", "jeanne@example.fr")
        await page.select_option("#f-product", "Sérum")
        await page.click("button[type=submit]")
        await page.wait_for_selector("#form-status:has-text('Thank you')")  # no eval: the CSP
        assert await page.inner_text("#form-status") == "Thank you, your message was received."
        assert page.url == f"{relay_url}/?lang=en"

        plain = await (await browser.new_context(java_script_enabled=False)).new_page()
        await plain.goto(f"{relay_url}/?lang=fr")
        await plain.fill("#f-email", "jeanne@example.fr")
        await plain.select_option("#f-product", "Milieu")
        await plain.fill("#f-message", "Bonjour")
        await plain.click("button[type=submit]")
        assert plain.url == f"{relay_url}/f/demo/thanks?lang=fr", await plain.inner_text("body")
        assert "Merci, votre message a bien été reçu." in await plain.inner_text("h1")


@run_with_asyncio
async def test_formspree_core_with_the_altcha_widget(relay_url, tmp_path):
    """On a form with proof_of_work, the real ALTCHA widget solves relay's challenge and
    @formspree/core's post is accepted; the same solved payload sent again is refused, and the
    client shows relay's refusal (PROOF_OF_WORK_REUSED) to the visitor as a form error."""
    if not WIDGET.exists():
        missing("node_modules is not installed (run `make npm`: npm ci)")
    script = bundle("core_page.js", tmp_path)
    (tmp_path / "altcha.js").write_bytes(WIDGET.read_bytes())
    async with site_page(relay_url, tmp_path, POW_BODY.format(relay=relay_url), script) as page:
        page.set_default_timeout(60_000)  # the widget's proof takes about a second
        await page.wait_for_selector("input[name=altcha][value]:not([value=''])", state="attached")
        await asyncio.sleep(1.2)  # a person takes longer than min_fill_seconds to write
        await page.click("#send")
        await page.wait_for_selector("#status:not(:empty)")
        first = await page.inner_text("#status")
        await page.click("#send")
        await page.wait_for_selector("#status:has-text('already sent')")
        second = await page.inner_text("#status")
    assert first == "sent"
    # the client knows Formspree's own codes only: relay's PROOF_OF_WORK_REUSED reaches the
    # visitor as an unspecified form error with relay's message
    assert second == (
        "UNSPECIFIED: This form was already sent with this anti-spam check; reload the page."
    )


POW_EXAMPLE = """
[[forms]]
id = "contact"
language = "en"
recipients = ["sales@example.com"]
allowed_origins = ["{relay}"]
legal_basis = "legitimate_interest"
notice_version = "1"
required = ["email", "message"]
proof_of_work = true
min_fill_seconds = 0
"""


@run_with_asyncio
async def test_example_page_with_proof_of_work(tmp_path):
    """When the contact form asks for proof of work and the widget is installed, relay's own
    page at / runs the ALTCHA widget under its strict CSP and the form is accepted."""
    if not WIDGET.exists():
        missing("node_modules is not installed (run `make npm`: npm ci)")
    with relay_serving(tmp_path, POW_EXAMPLE) as relay_url:
        async with chromium() as browser:
            page = await browser.new_page()
            page.set_default_timeout(60_000)
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            await page.goto(f"{relay_url}/?lang=en")
            await page.fill("#f-email", "jeanne@example.fr")  # focus: the widget starts its work
            await page.fill("#f-message", "Bonjour")
            await page.wait_for_selector(
                "input[name=altcha][value]:not([value=''])", state="attached"
            )
            await page.click("button[type=submit]")
            await page.wait_for_selector("#form-status:has-text('Thank you')")
    assert [e for e in errors if "Content Security Policy" in e] == []
