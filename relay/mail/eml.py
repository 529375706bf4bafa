"""FileTransport: each email as an .eml file under var/mail/, when no Mailgun key is set.

Why: `make run` must show a newcomer exactly what sales would get, without an account or a
network; any mail client opens the file. `build_mime` is the MIME message Mailgun would build
from the same fields (multipart/alternative, text first), and the tests parse it back.

The files hold personal data in clear, so they are for trials: written 0600, deleted with the
person on erasure (`remove_files`) and by the Housekeeper once older than the body bound
(`remove_expired`); production refuses this transport unless RELAY_ALLOW_FILE_TRANSPORT is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterable
from datetime import datetime
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
    message.add_alternative(email.html, subtype="html", charset="utf-8")
    return message


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_suffix(".eml.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()  # a leftover of a crash could have other permissions
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)  # a reader never sees half a file


def remove_files(mail_dir: Path, submission_ids: Iterable[str]) -> int:
    """Delete the files written for these submissions (an erasure); how many there were."""
    removed = 0
    for submission_id in submission_ids:
        for path in (mail_dir / f"{submission_id}.eml", mail_dir / f"{submission_id}.eml.tmp"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += path.suffix == ".eml"
    return removed


def remove_expired(mail_dir: Path, cutoff: datetime) -> int:
    """Delete the files last written before `cutoff` (the body bound); how many went."""
    if not mail_dir.is_dir():
        return 0
    limit = cutoff.timestamp()
    removed = 0
    for path in mail_dir.glob("*.eml*"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < limit:
                path.unlink()
                removed += 1
    return removed


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
