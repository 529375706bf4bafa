"""FileTransport: each email as an .eml file under var/mail/, when no Mailgun key is set.

Why: `make run` must show a newcomer exactly what sales would get, without an account or a
network; any mail client opens the file. `build_mime` is the MIME message Mailgun would build
from the same fields (multipart/alternative, text first), and the tests parse it back.
"""

from __future__ import annotations

import asyncio
import logging
import os
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path

from relay.clock import Clock, utcnow
from relay.mail.transport import Accepted, RenderedEmail, Retry, SendResult

log = logging.getLogger("relay.mail")

#: SMTP line endings, and UTF-8 headers allowed (internationalised addresses need it).
POLICY = SMTP.clone(utf8=True)


def build_mime(email: RenderedEmail, *, date: str | None = None) -> EmailMessage:
    """The email as a MIME message: headers, then a text and an HTML alternative."""
    message = EmailMessage(policy=POLICY)
    message["From"] = email.sender
    message["To"] = ", ".join(email.to)
    message["Reply-To"] = email.reply_to
    message["Subject"] = email.subject
    message["Message-ID"] = email.message_id
    if date is not None:
        message["Date"] = date
    message["X-Relay-Submission-Id"] = email.submission_id
    message.set_content(email.text, subtype="plain", charset="utf-8")
    if email.html is not None:  # issue 10: _format=plain sends text only
        message.add_alternative(email.html, subtype="html", charset="utf-8")
    return message


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".eml.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)  # a reader never sees half a file


class FileTransport:
    """Writes `<mail_dir>/<submission-id>.eml` and logs its path; accepted once written."""

    def __init__(self, mail_dir: Path, *, clock: Clock = utcnow) -> None:
        self.mail_dir = mail_dir
        self._clock = clock

    async def send(self, email: RenderedEmail) -> SendResult:
        path = self.mail_dir / f"{email.submission_id}.eml"
        data = build_mime(email, date=format_datetime(self._clock())).as_bytes()
        try:
            await asyncio.to_thread(_write, path, data)
        except OSError as exc:
            # Disk full or a read-only folder: the row stays queued and is tried again.
            return Retry(None, None, f"cannot write {path} ({type(exc).__name__})")
        log.info(
            "email written to a file (no RELAY_MAILGUN_API_KEY set)",
            extra={"submission_id": email.submission_id, "path": str(path)},
        )
        return Accepted(email.message_id)
