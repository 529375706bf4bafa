"""Self-service withdrawal: a signed, expiring link; a page that reveals nothing else."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from tests.conftest import invoke
from tests.helpers import VALID, post_json
from tests.privacy.support import at, export

EMAIL = VALID["email"]
D0 = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def _link(cli) -> str:
    result = invoke(cli, "consent", "link", EMAIL)
    url = urlsplit(result.output.strip())
    assert url.path == "/consent/withdraw"
    return f"{url.path}?{url.query}"


def test_link_withdraws_and_confirms(client, cli, clock):
    """Opening the link only asks; its button (a POST) records `withdrawn` (source
    withdraw_link); repeating changes nothing."""
    with at(clock, D0):
        post_json(client, newsletter="on")
        link = _link(cli)
        assert EMAIL not in link
        page = client.get(link)
        after_get = export(cli, EMAIL)
        token = re.search(r'name="token" value="([^"]+)"', page.text)
        assert token is not None
        done = client.post("/consent/withdraw", data={"token": html.unescape(token.group(1))})
        again = client.post(link)
        data = export(cli, EMAIL)
    assert page.status_code == 200
    assert [e["event"] for e in after_get["consent_events"]] == ["granted"]  # a scanner's GET
    assert '<form method="post" action="/consent/withdraw">' in page.text
    assert '<a href="https://www.example.com/">Back to the site</a>' in page.text
    assert done.status_code == 200
    assert "no longer receive" in done.text
    assert '<a href="https://www.example.com/">' in done.text
    assert EMAIL not in page.text
    assert VALID["name"] not in page.text
    assert "set-cookie" not in page.headers
    assert page.headers["cache-control"] == "no-store"
    assert again.status_code == 200
    assert [e["event"] for e in data["consent_events"]] == ["granted", "withdrawn"]
    assert data["consent_events"][1]["source"] == "withdraw_link"
    assert data["marketing"]["on_opposition_list"] is True


def test_tampered_missing_or_expired_link_is_refused(client, cli, clock):
    """A forged, empty or expired token gets 400 and records nothing."""
    with at(clock, D0):
        post_json(client, newsletter="on")
        link = _link(cli)
        forged = client.get(link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB"))
        empty = client.get("/consent/withdraw")
        junk = client.get("/consent/withdraw?token=%%%")
    with at(clock, D0 + timedelta(days=366)):
        expired = client.get(link)
        data = export(cli, EMAIL)
    for response in (forged, empty, junk, expired):
        assert response.status_code == 400
        assert "set-cookie" not in response.headers
    assert "expired" in expired.text
    assert "not valid" in forged.text
    assert [e["event"] for e in data["consent_events"]] == ["granted"]


def test_link_uses_public_url(settings_factory, cli, monkeypatch):
    """The printed link starts with RELAY_PUBLIC_URL when it is set."""
    monkeypatch.setenv("RELAY_PUBLIC_URL", "https://relay.example.com")
    result = invoke(cli, "consent", "link", EMAIL)
    assert result.output.startswith("https://relay.example.com/consent/withdraw?token=")
