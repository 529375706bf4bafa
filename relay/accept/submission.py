"""The fields of one submission and their rules: any input gives a clean model or field errors.

Pure: no I/O, no DNS (email-validator runs without deliverability checks at request time).
Error codes are Formspree's where one fits (REQUIRED_FIELD_MISSING, REQUIRED_FIELD_EMPTY,
TYPE_EMAIL, TYPE_TEXT) so its client library shows them; relay's own otherwise (TOO_LONG,
INVALID_CHARACTERS).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

import email_validator
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from relay.accept.phones import normalise_phone
from relay.crypto import normalise_email
from relay.errors import FieldError
from relay.i18n import N_
from relay.mail.headers import HeaderError, ascii_address, plain_address

#: Upper bounds in characters; the form's max_body_bytes bounds the whole body before this.
LIMITS = {"name": 200, "email": 254, "phone": 40, "company": 200, "message": 10_000}
REQUIRED = ("name", "email", "message")
OPTIONAL = ("phone", "company")
TRUTHY = frozenset({"on", "true", "1", "yes", "y", "checked"})
#: Formspree's documented alias for the reply address.
EMAIL_ALIASES = ("_replyto",)

_MESSAGES = {
    "REQUIRED_FIELD_MISSING": N_("This field is required."),
    "REQUIRED_FIELD_EMPTY": N_("This field must not be empty."),
    "TYPE_TEXT": N_("This field must be text."),
    "TOO_LONG": N_("This field is too long (at most {limit} characters)."),
    "INVALID_CHARACTERS": N_("This field contains line breaks or control characters."),
    "TYPE_EMAIL": N_("This is not a valid email address."),
}
#: Control characters, line/paragraph separators and lone surrogates: they break headers or
#: cannot be encoded. Format characters (bidi marks, emoji joiners) and NBSP stay allowed.
_FORBIDDEN = frozenset({"Cc", "Zl", "Zp", "Cs"})


def _fail(code: str, **ctx: Any) -> PydanticCustomError:
    return PydanticCustomError(code, _MESSAGES[code], ctx)


def _text(value: Any, field: str, *, multiline: bool) -> str:
    """Common rules: text only, trimmed, bounded, no characters that could break a header."""
    return clean_text(value, LIMITS[field], multiline=multiline)


def clean_text(value: Any, limit: int, *, multiline: bool) -> str:
    """Text only, trimmed, at most `limit` characters, no control characters (but \\n, \\t
    when multiline); raises PydanticCustomError with one of Formspree's or relay's codes."""
    if not isinstance(value, str):
        raise _fail("TYPE_TEXT")
    text: str = value
    if multiline:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.strip()
    if len(text) > limit:
        raise _fail("TOO_LONG", limit=limit)
    if not text.isprintable():
        for char in text:
            if multiline and char in "\n\t":
                continue
            if unicodedata.category(char) in _FORBIDDEN:
                raise _fail("INVALID_CHARACTERS")
    return text


def _required(value: str) -> str:
    if not value:
        raise _fail("REQUIRED_FIELD_EMPTY")
    return value


class Submission(BaseModel):
    """A validated, normalised submission: what is encrypted into the outbox."""

    model_config = ConfigDict(frozen=True)

    email: str
    name: str = ""  # required or not per form (FormConfig.required); see validate_submission
    message: str = ""
    phone: str | None = None
    company: str | None = None

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> str:
        return _text(value, "name", multiline=False)

    @field_validator("company", mode="before")
    @classmethod
    def _company(cls, value: Any) -> str | None:
        if value is None:  # JSON null: as good as absent
            return None
        return _text(value, "company", multiline=False) or None

    @field_validator("message", mode="before")
    @classmethod
    def _message(cls, value: Any) -> str:
        return _text(value, "message", multiline=True)

    @field_validator("email", mode="before")
    @classmethod
    def _email(cls, value: Any) -> str:
        return valid_email(value)

    @field_validator("phone", mode="before")
    @classmethod
    def _phone(cls, value: Any, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        text = _text(value, "phone", multiline=False)
        if not text:
            return None
        region = (info.context or {}).get("phone_region", "FR")
        return normalise_phone(text, region)


def valid_email(value: Any) -> str:
    """The form's rule for the address: required, valid, in the one normalised spelling every
    path uses (relay.crypto.normalise_email: IDN in Unicode form, case, NFC, whitespace)."""
    text = _required(_text(value, "email", multiline=False))
    if plain_address(text) and not _special_use(text.rpartition("@")[2]):
        # What nearly every visitor types: email-validator would give it back unchanged, and
        # it is 7-bit already (a property test holds both), so its ~30 µs are skipped.
        return normalise_email(text)
    return validated_email(text)


def validated_email(text: str) -> str:
    """`valid_email` of a trimmed, non-empty text by email-validator alone (what the fast path
    must agree with); raises PydanticCustomError TYPE_EMAIL."""
    try:
        checked = validate_email(text, check_deliverability=False, allow_smtputf8=False)
        normalized = normalise_email(str(checked.normalized))
        # The address becomes the Reply-To: refuse now what no 7-bit header can carry (a
        # non-ASCII local part, an encoded-word), rather than accept it and never send, by
        # the check the message is built with (a plain address costs it one regex).
        ascii_address(normalized)
    except (EmailNotValidError, HeaderError):
        raise _fail("TYPE_EMAIL") from None
    return normalized


def _special_use(domain: str) -> bool:
    """A domain email-validator refuses as special-use or reserved (its own list, read at each
    call as it reads it: `localhost`, `test` unless in its test environment, …)."""
    test_environment = email_validator.TEST_ENVIRONMENT
    return any(
        domain == name or domain.endswith("." + name)
        for name in email_validator.SPECIAL_USE_DOMAIN_NAMES
        if not (name == "test" and test_environment)
    )


def single_line(value: Any, field: str, *, required: bool) -> str:
    """The form's rule for a one-line field (text, trimmed, bounded, no control characters);
    raises PydanticCustomError (with .message()) when it breaks one."""
    text = _text(value, field, multiline=False)
    return _required(text) if required else text


@dataclass(frozen=True)
class ConsentAnswer:
    """Whether the marketing box was ticked; absent means not given (an unticked box)."""

    given: bool


def consent_from(raw: dict[str, Any], field: str) -> ConsentAnswer:
    """Read the checkbox: HTML sends its value ("on") only when ticked; JSON may send a bool."""
    value = raw.get(field)
    if isinstance(value, bool):
        return ConsentAnswer(given=value)
    if isinstance(value, str):
        return ConsentAnswer(given=value.strip().lower() in TRUTHY)
    return ConsentAnswer(given=False)


def _field_errors(exc: ValidationError) -> list[FieldError]:
    errors = []
    for err in exc.errors(include_url=False, include_input=False):
        field = str(err["loc"][0]) if err["loc"] else "form"
        code = err["type"]
        if code == "missing":
            code = "REQUIRED_FIELD_MISSING"
            message = _MESSAGES[code]
        elif code in _MESSAGES:
            message = err["msg"]
        else:  # pragma: no cover - every rule above raises one of our codes
            code, message = "TYPE_TEXT", _MESSAGES["TYPE_TEXT"]
        errors.append(FieldError(field=field, code=code, message=message))
    return errors


def validate_submission(
    raw: dict[str, Any], *, phone_region: str, required: tuple[str, ...] = REQUIRED
) -> Submission | list[FieldError]:
    """Pick the known fields out of `raw` (unknown ones are dropped) and validate them.

    `required` names the built-in fields this form requires (email always is): an absent one
    is REQUIRED_FIELD_MISSING, an empty one REQUIRED_FIELD_EMPTY.
    """
    data = {key: raw[key] for key in (*REQUIRED, *OPTIONAL) if key in raw}
    if "email" not in data:
        for alias in EMAIL_ALIASES:
            if alias in raw:
                data["email"] = raw[alias]
                break
    wanted = ("email", *(f for f in required if f != "email"))
    try:
        sub = Submission.model_validate(data, context={"phone_region": phone_region})
    except ValidationError as exc:
        errors = _field_errors(exc)
        sub = None
    else:
        errors = []
    failed = {e.field for e in errors}
    for field in wanted:
        if field in failed:
            continue
        if field not in data:
            code = "REQUIRED_FIELD_MISSING"
        elif isinstance(data[field], str) and not data[field].strip():
            code = "REQUIRED_FIELD_EMPTY"
        else:
            continue
        errors.append(FieldError(field=field, code=code, message=_MESSAGES[code]))
    if errors or sub is None:
        order = {name: i for i, name in enumerate((*REQUIRED, *OPTIONAL))}
        return sorted(errors, key=lambda e: order.get(e.field, len(order)))
    return sub
