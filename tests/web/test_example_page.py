"""GET /: the example page `make run` shows, in French and English, with a working form."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from relay.app import create_app
from relay.config import example_forms_file
from tests.helpers import VALID


@pytest.fixture(name="shipped")
def fixture_shipped(settings_factory, clock) -> Iterator[TestClient]:
    """The app on the shipped example forms file, as `make run` serves it."""
    settings = settings_factory(forms_file=example_forms_file(), default_language="fr")
    with TestClient(create_app(settings, clock=clock), base_url="http://127.0.0.1:8000") as c:
        yield c


def test_example_page_is_french_by_default(shipped):
    """Without a preference, the page speaks the contact form's language (French)."""
    response = shipped.get("/")
    assert response.status_code == 200
    assert '<html lang="fr">' in response.text
    assert "<h1>Nous contacter</h1>" in response.text
    assert 'action="/f/contact"' in response.text
    assert '<input type="hidden" name="_language" value="fr">' in response.text


def test_example_page_in_english_on_request(shipped):
    """`?lang=en` (or Accept-Language) gives the English page with English labels."""
    response = shipped.get("/?lang=en")
    assert "<h1>Contact us</h1>" in response.text
    assert '<label for="f-email">Email *</label>' in response.text
    assert "<h1>Contact us</h1>" in shipped.get("/", headers={"Accept-Language": "en-GB"}).text


def test_example_page_shows_declared_fields_and_consent(shipped):
    """The declared select and the consent box with its exact wording are on the page."""
    text = shipped.get("/?lang=en").text
    assert '<select id="f-product" name="product"' in text
    assert "<option>Sérum</option>" in text
    assert "I agree to receive news about Biosera products by email." in text


def test_example_form_works_without_javascript(shipped):
    """Posting the page's form as a browser does (same origin) gives 303 to the thank-you page."""
    headers = {"Origin": "http://127.0.0.1:8000", "Accept": "text/html"}
    response = shipped.post(
        "/f/contact", data={**VALID, "_language": "en"}, headers=headers, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "http://127.0.0.1:8000/f/contact/thanks?lang=en"
    assert "Thank you" in shipped.get(response.headers["location"]).text


def test_example_page_uses_the_first_form_without_a_contact_form(settings_factory, tmp_path):
    """A forms file without `contact` still gets an example page, for its first form."""
    from tests.formspree_forms import FORMS_WITH_FIELDS, write_forms

    text = FORMS_WITH_FIELDS.replace('id = "contact"', 'id = "other"')
    settings = settings_factory(forms_file=write_forms(tmp_path, text))
    with TestClient(create_app(settings)) as client:
        assert 'action="/f/demo"' in client.get("/").text
