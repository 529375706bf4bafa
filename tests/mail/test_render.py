"""The rendered email, parsed back with the stdlib `email` package as a mail client would."""

from __future__ import annotations

import email
import re
import unicodedata
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.config import load_forms
from relay.deliver.delivery import renderer_for
from relay.errors import RenderError
from relay.mail.eml import build_eml
from relay.mail.headers import HeaderError
from relay.mail.render import (
    Renderer,
    SubmissionView,
    default_email_templates_dir,
    header_safe,
    phone_display,
    reply_to_header,
    tel_uri,
    tidy_subject,
)
from relay.mail.transport import RenderedEmail
from tests.strategies import long_line
from tests.strategies import markup_text as hostile_text

RECEIVED = datetime(2026, 7, 14, 8, 5, 9, tzinfo=UTC)  # 10:05:09 in Paris (CEST)
SID = "01937a4c-0000-7000-8000-00000000abcd"


def view(**fields: Any) -> SubmissionView:
    values = {
        "name": "Jeanne Martin",
        "email": "jeanne.martin@example.fr",
        "phone": "+33612345678",
        "company": "Laboratoires Martin",
        "message": "Bonjour,\nje voudrais un devis.",
    }
    values.update(fields)
    return SubmissionView.from_fields(
        values,
        id=SID,
        form_id="contact",
        received_at=RECEIVED,
        legal_basis="legitimate_interest",
        notice_version="2026-03-20",
        consent_given=True,
        consent_wording_version="v1",
    )


@pytest.fixture(name="forms")
def fixture_forms(settings):
    return load_forms(settings.effective_forms_file)


@pytest.fixture(name="renderer")
def fixture_renderer(settings):
    return renderer_for(settings.model_copy(update={"mailgun_domain": "mg.example.com"}))


def parse(rendered: RenderedEmail) -> EmailMessage:
    raw = build_eml(rendered, date="Tue, 14 Jul 2026 08:05:09 +0000")
    return email.message_from_bytes(raw, policy=policy.default)


def parts(message: EmailMessage) -> tuple[str, str]:
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None
    assert html is not None
    crlf = "\r\n"
    return plain.get_content().replace(crlf, "\n"), html.get_content().replace(crlf, "\n")


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_headers_and_both_parts(renderer, forms):
    """From is the operator, Reply-To the submitter, our Message-ID; text then HTML."""
    message = parse(renderer.render(view(), forms["contact"]))
    assert message["From"] == "relay@mg.example.com"
    assert message["To"] == "sales@example.com"
    assert message["Reply-To"] == "Jeanne Martin <jeanne.martin@example.fr>"
    assert message["Subject"] == "Contact - Laboratoires Martin - Jeanne Martin"
    assert message["Message-ID"] == f"<{SID}@mg.example.com>"
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]


def test_the_text_part_alone_carries_everything(renderer, forms):
    """Every field, the form, Paris time, legal basis, consent, id, and both links spelled out."""
    text, _ = parts(parse(renderer.render(view(), forms["contact"])))
    for expected in (
        "Jeanne Martin",
        "jeanne.martin@example.fr",
        "mailto:jeanne.martin@example.fr",
        "+33 6 12 34 56 78",
        "tel:+33612345678",
        "Laboratoires Martin",
        "Bonjour,\nje voudrais un devis.",
        "contact",
        "14/07/2026 10:05:09 CEST (Europe/Paris)",
        "Art. 6(1)(f) GDPR, legitimate interest (privacy notice 2026-03-20)",
        "given (Art. 6(1)(a) GDPR, wording v1)",
        "I agree to receive news about Biosera products by email.",
        SID,
    ):
        assert expected in text


def test_the_html_part_is_outlook_safe(renderer, forms):
    """Tables with inline styles; no script, no external resource, no remote image, no <style>;
    tel: and mailto: links."""
    _, html = parts(parse(renderer.render(view(), forms["contact"])))
    collect = _Collect()
    collect.feed(html)
    tags = {tag for tag, _ in collect.tags}
    assert "table" in tags
    assert not tags & {"script", "img", "link", "style", "iframe", "object", "form", "div"}
    hrefs = [attrs["href"] for tag, attrs in collect.tags if tag == "a"]
    assert hrefs == ["mailto:jeanne.martin@example.fr", "tel:+33612345678"]
    assert not re.search(r"(src|background)\s*=", html, re.IGNORECASE)
    assert "url(" not in html
    cells = [attrs for tag, attrs in collect.tags if tag == "td"]
    assert cells
    assert all("style" in attrs for attrs in cells)
    assert "14/07/2026 10:05:09 CEST" in html
    assert SID in html


