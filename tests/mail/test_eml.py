"""FileTransport: with no Mailgun key, each email is an .eml file a mail client opens."""

from __future__ import annotations

import email
import json
import logging
from email import policy

import pytest

from relay.mail.eml import FileTransport
from relay.mail.render import reply_to_header
from relay.mail.transport import Accepted, Failed, RenderedEmail, Retry

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
    from dataclasses import replace

    raw = replace(EMAIL, reply_to="Zoé <zoe@example.fr>")
    result = await FileTransport(tmp_path / "mail", clock=clock).send(raw)
    assert isinstance(result, Failed)
    assert "7-bit" in result.error
    assert not (tmp_path / "mail").exists()
