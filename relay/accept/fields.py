"""A form's own declared fields (`[[forms.fields]]`): their model and their rules. Pure.

A Formspree form often carries fields beyond relay's five (a product, a country, "how did
you hear of us"). Each is declared in the forms file with a label in French and English, a
kind, whether it is required and a length limit; only declared fields are kept. Values are
validated like the built-in ones, with Formspree's codes where one fits.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from relay import i18n
from relay.accept.phones import normalise_phone
from relay.accept.submission import OPTIONAL, REQUIRED, TRUTHY, clean_text
from relay.errors import FieldError
from relay.i18n import N_

BUILT_IN = (*REQUIRED, *OPTIONAL)
_MESSAGES = {
    "REQUIRED_FIELD_MISSING": N_("This field is required."),
    "REQUIRED_FIELD_EMPTY": N_("This field must not be empty."),
    "TYPE_EMAIL": N_("This is not a valid email address."),
    "TYPE_NUMERIC": N_("This field must be a number."),
    "TYPE_TEXT": N_("This field must be text."),
    "INVALID_CHOICE": N_("Choose one of the options offered."),
}


class Kind(StrEnum):
    """What a declared field holds, and so how it is validated and shown."""

    TEXT = "text"
    LONG_TEXT = "long_text"
    EMAIL = "email"
    TEL = "tel"
    SELECT = "select"
    CHECKBOX = "checkbox"
    NUMBER = "number"


def _labels(value: dict[str, str]) -> dict[str, str]:
    wanted = set(i18n.available())
    if set(value) != wanted:
        msg = f"give a label in each language: {', '.join(sorted(wanted))}"
        raise ValueError(msg)
    for text in value.values():
        if not 1 <= len(text) <= 200:
            msg = "a label is 1-200 characters"
            raise ValueError(msg)
    return value


Labels = Annotated[dict[str, str], AfterValidator(_labels)]


class DeclaredField(BaseModel):
    """One `[[forms.fields]]` entry. `label = {fr=..., en=...}` or `label_fr`/`label_en`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")]
    label: Labels
    kind: Kind = Kind.TEXT
    required: bool = False
    max_length: Annotated[int, Field(ge=1, le=10_000)] = 200
    choices: tuple[Annotated[str, Field(min_length=1, max_length=200)], ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _label_keys(cls, data: Any) -> Any:
        """`label_fr = "..."` (any `label_<lang>`) is the same as `label = {fr = "..."}`."""
        if not isinstance(data, dict):
            return data
        split = {k: v for k, v in data.items() if isinstance(k, str) and k.startswith("label_")}
        if not split:
            return data
        if "label" in data:
            msg = "give either label = {fr=..., en=...} or label_fr/label_en, not both"
            raise ValueError(msg)
        rest = {k: v for k, v in data.items() if k not in split}
        return {**rest, "label": {k.removeprefix("label_"): v for k, v in split.items()}}

    def label_in(self, language: str) -> str:
        """The label in `language` (in the source language if it has none)."""
        return self.label.get(language) or self.label[i18n.SOURCE_LANGUAGE]

    @model_validator(mode="after")
    def _consistent(self) -> DeclaredField:
        if self.name.lower() in BUILT_IN:
            msg = f"{self.name!r} is a built-in field: use the form's `required` list instead"
            raise ValueError(msg)
        if (self.kind is Kind.SELECT) != bool(self.choices):
            msg = "`choices` is required for kind = 'select' and only for it"
            raise ValueError(msg)
        return self


def _missing(field: DeclaredField, value: Any) -> str | None:
    """The code for an absent or empty value of a required field; None when one was given."""
    if value is None:
        return "REQUIRED_FIELD_MISSING"
    if isinstance(value, str) and not value.strip():
        return "REQUIRED_FIELD_EMPTY"
    if field.kind is Kind.CHECKBOX and not checked(value):
        return "REQUIRED_FIELD_MISSING"
    return None


def checked(value: Any) -> bool:
    """A checkbox: HTML sends its value ("on") only when ticked; JSON may send a bool."""
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() in TRUTHY


def _number(value: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _fail("TYPE_NUMERIC")
    try:
        number = Decimal(str(value).strip().replace(",", ".").replace(" ", ""))
    except InvalidOperation:
        raise _fail("TYPE_NUMERIC") from None
    if not number.is_finite():
        raise _fail("TYPE_NUMERIC")
    return int(number) if number == number.to_integral_value() else str(number)


def _fail(code: str) -> PydanticCustomError:
    return PydanticCustomError(code, _MESSAGES[code])


def _one(field: DeclaredField, value: Any, phone_region: str) -> Any:
    """The clean value of one given field, or PydanticCustomError with a code."""
    kind = field.kind
    if kind is Kind.CHECKBOX:
        return checked(value)
    if kind is Kind.NUMBER:
        return _number(value)
    text = clean_text(value, field.max_length, multiline=kind is Kind.LONG_TEXT)
    if not text:
        return None
    if kind is Kind.EMAIL:
        try:
            return str(validate_email(text, check_deliverability=False).normalized)
        except EmailNotValidError:
            raise _fail("TYPE_EMAIL") from None
    if kind is Kind.TEL:
        return normalise_phone(text, phone_region)
    if kind is Kind.SELECT and text not in field.choices:
        raise _fail("INVALID_CHOICE")
    return text


def validate_declared(
    fields: tuple[DeclaredField, ...], values: dict[str, Any], *, phone_region: str
) -> tuple[dict[str, Any], list[FieldError]]:
    """Clean values of the declared fields (in declared order, empty ones left out) and errors.

    `values` maps declared names to what the client sent; anything else is not looked at.
    """
    clean: dict[str, Any] = {}
    errors: list[FieldError] = []
    for field in fields:
        value = values.get(field.name)
        if field.required and (code := _missing(field, value)) is not None:
            errors.append(FieldError(field=field.name, code=code, message=_MESSAGES[code]))
            continue
        if value is None:
            continue
        try:
            cleaned = _one(field, value, phone_region)
        except PydanticCustomError as exc:
            errors.append(FieldError(field=field.name, code=exc.type, message=exc.message()))
            continue
        if cleaned is not None and cleaned is not False:
            clean[field.name] = cleaned
    return clean, errors


def display(field: DeclaredField, value: Any, language: str) -> str:
    """A stored value as the email shows it."""
    if field.kind is Kind.CHECKBOX:  # only ticked boxes are kept
        return i18n.translate(language, N_("yes"))
    return str(value)
