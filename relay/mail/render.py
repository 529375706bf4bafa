"""A stored submission → the email sales read: subject, plain text, Outlook-safe HTML. Pure.

Why this shape: the templates are autoescaped with StrictUndefined, so a submitter's text can
never become markup and a typo in a template fails loudly instead of sending a blank field.
Header values (Subject, Reply-To, From) go through `header_safe` (one line of text), then
relay.mail.headers encodes them itself (7-bit, RFC 2047 where needed, input taken literally):
header injection is impossible by construction, not by validation alone.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import phonenumbers
from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    meta,
    select_autoescape,
)
from jinja2.sandbox import SandboxedEnvironment

from relay import i18n
from relay.accept.fields import display
from relay.clock import DISPLAY_ZONE
from relay.config import FormConfig, LegalBasis
from relay.errors import ConfigError, RenderError
from relay.i18n import N_
from relay.mail.headers import HeaderError, address_words, ascii_address, one_line, text_words
from relay.mail.transport import RenderedEmail

#: Longest subject sent (characters); Outlook shows far less, and Mailgun logs all of it.
MAX_SUBJECT = 200
#: Control characters, line and paragraph separators, lone surrogates: never in a header.
_UNSAFE = frozenset({"Cc", "Zl", "Zp", "Cs"})
#: Separators left dangling when an optional field (company) is empty: "Contact -  - Name".
_EMPTY_SLOTS = re.compile(r"(\s+[-–—|:/]+)(\s+[-–—|:/]+)+(?=\s)")
_EDGE_SEPARATORS = re.compile(r"^[\s\-–—|:/]+|[\s\-–—|:/]+$")
#: Characters left as they are in a mailto: address; `?`, `&`, `#` and `%` are encoded.
_MAILTO_SAFE = "@.+-_~!$'*=^`{|}/"
_SPECIALS = re.compile(r'[<>()\[\]:;@\\,"]')
_E164 = re.compile(r"^\+[1-9][0-9]{5,14}$")
_LABELS = {
    LegalBasis.CONTRACT: N_("contract or pre-contractual steps"),
    LegalBasis.LEGITIMATE_INTEREST: N_("legitimate interest"),
}
Gettext = Callable[[str], str]


@dataclass(frozen=True)
class SubmissionView:
    """What the templates see of one submission: its decrypted fields and its legal record."""

    id: str
    form_id: str
    received_at: datetime
    legal_basis: str
    notice_version: str
    consent_given: bool
    consent_wording_version: str | None
    name: str
    email: str
    message: str
    phone: str | None = None
    company: str | None = None
    # issue 10: the form's declared fields, the visitor's _subject, _format=plain
    extra: dict[str, Any] = field(default_factory=dict)
    visitor_subject: str | None = None
    plain: bool = False

    @classmethod
    def from_fields(cls, fields: dict[str, Any], **record: Any) -> SubmissionView:
        """Build from the decrypted JSON (name, email, phone, company, message) and the row."""
        return cls(
            name=str(fields.get("name") or ""),
            email=str(fields.get("email") or ""),
            message=str(fields.get("message") or ""),
            phone=str(fields["phone"]) if fields.get("phone") else None,
            company=str(fields["company"]) if fields.get("company") else None,
            extra=dict(fields["fields"]) if isinstance(fields.get("fields"), dict) else {},
            visitor_subject=str(fields["_subject"]) if fields.get("_subject") else None,
            plain=fields.get("_format") == "plain",
            **record,
        )


def header_safe(value: str, limit: int = MAX_SUBJECT) -> str:
    """One line of printable text: control characters become spaces, runs of space collapse."""
    cleaned = "".join(
        " " if unicodedata.category(char) in _UNSAFE else char
        for char in unicodedata.normalize("NFC", value)
    )
    cleaned = " ".join(cleaned.split())
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1].rstrip() + "…"
    return cleaned


def _first_group(match: re.Match[str]) -> str:
    return match.group(1)


def tidy_subject(value: str) -> str:
    """Drop the separators an empty optional field leaves behind, then make it header-safe."""
    line = header_safe(value, limit=10 * MAX_SUBJECT)
    line = _EMPTY_SLOTS.sub(_first_group, line)  # a function: no replacement template to parse
    line = _EDGE_SEPARATORS.sub("", line)
    return header_safe(line)


def display_name(name: str) -> str:
    """The name for an address header, without RFC 5322 specials (`<>()[]:;@\\,"`).

    Why: the full name is in the body; in the header, specials are only a chance for some
    parser or refolder on the way (CPython's among them) to read a second address out of it.
    """
    return " ".join(_SPECIALS.sub(" ", header_safe(name, limit=200)).split())


def reply_to_header(name: str, address: str) -> str:
    """`Name <address>` as a 7-bit value relay encoded itself; HeaderError if it cannot be.

    The name is taken as literal text (an encoded-word typed in it stays text); the address
    must be a 7-bit addr-spec, which submission.py already checked at accept time.
    """
    return one_line(address_words(display_name(name), address))


def sender_header(sender: str) -> str:
    """RELAY_MAIL_FROM (`address` or `Name <address>`) as a 7-bit value, or ConfigError."""
    line = header_safe(sender, limit=300)
    name, address = parseaddr(line)
    whole = bool(address) and (line == address or line.endswith(f"<{address}>"))
    try:
        value = (
            one_line(address_words(display_name(name), address, local_domains=True))
            if whole
            else ""
        )
    except HeaderError:
        value = ""
    if not value:
        msg = "RELAY_MAIL_FROM must be an address or Name <address> (one, on one line)"
        raise ConfigError(msg)
    return value


def tel_uri(phone: str | None) -> str | None:
    """`tel:+33…` (RFC 3966) when the number is E.164; None when it was kept as typed."""
    if phone and _E164.match(phone):
        return f"tel:{phone}"
    return None


def phone_display(phone: str | None) -> str | None:
    """An E.164 number as people read it (+33 6 12 34 56 78); anything else as typed."""
    if not phone or tel_uri(phone) is None:
        return phone
    try:
        return str(
            phonenumbers.format_number(
                phonenumbers.parse(phone, None), phonenumbers.PhoneNumberFormat.INTERNATIONAL
            )
        )
    except phonenumbers.NumberParseException:
        return phone


def label(text: str, width: int = 10) -> str:
    """`Text:` padded to `width`: the plain-text email's aligned columns (a template's own
    `label` macro, if it defines one, takes precedence)."""
    return f"{text}:".ljust(width - 1) + " "


def local_time(moment: datetime, zone: ZoneInfo = DISPLAY_ZONE) -> str:
    """The receipt time as sales read it: in RELAY_TIMEZONE, with the zone's abbreviation."""
    return moment.astimezone(zone).strftime("%d/%m/%Y %H:%M:%S %Z")


