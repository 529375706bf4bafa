"""The email relay writes, parsed back the way a receiver parses it (issue 15).

Every example is a submission that passes validation (tests/strategies.py: hostile text
inside valid fields), rendered for its form, written as an .eml by the file transport's
`build_eml` and as a Mailgun request by the real transport; each is parsed back with the
standard library's email parser (policy=default, which decodes encoded-words) and its HTML
part with html.parser. A property that checked the *values* relay produced let a header
injection through before (Python decoded a typed encoded-word into CR LF while refolding):
these check what comes out of the parser.
"""

from __future__ import annotations

import asyncio
import email
import functools
import re
import ssl
import string
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import email_validator
import httpx
import pytest
import respx
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic_core import PydanticCustomError

from relay.accept.form_input import read_form
from relay.accept.submission import valid_email, validated_email
from relay.config import FormConfig, Settings, load_forms
from relay.deliver.delivery import renderer_for
from relay.mail import headers
from relay.mail.eml import build_eml
from relay.mail.headers import HeaderError, ascii_address
from relay.mail.mailgun import MailgunTransport
from relay.mail.render import Renderer, SubmissionView, reply_to_header, tel_uri
from relay.mail.transport import Accepted, RenderedEmail
from tests.conftest import FORMS_TOML
from tests.formspree_forms import write_forms
from tests.mail.test_mailgun import fields_of
from tests.strategies import Address, SubmissionCase, demo_cases, one_line, valid_cases

URL = "https://api.eu.mailgun.net/v3/mg.example.com/messages"
SID = "01937a4c-0000-7000-8000-00000000abcd"
DATE = "Tue, 14 Jul 2026 08:05:09 +0000"
EML_HEADERS = {
    "from",
    "to",
    "reply-to",
    "subject",
    "message-id",
    "date",
    "x-relay-submission-id",
    "mime-version",
    "content-type",
}
MAILGUN_FIELDS = {
    "from",
    "to",
    "subject",
    "text",
    "html",
    "h:Reply-To",
    "h:Message-Id",
    "o:tracking",
    "o:tracking-clicks",
    "o:tracking-opens",
    "o:require-tls",
    "v:submission_id",
    "o:tag",
}
#: RFC 5322 specials, which relay keeps out of a display name.
SPECIALS = re.compile(r'[<>()\[\]:;@\\,"]')


class Mail:
    """The renderer and the forms a running relay would have (mailgun_domain set)."""

    def __init__(self, folder: Path) -> None:
        (folder / "forms.toml").write_text(FORMS_TOML, encoding="utf-8")
        settings = Settings(
            var_dir=folder / "var",
            forms_file=folder / "forms.toml",
            mailgun_domain="mg.example.com",
        )
        self.renderer: Renderer = renderer_for(settings)
        self.forms = {
            "contact": load_forms(settings.effective_forms_file)["contact"],
            "demo": load_forms(write_forms(folder))["demo"],  # French, declared fields, _subject
        }

    def view(self, form: FormConfig, body: dict[str, Any]) -> SubmissionView:
        return view_of(form, body)


def view_of(form: FormConfig, body: dict[str, Any]) -> SubmissionView:
    """The view the dispatcher builds from a stored body."""
    return SubmissionView.from_fields(
        body,
        id=SID,
        form_id=form.id,
        received_at=datetime(2026, 7, 14, 8, 5, 9, tzinfo=UTC),
        legal_basis=form.legal_basis.value,
        notice_version=form.notice_version,
        consent_given=False,
        consent_wording_version=None,
    )


@pytest.fixture(name="mail", scope="module")
def fixture_mail(tmp_path_factory: pytest.TempPathFactory) -> Mail:
    return Mail(tmp_path_factory.mktemp("mail"))


#: (form id, raw fields, the address as a Reply-To must carry it)
Drawn = tuple[str, dict[str, Any], Address]


def _contact(case: SubmissionCase) -> Drawn:
    return "contact", case.raw, case.address


#: Valid submissions to the contact form (built-in fields) and the demo form (declared fields,
#: a visitor's `_subject`, `_format=plain`), every text hostile.
submissions_to_forms = st.one_of(
    valid_cases().map(_contact),
    demo_cases.map(lambda case: ("demo", case.raw, case.address)),
)


