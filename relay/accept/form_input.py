"""One form's raw fields → what relay keeps, or the field errors to answer. Pure.

Puts together the built-in fields (relay.accept.submission), the form's declared fields
(relay.accept.fields) and Formspree's conventions (relay.accept.formspree): names that
differ in case, `_replyto`, the special fields. Fields neither built in nor declared are
dropped here and never stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from relay import i18n
from relay.accept.fields import BUILT_IN, validate_declared
from relay.accept.formspree import Specials, canonical, read_specials
from relay.accept.submission import Submission, validate_submission
from relay.config import FormConfig
from relay.errors import FieldError, SubmissionRejected


@dataclass(frozen=True)
class FormInput:
    """A valid submission: the built-in fields, the declared ones, and the special requests."""

    submission: Submission
    declared: dict[str, Any]
    specials: Specials

    def body(self) -> dict[str, Any]:
        """What is sealed in the outbox (and so exported and erased with the person)."""
        body: dict[str, Any] = self.submission.model_dump()
        if self.declared:
            body["fields"] = self.declared
        if self.specials.subject:
            body["_subject"] = self.specials.subject
        if self.specials.plain:
            body["_format"] = "plain"
        return body


def read_form(raw: dict[str, Any], form: FormConfig, *, phone_region: str) -> FormInput:
    """Validate `raw` for `form`, or raise SubmissionRejected (422) listing every problem."""
    specials = read_specials(raw, allow_subject=form.allow_subject, languages=i18n.available())
    built_in = canonical(raw, BUILT_IN)
    declared = canonical(raw, [f.name for f in form.fields])
    result = validate_submission(built_in.data, phone_region=phone_region, required=form.required)
    clean, declared_errors = validate_declared(
        form.fields, declared.data, phone_region=phone_region
    )
    errors: list[FieldError] = []
    if not isinstance(result, Submission):
        errors += built_in.errors(result)
    errors += declared.errors(declared_errors)
    if errors or not isinstance(result, Submission):
        raise SubmissionRejected(
            422, "INVALID_FIELDS", "Please fix the fields below.", errors=tuple(errors)
        )
    return FormInput(result, clean, specials)


def kept_fields(form: FormConfig) -> str:
    """What relay keeps of `form`, for `relay check`: `*` marks required, kinds in brackets."""
    parts = [f"{name}{'*' if name in form.required else ''}" for name in BUILT_IN]
    for declared in form.fields:
        kind = declared.kind.value
        if declared.choices:
            kind += ": " + "|".join(declared.choices)
        parts.append(f"{declared.name}{'*' if declared.required else ''} ({kind})")
    if form.marketing_consent is not None:
        parts.append(f"{form.marketing_consent.field} (marketing consent)")
    if form.allow_subject:
        parts.append("_subject")
    return ", ".join(parts)