def consent_line(sub: SubmissionView, form: FormConfig, _: Gettext = str) -> str:
    """Marketing consent as a sentence: given (with the wording version), refused, or not asked."""
    consent = form.marketing_consent
    if sub.consent_wording_version is None and consent is None:
        return _(N_("not asked on this form"))
    version = sub.consent_wording_version or (consent.wording_version if consent else "?")
    if sub.consent_given:
        return _(N_("given (Art. 6(1)(a) GDPR, wording {version})")).format(version=version)
    return _(N_("not given (box left unticked, wording {version})")).format(version=version)


def legal_line(sub: SubmissionView, _: Gettext = str) -> str:
    """The legal basis as the DPO reads it: article, label and the notice version shown."""
    try:
        basis = LegalBasis(sub.legal_basis)
    except ValueError:
        return _(N_("{basis} (privacy notice {notice})")).format(
            basis=sub.legal_basis, notice=sub.notice_version
        )
    return _(N_("{article}, {label} (privacy notice {notice})")).format(
        article=basis.article, label=_(_LABELS[basis]), notice=sub.notice_version
    )


@functools.cache
def uses_visitor_subject(template: str) -> bool:
    """Whether a subject template mentions `_subject` (then it decides where it goes)."""
    return "_subject" in meta.find_undeclared_variables(SandboxedEnvironment().parse(template))


def declared_rows(sub: SubmissionView, form: FormConfig, language: str) -> list[tuple[str, str]]:
    """(label, value) of each declared field the visitor filled in, in declared order."""
    return [
        (f.label_in(language), display(f, sub.extra[f.name], language))
        for f in form.fields
        if f.name in sub.extra
    ]