def accepted_body(mail: Mail, form_id: str, raw: dict[str, Any]) -> dict[str, Any]:
    """What the accept path seals for these fields (they are valid: read_form never refuses)."""
    return read_form(raw, mail.forms[form_id], phone_region="FR").body()


def expected_label(name: str) -> str:
    """The display name a Reply-To should show: the name on one line, without specials."""
    line = "".join(
        " " if unicodedata.category(char) in {"Cc", "Zl", "Zp", "Cs"} else char
        for char in unicodedata.normalize("NFC", name)
    )
    return " ".join(SPECIALS.sub(" ", " ".join(line.split())[:200]).split())


def check_reply_to(message: EmailMessage, name: str, address: str) -> None:
    """One Reply-To holding one address, the submitter's, under their name (or its start)."""
    assert len(message.get_all("Reply-To") or []) == 1
    addresses = message["Reply-To"].addresses
    assert [a.addr_spec for a in addresses] == [address]
    shown, wanted = addresses[0].display_name, expected_label(name)
    if shown.endswith("…"):  # a long name is shortened to one encoded-word
        assert wanted.startswith(shown.removesuffix("…").rstrip())
    else:
        assert shown == wanted


def check_one_line_headers(message: EmailMessage) -> None:
    """No header value holds a line break once parsed (the encoded-words decoded)."""
    for name in message:
        for value in message.get_all(name) or []:
            assert "\r" not in str(value)
            assert "\n" not in str(value)


@functools.cache
def tls() -> ssl.SSLContext:
    """One TLS context for every example: building one reads the CA bundle (40 ms)."""
    return ssl.create_default_context()


def mailgun_request(rendered: RenderedEmail) -> httpx.Request:
    """The request the real Mailgun transport sends for this email."""

    async def go() -> httpx.Request:
        with respx.mock(assert_all_called=True, assert_all_mocked=True) as router:
            route = router.post(URL).respond(200, json={"id": "<x@mg>"})
            async with httpx.AsyncClient(verify=tls()) as client:
                transport = MailgunTransport(client, api_key="k", domain="mg.example.com")
                assert await transport.send(rendered) == Accepted("<x@mg>")
            return route.calls.last.request

    return asyncio.run(go())


@given(drawn=submissions_to_forms)
def test_the_eml_and_the_mailgun_request_parse_back_to_exactly_relays_headers(mail, drawn):
    """Property: for any valid submission, the .eml parses back with exactly relay's header
    names, 7-bit, lines within 998 octets, no header value holding CR or LF, one Reply-To (the
    submitter), and bodies equal to the rendered ones; the Mailgun request carries exactly
    relay's fields, each header value 7-bit and on one line, and parses back the same."""
    form_id, raw, address = drawn
    body = accepted_body(mail, form_id, raw)
    rendered = mail.renderer.render(mail.view(mail.forms[form_id], body), mail.forms[form_id])

    data = build_eml(rendered, date=DATE)
    assert data.split(b"\r\n\r\n", 1)[0].isascii()
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    eml = email.message_from_bytes(data, policy=policy.default)
    text_only = {"content-transfer-encoding"} if rendered.html is None else set()
    assert {name.lower() for name in eml} == EML_HEADERS | text_only
    check_one_line_headers(eml)
    check_reply_to(eml, body["name"], address.ascii)
    assert str(eml["Subject"]) == rendered.subject
    assert [a.addr_spec for a in eml["To"].addresses] == ["sales@example.com"]
    plain = eml.get_body(("plain",))
    assert plain is not None
    text = plain.get_content().replace("\r\n", "\n")
    assert text == rendered.text.replace("\r\n", "\n")
    assert body["message"] in text
    html = eml.get_body(("html",))
    if rendered.html is None:
        assert html is None
    else:
        assert html is not None
        assert html.get_content().replace("\r\n", "\n") == rendered.html.replace("\r\n", "\n")

    fields = fields_of(mailgun_request(rendered))
    names = {name for name, _ in fields}
    assert names == (MAILGUN_FIELDS if rendered.html else MAILGUN_FIELDS - {"html"})
    values = dict(fields)
    for name, value in fields:
        if name not in ("text", "html"):
            assert value.isascii()
            assert "\r" not in value
            assert "\n" not in value
    block = (
        f"From: {values['from']}\r\nTo: {values['to']}\r\nReply-To: {values['h:Reply-To']}\r\n"
        f"Subject: {values['subject']}\r\nMessage-Id: {values['h:Message-Id']}\r\n\r\n"
    )
    parsed = email.message_from_string(block, policy=policy.default)
    assert {name.lower() for name in parsed} == {"from", "to", "reply-to", "subject", "message-id"}
    check_one_line_headers(parsed)
    check_reply_to(parsed, body["name"], address.ascii)
    assert str(parsed["Subject"]) == rendered.subject