def test_hostile_input_is_escaped_and_folded(renderer, forms):
    """HTML in the fields is shown as text; CR/LF cannot reach a header; long lines, RTL and
    emoji survive intact in both parts."""
    hostile_name = 'Évil <script>alert("x")</script>\r\nBcc: victim@example.com'
    rtl = "مرحبا بكم \u202eSARL 😀👩‍👩‍👧"
    long = "y" * 2500
    rendered = renderer.render(
        view(name=hostile_name, company=rtl, message=f"<b>bold</b>\n{long}\nfin"),
        forms["contact"],
    )
    message = parse(rendered)
    assert message["Bcc"] is None
    for header in ("Subject", "Reply-To", "From"):
        assert "\n" not in str(message[header])
        assert "\r" not in str(message[header])
    assert message["Subject"].startswith("Contact - مرحبا بكم")
    assert "Bcc: victim@example.com" in message["Subject"]  # as text, on the same line
    assert message["Reply-To"].addresses[0].addr_spec == "jeanne.martin@example.fr"
    raw = build_eml(rendered)
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998  # RFC 5322 line limit
    text, html = parts(message)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert long in html
    assert long in text
    assert rtl in text
    assert 'dir="auto"' in html
    assert "😀👩‍👩‍👧" in html


def test_a_phone_kept_as_typed_has_no_tel_link(renderer, forms):
    """Only E.164 numbers become tel: links; others are shown as typed."""
    rendered = renderer.render(view(phone="poste 42"), forms["contact"])
    assert "tel:" not in rendered.html
    assert "poste 42" in rendered.text
    assert tel_uri("+33612345678") == "tel:+33612345678"
    assert phone_display("+33612345678") == "+33 6 12 34 56 78"
    assert phone_display("+999123456") == "+999123456"  # E.164-shaped, no such country
    assert phone_display(None) is None
    assert tel_uri("0612") is None
    assert tel_uri(None) is None


def test_missing_optional_fields_read_naturally(renderer, forms):
    """No company: the subject has no dangling separator; the parts say "not given"."""
    rendered = renderer.render(view(company=None, phone=None), forms["contact"])
    assert rendered.subject == "Contact - Jeanne Martin"
    assert "Company:  (not given)" in rendered.text
    assert "not given" in rendered.html


def test_legal_basis_and_consent_variants(renderer, forms):
    """A contract form without a consent box says so; an unticked box says so."""
    quote = SubmissionView(
        **{**view().__dict__, "legal_basis": "contract", "consent_given": False},
    )
    text = renderer.render(quote, forms["contact"]).text
    assert "Art. 6(1)(b) GDPR, contract or pre-contractual steps" in text
    assert "not given (box left unticked, wording v1)" in text
    no_box = SubmissionView(**{**quote.__dict__, "consent_wording_version": None})
    assert "not asked on this form" in renderer.render(no_box, forms["quote"]).text
    odd = SubmissionView(**{**quote.__dict__, "legal_basis": "consent"})
    assert "consent (privacy notice 2026-03-20)" in renderer.render(odd, forms["quote"]).text


def test_a_subject_template_with_an_unknown_name_is_a_render_error(renderer, forms):
    """The error names the form and the problem, never the data."""
    form = forms["contact"].model_copy(update={"subject": "Hi {{ nom }}"})
    with pytest.raises(RenderError, match=r"form 'contact': the subject template .*'nom'"):
        renderer.render(view(), form)


def test_an_empty_subject_falls_back_to_the_form_and_id(renderer, forms):
    """A subject template that renders empty falls back to the form's id and the short submission
    id."""
    form = forms["contact"].model_copy(update={"subject": "{{ company }}"})
    assert renderer.render(view(company=None), form).subject == "Form contact submission 0000abcd"


def test_a_broken_email_template_names_the_file(tmp_path, forms):
    """A template using an unknown variable fails with its path (StrictUndefined)."""
    (tmp_path / "submission.txt.j2").write_text("{{ nope }}", encoding="utf-8")
    (tmp_path / "submission.html.j2").write_text("<p>{{ name }}</p>", encoding="utf-8")
    renderer = Renderer(tmp_path, sender="relay@mg.example.com", domain="mg.example.com")
    with pytest.raises(RenderError, match=r"submission.txt.j2: the email template .*'nope'"):
        renderer.render(view(), forms["contact"])


