"""FileTransport: with no Mailgun key, each email is an .eml file a mail client opens."""

from __future__ import annotations

import asyncio
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


async def test_sends_at_once_are_written_together_each_with_its_own_result(tmp_path, clock):
    """Sends that start together are written in one go, and each gets its own answer: one
    whose file cannot be written (a folder is in its place) is a Retry, the others Accepted."""
    mail = tmp_path / "mail"
    (mail / "0193-b.eml").mkdir(parents=True)
    transport = FileTransport(mail, clock=clock)
    emails = [replace(EMAIL, submission_id=f"0193-{n}", message_id=f"<0193-{n}@x>") for n in "abc"]
    results = await asyncio.gather(*(transport.send(email) for email in emails))
    assert results[0] == Accepted("<0193-a@x>")
    assert isinstance(results[1], Retry)
    assert results[1].error == f"cannot write {mail}/0193-b.eml (IsADirectoryError)"
    assert results[2] == Accepted("<0193-c@x>")
    assert sorted(p.name for p in mail.glob("*.eml")) == ["0193-a.eml", "0193-b.eml", "0193-c.eml"]
    assert (mail / "0193-c.eml").stat().st_mode & 0o777 == 0o600


async def test_a_send_cancelled_while_its_file_is_written_leaves_the_file(tmp_path, clock):
    """A send cancelled at stop after its file was queued ends cancelled, and the file is
    written all the same (the dispatcher logs such a send as interrupted: maybe sent)."""
    transport = FileTransport(tmp_path / "mail", clock=clock)
    task = asyncio.create_task(transport.send(EMAIL))
    await asyncio.sleep(0)  # built and queued for the writing thread
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(5):
        while not (tmp_path / "mail" / "0193-sub.eml").exists():  # noqa: ASYNC110 - a file, no event
            await asyncio.sleep(0.01)


async def test_a_file_name_the_system_refuses_is_a_retry(tmp_path, clock):
    """A name with a NUL byte (relay's ids never have one) is a Retry naming the error."""
    odd = replace(EMAIL, submission_id="0193\x00sub")
    result = await FileTransport(tmp_path / "mail", clock=clock).send(odd)
    assert isinstance(result, Retry)
    assert result.error.endswith("(ValueError)")


async def test_a_leftover_temporary_file_is_replaced(tmp_path, clock):
    """A .eml.tmp left by a crash (other permissions) is removed, and the file written 0600."""
    mail = tmp_path / "mail"
    mail.mkdir()
    (mail / "0193-sub.eml.tmp").write_bytes(b"half a message")
    (mail / "0193-sub.eml.tmp").chmod(0o644)
    assert await FileTransport(mail, clock=clock).send(EMAIL) == Accepted(EMAIL.message_id)
    assert [p.name for p in mail.iterdir()] == ["0193-sub.eml"]
    assert (mail / "0193-sub.eml").stat().st_mode & 0o777 == 0o600


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


async def test_a_writing_trip_that_fails_whole_is_a_retry_for_each(tmp_path, clock, monkeypatch):
    """An error outside any one file (here the trip's own function failing) answers every
    send of the trip with a Retry naming it, rather than leaving them waiting for ever."""
    from relay.mail import eml

    def broken(*_args: object) -> None:
        raise MemoryError

    monkeypatch.setattr(eml, "_write_all", broken)
    transport = FileTransport(tmp_path / "mail", clock=clock)
    emails = [replace(EMAIL, submission_id=f"0193-{n}", message_id=f"<0193-{n}@x>") for n in "ab"]
    async with asyncio.timeout(5):
        results = await asyncio.gather(*(transport.send(email) for email in emails))
    assert [r.error for r in results if isinstance(r, Retry)] == [
        f"cannot write {tmp_path}/mail/0193-a.eml (MemoryError)",
        f"cannot write {tmp_path}/mail/0193-b.eml (MemoryError)",
    ]


async def test_a_trip_the_loop_cannot_start_is_a_retry(tmp_path, clock):
    """The loop's threads already shut down (a process ending): the send is a Retry naming
    the error, not a send that never ends."""
    from concurrent.futures import ThreadPoolExecutor

    loop = asyncio.get_running_loop()
    stopped = ThreadPoolExecutor()
    stopped.shutdown()
    loop.set_default_executor(stopped)
    try:
        async with asyncio.timeout(5):
            result = await FileTransport(tmp_path / "mail", clock=clock).send(EMAIL)
    finally:
        loop.set_default_executor(ThreadPoolExecutor())
    assert isinstance(result, Retry)
    assert result.error == f"cannot write {tmp_path}/mail/0193-sub.eml (RuntimeError)"
