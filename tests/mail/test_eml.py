"""FileTransport: with no Mailgun key, each email is an .eml file a mail client opens."""

from __future__ import annotations

import email
import json
import logging
from dataclasses import replace
from email import policy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.mail.eml import BOUNDARY, FileTransport, build_eml
from relay.mail.render import reply_to_header
from relay.mail.transport import Accepted, Failed, RenderedEmail, Retry
from tests.strategies import hostile_text, long_line

pytestmark = pytest.mark.anyio

EMAIL = RenderedEmail(
    submission_id="0193-sub",
    form_id="contact",
    message_id="<0193-sub@relay.localhost>",
    sender="relay@relay.localhost",
    to=("sales@example.com",),
    reply_to=reply_to_header("Zoé", "zoe@example.fr"),
    subject="Contact - Zoé 😀",
    text="Bonjour 😀",
    html="<p>Bonjour 😀</p>",
)


async def test_writes_one_eml_file_and_logs_its_path(tmp_path, clock, caplog):
    """The file parses back with its headers and both parts; the log line gives the path only."""
    caplog.set_level(logging.INFO, logger="relay")
    result = await FileTransport(tmp_path / "mail", clock=clock).send(EMAIL)
    assert result == Accepted("<0193-sub@relay.localhost>")
    path = tmp_path / "mail" / "0193-sub.eml"
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert message["Subject"] == "Contact - Zoé 😀"
    assert message["Reply-To"].addresses[0].addr_spec == "zoe@example.fr"
    assert message["Date"] == "Wed, 25 Nov 2026 09:30:00 +0000"
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None
    assert html is not None
    assert plain.get_content().strip() == "Bonjour 😀"
    assert "<p>Bonjour 😀</p>" in html.get_content()
    [record] = [r for r in caplog.records if r.name == "relay.mail"]
    assert record.path == str(path)
    assert "zoe@example.fr" not in json.dumps(record.__dict__, default=str)
    assert list((tmp_path / "mail").iterdir()) == [path]


async def test_an_unwritable_folder_is_a_retry(tmp_path, clock):
    """If the file cannot be written the row stays queued (Retry), saying where and why."""
    blocker = tmp_path / "mail"
    blocker.write_text("a file, not a folder", encoding="utf-8")
    result = await FileTransport(blocker, clock=clock).send(EMAIL)
    assert isinstance(result, Retry)
    assert result.error.startswith(f"cannot write {blocker}/0193-sub.eml (")


async def test_an_email_with_a_raw_8bit_header_is_failed_not_written(tmp_path, clock):
    """Headers must come 7-bit from render.py; anything else is refused, never written raw."""
    raw = replace(EMAIL, reply_to="Zoé <zoe@example.fr>")
    result = await FileTransport(tmp_path / "mail", clock=clock).send(raw)
    assert isinstance(result, Failed)
    assert "7-bit" in result.error
    assert not (tmp_path / "mail").exists()


def _lines(text: str) -> list[bytes]:
    return text.encode("utf-8").splitlines() or [b""]


@given(
    text=st.one_of(hostile_text, long_line, st.just(f"a\n--{BOUNDARY}--\n.\nend  \n")),
    html=st.one_of(st.none(), hostile_text, st.just(f"<p>--{BOUNDARY}</p>")),
)
def test_the_file_is_7bit_and_its_parts_read_back_as_written(text, html):
    """Property: whatever the text (the boundary itself, a lone dot, trailing spaces, control
    characters, long lines), the file is 7-bit with lines of at most 78 characters, and each
    part decodes back to its text (line ends made CRLF); no HTML part for `_format=plain`."""
    try:
        text.encode("utf-8"), (html or "").encode("utf-8")
    except UnicodeEncodeError:
        return  # a lone surrogate: send() refuses it (test above), nothing to lay out
    raw = build_eml(replace(EMAIL, text=text, html=html))
    assert raw.isascii()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78
    message = email.message_from_bytes(raw, policy=policy.default)
    plain = message.get_body(("plain",))
    assert plain is not None
    assert _lines(plain.get_content()) == _lines(text)
    found = message.get_body(("html",))
    if html is None:
        assert found is None
        assert not message.is_multipart()
    else:
        assert found is not None
        assert _lines(found.get_content()) == _lines(html)
