"""Formspree's conventions on the way in: field-name aliases and the special `_` fields. Pure.

- Names that differ only in case (`Email`, `Name`, a declared `Product`) are understood, and
  `_replyto` is the email; an error is reported under the name the client used, so
  `<ValidationError field="_replyto">` shows it.
- `_subject` sets the email subject when the form allows it (`allow_subject = true`).
- `_language` picks the language of relay's pages for this visitor.
- `_format=plain` asks for a text-only email.
- `_cc` is refused: visitors never choose recipients, or relay would be an open mail relay.
- `_next` and `_gotcha` are read elsewhere (submit, defences).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from relay.errors import FieldError, SubmissionRejected

#: Longest visitor subject kept (characters); the whole subject is capped again when sent.
MAX_VISITOR_SUBJECT = 150
_EMAIL_ALIASES = ("_replyto",)
_UNSAFE = frozenset(chr(c) for c in range(32)) | {"\x7f", "\u2028", "\u2029", "\x85"}


@dataclass(frozen=True)
class Renamed:
    """The fields relay reads, under relay's names, and the name each came under."""

    data: dict[str, Any]
    sent_as: dict[str, str] = field(default_factory=dict)

    def errors(self, errors: Iterable[FieldError]) -> list[FieldError]:
        """The errors, each under the name the client used for its field."""
        return [FieldError(self.sent_as.get(e.field, e.field), e.code, e.message) for e in errors]


def canonical(raw: dict[str, Any], names: Iterable[str]) -> Renamed:
    """Pick `names` out of `raw`: exact name first, else the first name equal but for case.

    The email may also come as `_replyto` (any case). Anything not named is left out.
    """
    folded: dict[str, str] = {}
    for raw_key in raw:
        if isinstance(raw_key, str):
            folded.setdefault(raw_key.casefold(), raw_key)
    data: dict[str, Any] = {}
    sent_as: dict[str, str] = {}
    for name in names:
        key: str | None = name if name in raw else folded.get(name.casefold())
        if key is None and name == "email":
            key = next((folded[a] for a in _EMAIL_ALIASES if a in folded), None)
        if key is None:
            continue
        data[name] = raw[key]
        if key != name:
            sent_as[name] = key
    return Renamed(data, sent_as)


@dataclass(frozen=True)
class Specials:
    """What the special fields asked for, once read."""

    subject: str | None = None
    language: str | None = None
    plain: bool = False


def _value(raw: dict[str, Any], name: str) -> Any:
    for key, value in raw.items():
        if isinstance(key, str) and key.casefold() == name:
            return value
    return None


def language_tag(value: Any, supported: Iterable[str]) -> str | None:
    """`fr`, `en-GB`, `EN` → a supported language, or None."""
    if not isinstance(value, str):
        return None
    primary = value.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in supported else None


def read_specials(
    raw: dict[str, Any], *, allow_subject: bool, languages: Iterable[str]
) -> Specials:
    """Read `_subject`, `_language`, `_format`; refuse `_cc` (422 CC_NOT_ALLOWED).

    A `_subject` the form does not allow is ignored, as Formspree forms send it routinely.
    """
    cc = _value(raw, "_cc")
    if cc not in (None, "", [], False):
        raise SubmissionRejected(
            422,
            "CC_NOT_ALLOWED",
            "This form sends only to its own recipients: remove the _cc field.",
        )
    subject = None
    wanted = _value(raw, "_subject")
    if allow_subject and wanted is not None:
        if not isinstance(wanted, str):
            raise _subject_error("TYPE_TEXT", "This field must be text.")
        line = " ".join("".join(" " if c in _UNSAFE else c for c in wanted).split())
        if len(line) > MAX_VISITOR_SUBJECT:
            raise _subject_error(
                "TOO_LONG", f"This field is too long (at most {MAX_VISITOR_SUBJECT} characters)."
            )
        subject = line or None
    fmt = _value(raw, "_format")
    return Specials(
        subject=subject,
        language=language_tag(_value(raw, "_language"), languages),
        plain=isinstance(fmt, str) and fmt.strip().lower() == "plain",
    )


def _subject_error(code: str, message: str) -> SubmissionRejected:
    return SubmissionRejected(
        422,
        "INVALID_FIELDS",
        "Please fix the fields below.",
        errors=(FieldError("_subject", code, message),),
    )
