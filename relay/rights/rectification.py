"""Art. 16 values checked with the form's own rules, so a rectified record is one the form
could have produced: text rules and lengths of relay.accept.submission, name and email required (not
emptied), the phone normalised to E.164 or refused, the address validated and normalised as
every path normalises it. Company and phone may be emptied (""). Pure: no I/O.
"""

from __future__ import annotations

import phonenumbers
from pydantic_core import PydanticCustomError

from relay.accept.phones import normalise_phone
from relay.accept.submission import single_line, valid_email
from relay.rights.register import ActionRefused

_LABELS = {"name": "name", "company": "company", "phone": "phone", "email": "new email"}


def _refuse(field: str, exc: PydanticCustomError) -> ActionRefused:
    return ActionRefused(f"the {_LABELS[field]} is refused: {exc.message()}")


def _phone(text: str, region: str) -> str:
    normal = normalise_phone(text, region)
    try:
        number = phonenumbers.parse(normal, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        msg = "the phone is refused: it is not a phone number (give it as +33 6 12 34 56 78)"
        raise ActionRefused(msg)
    return normal


def validate(changes: dict[str, str | None], *, phone_region: str) -> dict[str, str | None]:
    """The given (non-None) values, cleaned; ActionRefused naming the first invalid one."""
    out: dict[str, str | None] = {}
    for field, value in changes.items():
        if value is None:
            continue
        try:
            if field == "email":
                out[field] = valid_email(value)
            elif field == "name":
                out[field] = single_line(value, field, required=True)
            else:
                text = single_line(value, field, required=False)
                out[field] = (
                    None if not text else (_phone(text, phone_region) if field == "phone" else text)
                )
        except PydanticCustomError as exc:
            raise _refuse(field, exc) from None
    return out
