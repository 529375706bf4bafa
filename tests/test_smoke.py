"""The accept path end to end, once, as the first thing a newcomer would try."""

from __future__ import annotations

from tests.helpers import post_form, post_json


def test_json_client_gets_202_with_next_and_id(client):
    """A Formspree-style JSON post is accepted with 202 and the fields its client reads."""
    response = post_json(client)
    body = response.json()
    assert body["ok"] is True
    assert body["next"] == "http://relay.test/f/contact/thanks"
    assert len(body["id"]) == 36


def test_html_form_gets_303_to_thank_you_page(client):
    """A browser form post is redirected (303) to the built-in thank-you page."""
    response = post_form(client)
    assert response.headers["location"] == "http://relay.test/f/contact/thanks"
    page = client.get(response.headers["location"])
    assert page.status_code == 200
    assert "Thank you" in page.text