def test_a_templates_dir_can_replace_the_shipped_one(settings_factory, tmp_path, forms):
    """RELAY_EMAIL_TEMPLATES_DIR overrides templates/email; a folder without them is refused."""
    from relay.errors import ConfigError

    (tmp_path / "submission.txt.j2").write_text("Hello {{ name }}", encoding="utf-8")
    (tmp_path / "submission.html.j2").write_text("<p>{{ name }}</p>", encoding="utf-8")
    renderer = renderer_for(settings_factory(email_templates_dir=tmp_path))
    assert renderer.render(view(name="<A>"), forms["contact"]).html == "<p>&lt;A&gt;</p>"
    with pytest.raises(ConfigError, match=r"must hold submission\.txt\.j2"):
        renderer_for(settings_factory(email_templates_dir=tmp_path / "missing"))
    assert (default_email_templates_dir() / "submission.html.j2").is_file()


def test_a_copied_template_with_its_own_label_macro_renders_as_the_shipped_one(tmp_path, forms):
    """The plain-text template used to define `label` as a macro; relay now provides it as a
    function. A template copied from then, macro and all, renders the same text as today's."""
    shipped = default_email_templates_dir()
    macro = '{% macro label(text, width=10) %}{{ "%-*s"|format(width - 1, text ~ ":") }} '
    macro += "{% endmacro -%}\n"
    text = (shipped / "submission.txt.j2").read_text(encoding="utf-8")
    (tmp_path / "submission.txt.j2").write_text(macro + text, encoding="utf-8")
    (tmp_path / "submission.html.j2").write_text("<p>{{ name }}</p>", encoding="utf-8")
    kwargs: dict[str, Any] = {"sender": "relay@mg.example.com", "domain": "mg.example.com"}
    submission = view(phone=None)
    old = Renderer(tmp_path, **kwargs).render(submission, forms["contact"]).text
    assert old == Renderer(shipped, **kwargs).render(submission, forms["contact"]).text
    assert "Nom:      Jeanne Martin\n" in old  # "Nom:" padded to the column


def test_internationalised_addresses_still_make_a_reply_to():
    """IDN domains are punycoded and names encoded by relay; a non-ASCII local part is refused."""
    assert (
        reply_to_header("Zoé", "zoe@exämple.fr") == "=?utf-8?b?Wm/DqQ==?= <zoe@xn--exmple-cua.fr>"
    )
    assert reply_to_header('Jo "J" <x>', "jo@example.fr") == "Jo J x <jo@example.fr>"
    assert reply_to_header("", "jo@exämple.fr") == "jo@xn--exmple-cua.fr"
    with pytest.raises(
        HeaderError, match=r"^not an address that can be written in a 7-bit header$"
    ):
        reply_to_header("Jo", "jö@exämple.fr")


@pytest.mark.parametrize(
    "mail_from",
    [
        "Forms <forms@mg.example.com>\r\nBcc: x@y",
        "forms@mg.example.com, other@example.com",
        "not an address",
        "Forms <jö@mg.example.com>",
    ],
)
def test_a_sender_that_is_not_one_address_is_refused(settings_factory, mail_from):
    """A misconfigured RELAY_MAIL_FROM is a configuration error at start, never a header."""
    from relay.errors import ConfigError

    with pytest.raises(ConfigError, match="RELAY_MAIL_FROM"):
        renderer_for(settings_factory(mail_from=mail_from))


def test_the_sender_is_encoded_by_relay(settings_factory):
    """A sender with a non-ASCII name becomes an encoded-word and an ASCII address."""
    renderer = renderer_for(settings_factory(mail_from="Équipe Forms <forms@mg.example.com>"))
    assert renderer.sender == "=?utf-8?b?w4lxdWlwZSBGb3Jtcw==?= <forms@mg.example.com>"


@given(value=st.one_of(hostile_text, long_line))
def test_header_safe_never_leaves_a_line_break(value):
    """Property: whatever the input, a header value has no CR, LF or other control character."""
    line = header_safe(value)
    assert "\r" not in line
    assert "\n" not in line
    assert not [ch for ch in line if unicodedata.category(ch) in {"Cc", "Zl", "Zp", "Cs"}]
    assert len(line) <= 200
    assert "\r" not in tidy_subject(value)
    assert "\n" not in tidy_subject(value)
