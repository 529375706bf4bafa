"""Headers are relay's own: any text in any field parses back as the same header set, 7-bit."""

from __future__ import annotations

import asyncio
import base64
import email
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
import respx
from email_validator import validate_email
from hypothesis import example, given

from relay.accept.submission import Submission, validate_submission
from relay.config import load_forms
from relay.deliver.delivery import renderer_for
from relay.mail.eml import build_eml
from relay.mail.headers import HeaderError, ascii_address, encoded_words, fold, text_words
from relay.mail.mailgun import MailgunTransport
from relay.mail.render import SubmissionView, display_name
from relay.mail.transport import Accepted, RenderedEmail
from tests.conftest import FORMS_TOML
from tests.mail.test_mailgun import fields_of
from tests.strategies import ENCODED_INJECTIONS, header_submissions

URL = "https://api.eu.mailgun.net/v3/mg.example.com/messages"
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
SID = "01937a4c-0000-7000-8000-00000000abcd"


@pytest.fixture(name="toolkit", scope="module")
def fixture_toolkit(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from relay.config import Settings

    folder = tmp_path_factory.mktemp("headers")
    (folder / "forms.toml").write_text(FORMS_TOML, encoding="utf-8")
    settings = Settings(
        var_dir=folder / "var", forms_file=folder / "forms.toml", mailgun_domain="mg.example.com"
    )
    return renderer_for(settings), load_forms(settings.effective_forms_file)["contact"]


def render(toolkit: Any, sub: Submission) -> RenderedEmail:
    renderer, form = toolkit
    view = SubmissionView.from_fields(
        sub.model_dump(),
        id=SID,
        form_id="contact",
        received_at=datetime(2026, 7, 14, 8, 5, 9, tzinfo=UTC),
        legal_basis="legitimate_interest",
        notice_version="2026-03-20",
        consent_given=False,
        consent_wording_version="v1",
    )
    return renderer.render(view, form)  # type: ignore[no-any-return]


def mailgun_request(rendered: RenderedEmail) -> httpx.Request:
    async def go() -> httpx.Request:
        with respx.mock(assert_all_called=True, assert_all_mocked=True) as router:
            route = router.post(URL).respond(200, json={"id": "<x@mg>"})
            async with httpx.AsyncClient() as client:
                transport = MailgunTransport(client, api_key="k", domain="mg.example.com")
                assert await transport.send(rendered) == Accepted("<x@mg>")
            return route.calls.last.request

    return asyncio.run(go())


def expected_address(address: str) -> str:
    return str(validate_email(address, check_deliverability=False).ascii_email)


def check_headers(message: EmailMessage, rendered: RenderedEmail, sub: Submission) -> None:
    reply_to = message.get_all("Reply-To") or []
    assert len(reply_to) == 1
    addresses = message["Reply-To"].addresses
    assert len(addresses) == 1
    assert addresses[0].addr_spec == expected_address(sub.email)
    label = display_name(sub.name)
    if label.endswith("…") or addresses[0].display_name.endswith("…"):  # shortened to one word
        assert label.startswith(addresses[0].display_name.removesuffix("…"))
    else:
        assert addresses[0].display_name == label
    assert str(message["Subject"]) == rendered.subject
    assert [a.addr_spec for a in message["To"].addresses] == ["sales@example.com"]
    for name in message:
        assert "\r" not in str(message[name])
        assert "\n" not in str(message[name])


@given(raw=header_submissions)
@example(
    raw={"name": "Jo", "email": "a@example.com", "message": "m", "company": ENCODED_INJECTIONS[0]}
)
@example(raw={"name": ENCODED_INJECTIONS[2], "email": "a@example.com", "message": "m"})
@example(raw={"name": "Jo", "email": f"{ENCODED_INJECTIONS[0]}@example.com", "message": "m"})
@example(raw={"name": "Jo", "email": "jö@exämple.fr", "message": "m"})
@example(raw={"name": "Jo\u202e", "email": "a@exаmple.com", "message": "m", "phone": "=?"})
def test_any_accepted_submission_makes_the_same_headers_on_both_transports(toolkit, raw):
    """Whatever the fields hold, a submission is refused or its .eml and Mailgun request parse
    back with exactly the expected headers, 7-bit, and one Reply-To: the submitted address."""
    sub = validate_submission(raw, phone_region="FR")
    if not isinstance(sub, Submission):
        return
    rendered = render(toolkit, sub)  # accepted means renderable: never stuck until `dead`

    data = build_eml(rendered, date="Tue, 14 Jul 2026 08:05:09 +0000")
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    eml = email.message_from_bytes(data, policy=policy.default)
    assert {name.lower() for name in eml} == EML_HEADERS
    check_headers(eml, rendered, sub)
    plain = eml.get_body(("plain",))
    assert plain is not None
    assert plain.get_content().replace("\r\n", "\n") == rendered.text.replace("\r\n", "\n")

    fields = fields_of(mailgun_request(rendered))
    assert {name for name, _ in fields} == MAILGUN_FIELDS
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
    check_headers(parsed, rendered, sub)


@pytest.mark.parametrize(
    ("email_address", "accepted"),
    [
        ("jeanne@example.fr", True),
        ("jeanne@exämple.fr", True),  # IDN domain: punycode in the header
        ("=?utf-8?q?x=0D=0ABcc:_v@example.com?=@example.com", False),
        ("a=?b@example.com", False),
        ("jö@example.fr", False),  # SMTPUTF8 local part: no 7-bit header can carry it
        ("用户@例子.广告", False),
    ],
)
def test_an_address_no_header_can_carry_is_refused_at_accept(email_address, accepted):
    """The address check at accept is the one the renderer uses: refused now, or sendable."""
    sub = validate_submission(
        {"name": "Jo", "email": email_address, "message": "m"}, phone_region="FR"
    )
    assert isinstance(sub, Submission) is accepted
    if not accepted:
        assert [(e.field, e.code) for e in sub] == [("email", "TYPE_EMAIL")]  # type: ignore[union-attr]


def test_a_typed_encoded_word_is_encoded_again_so_it_stays_text():
    """`=?...?=` in a value never reaches a header as is: relay wraps the whole value in its own
    word, which decodes back to the text typed; plain text stays plain; long text is split into
    words of at most 75 characters."""
    typed = "Hi =?utf-8?q?x=0D=0ABcc:_a@b?="
    [word] = text_words(typed)
    assert word.startswith("=?utf-8?b?")
    assert base64.b64decode(word.removeprefix("=?utf-8?b?").removesuffix("?=")).decode() == typed
    assert text_words("Plain subject") == ["Plain", "subject"]
    words = encoded_words("é" * 500)
    assert max(len(w) for w in words) <= 75
    decoded = b"".join(base64.b64decode(w[len("=?utf-8?b?") : -2]) for w in words)
    assert decoded.decode() == "é" * 500


def test_a_lone_surrogate_cannot_become_a_header():
    """A character UTF-8 cannot encode is a HeaderError naming no data."""
    with pytest.raises(HeaderError, match="cannot encode"):
        text_words("x\ud800")
    with pytest.raises(HeaderError, match="encoded-word"):
        ascii_address("=?x?=@example.com")


def test_folding_keeps_lines_short_and_unfolds_to_the_words():
    """Folded lines stay within 78 characters, and unfold exactly to the header."""
    words = ["word"] * 40
    folded = fold("Subject", words)
    assert all(len(line) <= 78 for line in folded.split("\r\n"))
    assert folded.replace("\r\n", "") == "Subject: " + " ".join(words)
