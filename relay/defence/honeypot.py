"""Honeypot fields: inputs a person never sees, that form-filling bots fill. Pure.

Formspree's `_gotcha` is always a trap; a form may name one more (`honeypot` in the forms
file), so site developers can pick a name autofill leaves alone (README: honeypot markup).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Formspree's documented honeypot field.
FORMSPREE_FIELD = "_gotcha"
RULE = "honeypot"


def filled(value: Any) -> bool:
    """A trap counts as filled when it holds anything but blanks (or an unticked box)."""
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    return True


def caught(raw: Mapping[str, Any], form_field: str | None) -> bool:
    """Whether any honeypot of this form was filled in `raw` (the fields as sent)."""
    names = (FORMSPREE_FIELD,) if form_field is None else (FORMSPREE_FIELD, form_field)
    return any(filled(raw.get(name)) for name in names)
