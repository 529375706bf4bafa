"""FileTransport: each email as an .eml file under var/mail/, when no Mailgun key is set.

Why: `make run` must show a newcomer exactly what sales would get, without an account or a
network; any mail client opens the file. `build_eml` is the message Mailgun would build from the
same fields (multipart/alternative, text first), and the tests parse it back. Its headers
are written by relay.mail.headers (7-bit, encoded by relay), never by the email package: the
package only lays out the two body parts, whose headers hold no submitted value.
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
from relay.mail.headers import HeaderError, fold, top_headers
from relay.mail.transport import Accepted, Failed, RenderedEmail, Retry, SendResult

log = logging.getLogger("relay.mail")

#: SMTP line endings; bodies in quoted-printable or base64, so the whole file is 7-bit.
BODY_POLICY = SMTP.clone(cte_type="7bit")


def build_eml(email: RenderedEmail, *, date: str | None = None) -> bytes:
    """The email as bytes: relay's own 7-bit header block, then a text and an HTML part (text
    only for `_format=plain`)."""
    body = EmailMessage(policy=BODY_POLICY)
    body.set_content(email.text, subtype="plain", charset="utf-8")
    if email.html is not None:
        body.add_alternative(email.html, subtype="html", charset="utf-8")
    head = "".join(fold(name, words) + "\r\n" for name, words in top_headers(email, date=date))
    return head.encode("ascii") + body.as_bytes()


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
        try:
            data = build_eml(email, date=format_datetime(self._clock()))
        except (HeaderError, UnicodeEncodeError):
            # render.py makes every header 7-bit; an email built elsewhere may not be.
            return Failed(None, "a header of this email is not 7-bit (not rendered by relay)")
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
