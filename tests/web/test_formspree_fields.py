"""Formspree's special fields, name aliases and declared fields, through POST /f/{form}."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from relay.app import create_app
from relay.crypto import KeyRing
from relay.store.outbox import open_body
from tests.conftest import TEST_KEY
from tests.formspree_forms import post_demo, write_forms
from tests.privacy.support import rows


@pytest.fixture(name="demo_settings")
def fixture_demo_settings(settings_factory, tmp_path):
    return settings_factory(forms_file=write_forms(tmp_path))


@pytest.fixture(name="demo")
def fixture_demo(demo_settings, clock) -> Iterator[TestClient]:
    with TestClient(create_app(demo_settings, clock=clock), base_url="http://relay.test") as c:
        yield c


def stored_body(settings: Any) -> dict[str, Any]:
    """The one stored submission's body, decrypted with the test key."""
    [(sid, sealed)] = rows(settings.var_dir, "SELECT id, body_enc FROM submissions")
    return open_body(KeyRing.from_text(TEST_KEY), sid, sealed)


def errors(response: Any) -> list[tuple[str, str]]:
    return [(e.get("field", ""), e["code"]) for e in response.json()["errors"]]


# --- declared fields ---------------------------------------------------------------------------


def test_declared_fields_are_stored_sealed_in_declared_order(demo, demo_settings):
    """Declared values are cleaned and kept in the sealed body; undeclared ones are dropped."""
    post_demo(
        demo,
        country="  France ",
        quantity="12",
        urgent="on",
        mobile="06 12 34 56 78",
        utm_source="CANARY-UNDECLARED",
    )
    body = stored_body(demo_settings)
    assert body["fields"] == {
        "product": "Sérum",
        "country": "France",
        "quantity": 12,
        "urgent": True,
        "mobile": "+33612345678",
    }
    assert "CANARY-UNDECLARED" not in json.dumps(body)
    assert b"France" not in (demo_settings.var_dir / "relay.db").read_bytes()


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"product": None}, ("product", "REQUIRED_FIELD_MISSING")),
        ({"product": "  "}, ("product", "REQUIRED_FIELD_EMPTY")),
        ({"product": "Autre"}, ("product", "INVALID_CHOICE")),
        ({"country": "x" * 41}, ("country", "TOO_LONG")),
        ({"country": "a\nb"}, ("country", "INVALID_CHARACTERS")),
        ({"quantity": "douze"}, ("quantity", "TYPE_NUMERIC")),
        ({"quantity": True}, ("quantity", "TYPE_NUMERIC")),
        ({"quantity": "inf"}, ("quantity", "TYPE_NUMERIC")),
        ({"backup_email": "nope"}, ("backup_email", "TYPE_EMAIL")),
        ({"details": 3}, ("details", "TYPE_TEXT")),
        ({"Email": None, "email": None}, ("email", "REQUIRED_FIELD_MISSING")),
    ],
)
def test_declared_field_rules(demo, fields, expected):
    """Each declared kind refuses bad input with a Formspree code, or relay's own."""
    response = post_demo(demo, **fields, expect=422)
    assert errors(response) == [expected]


def test_per_form_required_built_ins(demo):
    """A form requiring only email and message accepts a submission without a name."""
    post_demo(demo)


def test_a_required_name_is_still_required_where_the_form_says_so(client):
    """The default forms still require name: its absence is REQUIRED_FIELD_MISSING."""
    headers = {"Accept": "application/json", "Origin": "https://www.example.com"}
    body = {"email": "a@example.fr", "message": "m"}
    response = client.post("/f/contact", json=body, headers=headers)
    assert errors(response) == [("name", "REQUIRED_FIELD_MISSING")]


