"""Field rules: any input gives a clean model or field errors with Formspree's codes."""

from __future__ import annotations

import pytest

from relay.accept.phones import normalise_phone
from relay.accept.submission import (
    LIMITS,
    Submission,
    consent_from,
    validate_submission,
)
from relay.errors import FieldError
from tests.helpers import VALID


def errors_of(**fields):
    result = validate_submission({**VALID, **fields}, phone_region="FR")
    assert isinstance(result, list), result
    return {(e.field, e.code) for e in result}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"name": None}, ("name", "TYPE_TEXT")),
        ({"name": ""}, ("name", "REQUIRED_FIELD_EMPTY")),
        ({"name": "   "}, ("name", "REQUIRED_FIELD_EMPTY")),
        ({"name": "x" * (LIMITS["name"] + 1)}, ("name", "TOO_LONG")),
        ({"name": "Jean\r\nBcc: x@y.fr"}, ("name", "INVALID_CHARACTERS")),
        ({"name": "Jean\x00"}, ("name", "INVALID_CHARACTERS")),
        ({"name": "Jean\u2028Bcc"}, ("name", "INVALID_CHARACTERS")),
        ({"name": "Jean\tMartin"}, ("name", "INVALID_CHARACTERS")),
        ({"email": "not-an-email"}, ("email", "TYPE_EMAIL")),
        ({"email": "a@b"}, ("email", "TYPE_EMAIL")),
        ({"email": "jeanne@example.fr\nBcc: x@y.fr"}, ("email", "INVALID_CHARACTERS")),
        ({"email": 42}, ("email", "TYPE_TEXT")),
        ({"message": ""}, ("message", "REQUIRED_FIELD_EMPTY")),
        ({"message": "x" * (LIMITS["message"] + 1)}, ("message", "TOO_LONG")),
        ({"message": "hello\x1b[31m"}, ("message", "INVALID_CHARACTERS")),
        ({"company": "ACME\r\nInc"}, ("company", "INVALID_CHARACTERS")),
        ({"company": "ACME\r\n"}, ("company", "OK")),
        ({"company": ["a"]}, ("company", "TYPE_TEXT")),
        ({"phone": "06\n12"}, ("phone", "INVALID_CHARACTERS")),
        ({"phone": "\x07"}, ("phone", "INVALID_CHARACTERS")),
        ({"phone": "1" * (LIMITS["phone"] + 1)}, ("phone", "TOO_LONG")),
    ],
)
def test_invalid_field_gives_its_code(fields, expected):
    """Each rule refuses its input with the code listed ("OK": accepted once trimmed)."""
    if expected[1] == "OK":
        assert isinstance(validate_submission({**VALID, **fields}, phone_region="FR"), Submission)
    else:
        assert errors_of(**fields) == {expected}


@pytest.mark.parametrize("missing", ["name", "email", "message"])
def test_missing_required_field(missing):
    """An absent required field is REQUIRED_FIELD_MISSING (Formspree's code)."""
    raw = {k: v for k, v in VALID.items() if k != missing}
    result = validate_submission(raw, phone_region="FR")
    assert [FieldError(missing, "REQUIRED_FIELD_MISSING", "This field is required.")] == result


def test_valid_submission_is_normalised():
    """Names are trimmed, the email normalised, the phone in E.164, the message keeps newlines."""
    result = validate_submission(
        {
            "name": "  Jeanne Martin ",
            "email": "Jeanne.Martin@EXAMPLE.fr",
            "phone": "06 12 34 56 78",
            "company": "",
            "message": "Ligne 1\r\nLigne 2\rLigne 3",
            "unknown": "dropped",
        },
        phone_region="FR",
    )
    assert result == Submission(
        name="Jeanne Martin",
        email="Jeanne.Martin@example.fr",
        phone="+33612345678",
        company=None,
        message="Ligne 1\nLigne 2\nLigne 3",
    )


def test_replyto_is_an_alias_for_email():
    """Formspree's `_replyto` is taken as the email when `email` is absent."""
    raw = {"name": "J", "message": "m", "_replyto": "j@example.fr"}
    result = validate_submission(raw, phone_region="FR")
    assert isinstance(result, Submission)
    assert result.email == "j@example.fr"


def test_international_text_is_kept():
    """RTL text, emoji, accents and an internationalised email are valid input."""
    result = validate_submission(
        {
            "name": "שלום 👩‍🔬 Zoë",
            "email": "jeanne@exämple.fr",
            "message": "مرحبا\n\tindentation",
        },
        phone_region="FR",
    )
    assert isinstance(result, Submission)
    assert result.name == "שלום 👩‍🔬 Zoë"
    assert result.message == "مرحبا\n\tindentation"


@pytest.mark.parametrize(
    ("typed", "region", "expected"),
    [
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("+33 (0)6 12 34 56 78", "FR", "+33612345678"),
        ("0033 6 12 34 56 78", "FR", "+33612345678"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("ask for Paul", "FR", "ask for Paul"),
        ("12", "FR", "12"),
    ],
)
def test_phone_is_e164_where_parseable(typed, region, expected):
    """Phones become E.164 when they parse as possible numbers; otherwise stay as typed."""
    assert expected == normalise_phone(typed, region)


@pytest.mark.parametrize(
    ("raw", "given"),
    [
        ({"newsletter": "on"}, True),
        ({"newsletter": "true"}, True),
        ({"newsletter": True}, True),
        ({"newsletter": "off"}, False),
        ({"newsletter": False}, False),
        ({"newsletter": ""}, False),
        ({"newsletter": 1}, False),
        ({}, False),
    ],
)
def test_consent_checkbox(raw, given):
    """Only a ticked box (or JSON true) is consent; absence is no consent."""
    assert given == consent_from(raw, "newsletter").given