# --- the HTML part ---------------------------------------------------------------------------


class Markup(HTMLParser):
    """Everything html.parser sees: the markup (tags, attribute names, comments) and the text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.markup: list[tuple[str, ...]] = []
        self.text: list[str] = []
        self.links: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.markup.append(("start", tag, *sorted(name for name, _ in attrs)))
        self.links += [value or "" for name, value in attrs if name == "href"]

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        self.markup.append(("end", tag))

    def handle_comment(self, data: str) -> None:
        self.markup.append(("comment", data))

    def handle_decl(self, decl: str) -> None:
        self.markup.append(("decl", decl))

    def handle_pi(self, data: str) -> None:
        self.markup.append(("pi", data))

    def unknown_decl(self, data: str) -> None:
        self.markup.append(("unknown", data))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def skeleton(body: dict[str, Any]) -> dict[str, Any]:
    """The same submission with every visitor's text replaced by a plain `x`: the template's
    own markup for this shape (which fields are present, how many message lines, a tel: link)."""
    plain = dict(body)
    plain["name"] = "x" if body["name"] else ""
    plain["email"] = "x@example.com"
    plain["message"] = "\n".join("x" for _ in body["message"].split("\n"))
    if body.get("phone"):
        plain["phone"] = "+33612345678" if tel_uri(body["phone"]) else "x"
    if body.get("company"):
        plain["company"] = "x"
    if "fields" in body:
        plain["fields"] = dict.fromkeys(body["fields"], "x")
    return plain


@given(drawn=submissions_to_forms)
def test_the_html_part_has_the_templates_tags_and_no_other(mail, drawn):
    """Property: parsed with html.parser, the HTML part of any valid submission has exactly the
    tags, attribute names and comments the template makes for a plain submission of the same
    shape (no `<script>`, no tag or attribute from the visitor's text), and its text holds the
    visitor's name, address, company and message as they were typed."""
    form_id, raw, _ = drawn
    form = mail.forms[form_id]
    body = accepted_body(mail, form_id, raw)
    body.pop("_format", None)  # this property is about the HTML part: always ask for it
    html = mail.renderer.render(mail.view(form, body), form).html
    expected = mail.renderer.render(mail.view(form, skeleton(body)), form).html
    assert html is not None
    assert expected is not None
    seen, template = Markup(html), Markup(expected)
    assert seen.markup == template.markup
    assert {entry[1] for entry in seen.markup if entry[0] == "start"} <= {
        "html",
        "head",
        "meta",
        "title",
        "body",
        "table",
        "tr",
        "td",
        "a",
        "span",
        "br",
    }
    text = "".join(seen.text)
    for value in (body["name"], body["email"], body.get("company") or "", body["message"]):
        assert value in text
    mailto = [link for link in seen.links if link.startswith("mailto:")]
    assert [unquote(link.removeprefix("mailto:")) for link in mailto] == [body["email"]]


# --- Reply-To on its own ---------------------------------------------------------------------


@given(name=st.one_of(one_line(200), st.just("")), case=valid_cases())
def test_a_reply_to_parses_back_as_the_submitters_one_address(mail, name, case):
    """Property: `Reply-To: <reply_to_header(name, address)>` parses back as exactly one
    address, the submitter's in 7-bit form, under their name without RFC 5322 specials."""
    sub = read_form(case.raw, mail.forms["contact"], phone_region="FR").submission
    value = reply_to_header(name, sub.email)
    assert value.isascii()
    parsed = email.message_from_string(f"Reply-To: {value}\r\n\r\n", policy=policy.default)
    assert [key.lower() for key in parsed] == ["reply-to"]
    check_one_line_headers(parsed)
    check_reply_to(parsed, name, case.address.ascii)


def _by_the_validator(address: str) -> str | None:
    """What relay.mail.headers.ascii_address gives without its fast path: email-validator's
    7-bit address, or None where it refuses."""
    try:
        checked = validate_email(
            address, check_deliverability=False, allow_smtputf8=False, globally_deliverable=False
        )
    except EmailNotValidError:
        return None
    return str(checked.ascii_email)


def _by_relay(address: str) -> str | None:
    try:
        return ascii_address(address)
    except HeaderError:
        return None


_ATOM_TEXT = st.text(
    alphabet=string.ascii_letters + string.digits + "!#$%&'*+/^_`{|}~=?-", min_size=1, max_size=12
)
_LABEL = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
plain_addresses = st.builds(
    lambda atoms, labels, top: ".".join(atoms) + "@" + ".".join([*labels, top]),
    st.lists(_ATOM_TEXT, min_size=1, max_size=6),
    st.lists(_LABEL, min_size=1, max_size=3),
    st.text(alphabet=string.ascii_lowercase, min_size=2, max_size=8),
)
near_plain = st.one_of(
    plain_addresses.map(str.upper),  # an upper-case domain: the validator's path
    plain_addresses.map(lambda a: a.replace("@", "@xn--", 1)),  # an IDN label
    plain_addresses.map(lambda a: a.replace(".", "..", 1)),
    plain_addresses.map(lambda a: "a" * 60 + a),  # a local part over 64 characters
    plain_addresses.map(lambda a: a + "\n"),
    st.text(max_size=40),
)


@given(address=st.one_of(plain_addresses, near_plain))
def test_the_reply_to_fast_path_gives_what_email_validator_gives(address):
    """Property: an address the fast path of ascii_address takes as it is (a plain dot-atom
    at a lower-case LDH domain) is one email-validator returns unchanged, and on any text
    ascii_address answers as email-validator does (the same address, or a refusal)."""
    if headers.plain_address(address):
        assert _by_the_validator(address) == address
    if "=?" not in address:  # refused by relay before either path
        assert _by_relay(address) == _by_the_validator(address)


def _accepted(check: Callable[[str], str], address: str) -> str | None:
    """The address `check` (valid_email, or its validator-only path) gives, or None."""
    try:
        return check(address)
    except PydanticCustomError:
        return None


special_use = st.builds(
    lambda address, name: address.rpartition("@")[0] + "@" + name,
    plain_addresses,
    st.sampled_from(["localhost", "a.localhost", "x.test", "b.invalid", "c.local", "d.onion",
                     "e.arpa", "mytest.com", "onion.fr", "example.com"]),
)  # fmt: skip


@given(address=st.one_of(plain_addresses, special_use, near_plain))
@example(address="a=?b@example.com")  # an encoded-word's opening: a dot-atom, refused all the same
def test_the_accept_fast_path_gives_what_email_validator_gives(address):
    """Property: valid_email, which takes a plain address at a domain that is not special-use
    without calling email-validator, accepts and refuses exactly what the validator does (with
    `globally_deliverable`), and gives the same normalised address."""
    expected = _accepted(validated_email, address.strip())
    assert _accepted(valid_email, address) == expected


def test_the_accept_fast_path_follows_the_validators_test_environment(monkeypatch):
    """`@x.test` is refused, unless email-validator is told it runs in a test environment;
    the fast path reads the same switch."""
    assert _accepted(valid_email, "a@x.test") is None
    monkeypatch.setattr(email_validator, "TEST_ENVIRONMENT", True)
    assert (
        _accepted(valid_email, "a@x.test") == _accepted(validated_email, "a@x.test") == "a@x.test"
    )
