"""A stored submission → the email sales read: subject, plain text, Outlook-safe HTML. Pure.

Why this shape: the templates are autoescaped with StrictUndefined, so a submitter's text can
never become markup and a typo in a template fails loudly instead of sending a blank field.
Header values (Subject, Reply-To, From) go through `header_safe`, so whatever the input (and
whatever the operator's subject template produces) no header ever carries CR, LF or another
control character: header injection is impossible by construction, not by validation alone.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from email.utils import formataddr
from pathlib import Path
from typing import Any
from urllib.parse import quote

import phonenumbers
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    select_autoescape,
)
from jinja2.sandbox import SandboxedEnvironment

from relay.clock import DISPLAY_ZONE
from relay.config import FormConfig, LegalBasis
from relay.errors import RenderError
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
    LegalBasis.CONTRACT: "contract or pre-contractual steps",
    LegalBasis.LEGITIMATE_INTEREST: "legitimate interest",
}


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

    @classmethod
    def from_fields(cls, fields: dict[str, Any], **record: Any) -> SubmissionView:
        """Build from the decrypted JSON (name, email, phone, company, message) and the row."""
        return cls(
            name=str(fields.get("name") or ""),
            email=str(fields.get("email") or ""),
            message=str(fields.get("message") or ""),
            phone=str(fields["phone"]) if fields.get("phone") else None,
            company=str(fields["company"]) if fields.get("company") else None,
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


def tidy_subject(value: str) -> str:
    """Drop the separators an empty optional field leaves behind, then make it header-safe."""
    line = header_safe(value, limit=10 * MAX_SUBJECT)
    line = _EMPTY_SLOTS.sub(r"\1", line)
    line = _EDGE_SEPARATORS.sub("", line)
    return header_safe(line)


def display_name(name: str) -> str:
    """The name for an address header, without RFC 5322 specials (`<>()[]:;@\\,"`).

    Why: the full name is in the body; in the header, specials are only a chance for some
    parser or refolder on the way (CPython's among them) to read a second address out of it.
    """
    return " ".join(_SPECIALS.sub(" ", header_safe(name, limit=200)).split())


def reply_to_header(name: str, address: str) -> str:
    """`Name <address>`, RFC 2047-encoding a non-ASCII name; never a line break."""
    name = display_name(name)
    address = header_safe(address, limit=254).replace(" ", "")
    try:
        return formataddr((name, address), charset="utf-8")
    except UnicodeEncodeError:
        # An internationalised address (SMTPUTF8): formataddr only takes ASCII addresses.
        local, _, domain = address.rpartition("@")
        try:
            return formataddr((name, f"{local}@{domain.encode('idna').decode('ascii')}"), "utf-8")
        except (UnicodeError, ValueError):
            return f'"{name}" <{address}>' if name else f"<{address}>"


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


def paris_time(moment: datetime) -> str:
    """The receipt time as sales read it: Europe/Paris, with the zone's abbreviation."""
    local = moment.astimezone(DISPLAY_ZONE)
    return local.strftime("%d/%m/%Y %H:%M:%S %Z")


def consent_line(sub: SubmissionView, form: FormConfig) -> str:
    """Marketing consent as a sentence: given (with the wording version), refused, or not asked."""
    consent = form.marketing_consent
    if sub.consent_wording_version is None and consent is None:
        return "not asked on this form"
    version = sub.consent_wording_version or (consent.wording_version if consent else "?")
    if sub.consent_given:
        return f"given (Art. 6(1)(a) GDPR, wording {version})"
    return f"not given (box left unticked, wording {version})"


def legal_line(sub: SubmissionView) -> str:
    """The legal basis as the DPO reads it: article, label and the notice version shown."""
    try:
        basis = LegalBasis(sub.legal_basis)
    except ValueError:
        return f"{sub.legal_basis} (privacy notice {sub.notice_version})"
    return f"{basis.article}, {_LABELS[basis]} (privacy notice {sub.notice_version})"


class Renderer:
    """Renders templates/email/submission.{txt,html}.j2 and each form's subject template."""

    def __init__(self, templates_dir: Path, *, sender: str, domain: str) -> None:
        self._env = Environment(
            loader=FileSystemLoader(templates_dir),
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
            auto_reload=False,  # templates are read once; no stat() per email
        )
        self._subjects = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
        self._subject_templates: dict[str, Template] = {}  # compiled once per subject
        self._templates_dir = templates_dir
        self.sender = header_safe(sender, limit=300)
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
            "title": form.title or form.id,
            "id": sub.id,
            "short_id": sub.id[-8:],
        }
        try:
            template = self._subject_templates.get(form.subject)
            if template is None:
                template = self._subjects.from_string(form.subject)
                self._subject_templates[form.subject] = template
            line = template.render(values)
        except TemplateError as exc:
            msg = f"form {form.id!r}: the subject template cannot be rendered ({exc.message})"
            raise RenderError(msg) from None
        return tidy_subject(line) or f"Form {form.id} submission {values['short_id']}"

    def context(self, sub: SubmissionView, form: FormConfig) -> dict[str, Any]:
        """Everything both templates show, already formatted; values are escaped by Jinja."""
        return {
            "form_id": form.id,
            "submission_id": sub.id,
            "received": paris_time(sub.received_at),
            "name": sub.name,
            "email": sub.email,
            "mailto": "mailto:" + quote(sub.email, safe=_MAILTO_SAFE),
            "phone": phone_display(sub.phone),
            "tel": tel_uri(sub.phone),
            "company": sub.company,
            "message": sub.message,
            "message_lines": sub.message.split("\n"),
            "legal_basis": legal_line(sub),
            "consent": consent_line(sub, form),
            "consent_wording": form.marketing_consent.wording if form.marketing_consent else None,
        }

    def _template(self, name: str, context: dict[str, Any]) -> str:
        try:
            return self._env.get_template(name).render(context)
        except TemplateError as exc:
            where = self._templates_dir / name
            msg = f"{where}: the email template cannot be rendered ({exc.message})"
            raise RenderError(msg) from None

    def render(self, sub: SubmissionView, form: FormConfig) -> RenderedEmail:
        """The whole email; RenderError (naming the template, never the data) if it cannot."""
        context = self.context(sub, form)
        return RenderedEmail(
            submission_id=sub.id,
            form_id=form.id,
            message_id=self.message_id(sub.id),
            sender=self.sender,
            to=form.recipients,
            reply_to=reply_to_header(sub.name, sub.email),
            subject=self.subject(sub, form),
            text=self._template("submission.txt.j2", context),
            html=self._template("submission.html.j2", context),
        )


def default_email_templates_dir() -> Path:
    """templates/email/ at the top of the checkout, beside the relay package."""
    return Path(__file__).resolve().parent.parent.parent / "templates" / "email"