def test_field_names_differing_in_case_are_understood(demo, demo_settings):
    """`Email`, `Message`, `Product` (Formspree forms' capitals) are read as email, message..."""
    post_demo(
        demo,
        email=None,
        message=None,
        product=None,
        Email="a@example.fr",
        Message="Hi",
        Product="Milieu",
    )
    body = stored_body(demo_settings)
    assert (body["email"], body["message"], body["fields"]["product"]) == (
        "a@example.fr",
        "Hi",
        "Milieu",
    )


def test_errors_come_back_under_the_name_the_client_used(demo):
    """An invalid `_replyto` or `Product` is reported under that name, not relay's own."""
    response = post_demo(demo, email=None, _replyto="nope", product=None, Product="x", expect=422)
    assert errors(response) == [("_replyto", "TYPE_EMAIL"), ("Product", "INVALID_CHOICE")]


def test_replyto_error_on_the_default_form(client):
    """On a built-in form too, `_replyto` errors name `_replyto` (ValidationError shows them)."""
    headers = {"Accept": "application/json", "Origin": "https://www.example.com"}
    body = {"name": "J", "_replyto": "not-an-address", "message": "m"}
    response = client.post("/f/contact", json=body, headers=headers)
    assert errors(response) == [("_replyto", "TYPE_EMAIL")]


def test_declared_fields_are_exported_and_erased_with_the_person(demo, demo_settings, cli):
    """`relay subject export` shows the declared fields; `erase` wipes them with the body."""
    from tests.conftest import invoke

    cli_env = {"RELAY_FORMS_FILE": str(demo_settings.forms_file)}
    post_demo(demo, country="Belgique")
    data = json.loads(
        invoke(cli, "subject", "export", "jeanne.martin@example.fr", env=cli_env).output
    )
    assert data["submissions"][0]["fields"]["fields"]["country"] == "Belgique"
    invoke(cli, "subject", "erase", "jeanne.martin@example.fr", env=cli_env)
    assert rows(demo_settings.var_dir, "SELECT body_enc FROM submissions") == [(None,)]


# --- special fields ----------------------------------------------------------------------------


def test_cc_is_refused_with_its_own_code(demo):
    """`_cc` is refused (422 CC_NOT_ALLOWED): visitors never choose who receives the email."""
    response = post_demo(demo, _cc="someone@example.net", _language="en", expect=422)
    assert response.json()["errors"] == [
        {
            "code": "CC_NOT_ALLOWED",
            "message": "This form sends only to its own recipients: remove the _cc field.",
        }
    ]


def test_an_empty_cc_is_as_good_as_absent(demo):
    """An empty hidden `_cc` input does not block the form."""
    post_demo(demo, _cc="")


def test_subject_is_kept_when_the_form_allows_it(demo, demo_settings):
    """With allow_subject, `_subject` is kept on one line; other special fields are read."""
    post_demo(demo, _subject="Devis\r\nBcc: x@example.net", _format="plain")
    body = stored_body(demo_settings)
    assert body["_subject"] == "Devis Bcc: x@example.net"
    assert body["_format"] == "plain"


def test_a_too_long_subject_is_a_field_error(demo):
    """A `_subject` over 150 characters is TOO_LONG under `_subject`."""
    assert errors(post_demo(demo, _subject="x" * 151, expect=422)) == [("_subject", "TOO_LONG")]


def test_a_subject_that_is_not_text_is_a_field_error(demo):
    """A JSON `_subject` that is not a string is TYPE_TEXT under `_subject`."""
    assert errors(post_demo(demo, _subject=["a"], expect=422)) == [("_subject", "TYPE_TEXT")]


def test_subject_is_ignored_when_the_form_does_not_allow_it(client, settings):
    """Without allow_subject, `_subject` is dropped (Formspree forms send it routinely)."""
    headers = {"Accept": "application/json", "Origin": "https://www.example.com"}
    body = {"name": "J", "email": "a@example.fr", "message": "m", "_subject": "Hello"}
    assert client.post("/f/contact", json=body, headers=headers).status_code == 202
    assert "_subject" not in stored_body(settings)