class Renderer:
    """Renders templates/email/submission.{txt,html}.j2 and each form's subject template."""

    def __init__(
        self,
        templates_dir: Path,
        *,
        sender: str,
        domain: str,
        default_language: str = "fr",
        timezone: str = "Europe/Paris",
    ) -> None:
        self.default_language = default_language
        self.zone = ZoneInfo(timezone)
        loader = FileSystemLoader(templates_dir)
        self._envs = {
            language: i18n.environment(
                language,
                loader,
                autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
                keep_trailing_newline=True,
                auto_reload=False,  # templates are read once; no stat() per email
            )
            for language in i18n.available()
        }
        for env in self._envs.values():
            env.globals["label"] = label
        self._subjects = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
        self._subject_templates: dict[str, Template] = {}  # compiled once per subject
        self._recipients: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._templates_dir = templates_dir
        self.sender = sender_header(sender)
        self.domain = domain

    def message_id(self, submission_id: str) -> str:
        """Our own Message-Id, so a resend of the same submission can be recognised."""
        return f"<{submission_id}@{self.domain}>"

    def subject(self, sub: SubmissionView, form: FormConfig) -> str:
        """The form's subject template over the fields, made header-safe."""
        values = {
            "name": sub.name,
            "email": sub.email,
            "phone": sub.phone or "",
            "company": sub.company or "",
            "form": form.id,
            "title": form.heading(),
            "id": sub.id,
            "short_id": sub.id[-8:],
            "_subject": sub.visitor_subject or "",
            **{f.name: sub.extra.get(f.name, "") for f in form.fields if f.name.isidentifier()},
        }
        try:
            template = self._subject_templates.get(form.subject)
            if template is None:
                template = self._subjects.from_string(form.subject)
                self._subject_templates[form.subject] = template
            if sub.visitor_subject and not uses_visitor_subject(form.subject):
                return tidy_subject(sub.visitor_subject)  # Formspree: _subject is the subject
            line = template.render(values)
        except TemplateError as exc:
            msg = f"form {form.id!r}: the subject template cannot be rendered ({exc.message})"
            raise RenderError(msg) from None
        return tidy_subject(line) or f"Form {form.id} submission {values['short_id']}"

    def context(self, sub: SubmissionView, form: FormConfig) -> dict[str, Any]:
        """Everything both templates show, already formatted; values are escaped by Jinja."""
        language = self.language_of(form)
        _ = i18n.gettext_for(language)
        return {
            "form_id": form.id,
            "submission_id": sub.id,
            "received": local_time(sub.received_at, self.zone),
            "zone": self.zone.key,
            "name": sub.name,
            "email": sub.email,
            "mailto": "mailto:" + quote(sub.email, safe=_MAILTO_SAFE),
            "phone": phone_display(sub.phone),
            "tel": tel_uri(sub.phone),
            "company": sub.company,
            "message": sub.message,
            "message_lines": sub.message.split("\n"),
            "legal_basis": legal_line(sub, _),
            "consent": consent_line(sub, form, _),
            "consent_wording": form.marketing_consent.wording if form.marketing_consent else None,
            "title": form.heading(),
            "lang": language,
            "fields": declared_rows(sub, form, language),
        }

    def language_of(self, form: FormConfig) -> str:
        """The form's language, else RELAY_DEFAULT_LANGUAGE."""
        return form.language or self.default_language

    def _template(self, name: str, context: dict[str, Any], language: str) -> str:
        env = self._envs.get(language) or self._envs[i18n.SOURCE_LANGUAGE]
        try:
            return env.get_template(name).render(context)
        except TemplateError as exc:
            where = self._templates_dir / name
            msg = f"{where}: the email template cannot be rendered ({exc.message})"
            raise RenderError(msg) from None

    def render(self, sub: SubmissionView, form: FormConfig) -> RenderedEmail:
        """The whole email; RenderError (naming the template, never the data) if it cannot."""
        context = self.context(sub, form)
        language = self.language_of(form)
        subject = self.subject(sub, form)
        try:
            reply_to = reply_to_header(sub.name, sub.email)
            text_words(subject)
            recipients = self._recipients.get(form.recipients)
            if recipients is None:  # the forms file's, checked once (not personal data)
                recipients = tuple(ascii_address(address) for address in form.recipients)
                self._recipients[form.recipients] = recipients
        except HeaderError as exc:
            msg = f"form {form.id!r}: a header cannot be written ({exc})"
            raise RenderError(msg) from None
        return RenderedEmail(
            submission_id=sub.id,
            form_id=form.id,
            message_id=self.message_id(sub.id),
            sender=self.sender,
            to=recipients,
            reply_to=reply_to,
            subject=subject,
            text=self._template("submission.txt.j2", context, language),
            html=None if sub.plain else self._template("submission.html.j2", context, language),
        )


def default_email_templates_dir() -> Path:
    """templates/email/ at the top of the checkout, beside the relay package."""
    return Path(__file__).resolve().parent.parent.parent / "templates" / "email"
