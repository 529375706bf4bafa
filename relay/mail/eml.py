"""FileTransport: each email as an .eml file under var/mail/, when no Mailgun key is set.

Why: `make run` must show a newcomer exactly what sales would get, without an account or a
network; any mail client opens the file. `build_eml` is the message Mailgun would build from the
same fields (multipart/alternative, text first), and the tests parse it back. Its headers
are written by relay.mail.headers (7-bit, encoded by relay), never by the email package, and
its two body parts are quoted-printable, so the whole file is 7-bit.

The files hold personal data in clear, so they are for trials: written 0600, deleted with the
person on erasure (`remove_files`) and by the Housekeeper once older than the body bound
(`remove_expired`); production refuses this transport unless RELAY_ALLOW_FILE_TRANSPORT is set.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import logging
import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path

from relay.clock import Clock, utcnow
from relay.mail.headers import HeaderError, fold, top_headers
from relay.mail.transport import Accepted, Failed, RenderedEmail, Retry, SendResult

log = logging.getLogger("relay.mail")

#: Between the parts. `=_` never occurs in quoted-printable text (`=` is always followed by
#: two hex digits or a line break there), so no body can contain the boundary.
BOUNDARY = "=_relay_alternative"


def _part(subtype: str, text: str) -> bytes:
    """One text part: UTF-8, quoted-printable (7-bit, lines of at most 76), CRLF line ends."""
    lines = text.encode("utf-8").splitlines()
    body = binascii.b2a_qp(b"\r\n".join(lines) + b"\r\n", istext=True)
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode("ascii") + body


def build_eml(email: RenderedEmail, *, date: str | None = None) -> bytes:
    """The email as bytes: relay's own 7-bit header block, then a text and an HTML part (text
    only for `_format=plain`).

    Laid out by hand rather than by the email package (about 1.4 ms a message there, for a
    layout that never changes): both parts quoted-printable, the HTML one after the text one.
    The tests parse the result back with the email package.
    """
    head = "".join(fold(name, words) + "\r\n" for name, words in top_headers(email, date=date))
    head += "MIME-Version: 1.0\r\n"
    if email.html is None:
        return head.encode("ascii") + _part("plain", email.text)
    head += f'Content-Type: multipart/alternative;\r\n boundary="{BOUNDARY}"\r\n\r\n'
    return b"".join(
        (
            head.encode("ascii"),
            f"--{BOUNDARY}\r\n".encode("ascii"),
            _part("plain", email.text),
            f"\r\n--{BOUNDARY}\r\n".encode("ascii"),
            _part("html", email.html),
            f"\r\n--{BOUNDARY}--\r\n".encode("ascii"),
        )
    )


_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL


def _write(path: Path, data: bytes) -> None:
    temporary = path.with_suffix(".eml.tmp")
    try:
        fd = os.open(temporary, _FLAGS, 0o600)
    except FileExistsError:  # a leftover of a crash could have other permissions
        temporary.unlink()
        fd = os.open(temporary, _FLAGS, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    os.replace(temporary, path)  # a reader never sees half a file


def _write_all(folder: Path, files: list[tuple[Path, bytes]]) -> list[Exception | None]:
    """Write each file (in one thread hop for the lot); per file, the error or None."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        return [exc] * len(files)
    errors: list[Exception | None] = []
    for path, data in files:
        try:
            _write(path, data)
        except (OSError, ValueError) as exc:  # ValueError: a name the system refuses (NUL)
            errors.append(exc)
        else:
            errors.append(None)
    return errors


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
    """Writes `<mail_dir>/<submission-id>.eml` and logs its path; accepted once written.

    The files of the sends that reach the disk in the same turn of the event loop (the
    dispatcher starts its claimed rows together) are written in one trip to a worker thread:
    a trip costs more CPU than writing a file."""

    def __init__(self, mail_dir: Path, *, clock: Clock = utcnow) -> None:
        self.mail_dir = mail_dir
        self._clock = clock
        self._queued: list[tuple[Path, bytes, asyncio.Future[Exception | None]]] = []

    async def send(self, email: RenderedEmail) -> SendResult:
        path = self.mail_dir / f"{email.submission_id}.eml"
        try:
            data = build_eml(email, date=format_datetime(self._clock()))
        except (HeaderError, UnicodeEncodeError):
            # render.py makes every header 7-bit; an email built elsewhere may not be.
            return Failed(None, "a header of this email is not 7-bit (not rendered by relay)")
        error = await self._written(path, data)
        if error is not None:
            # Disk full or a read-only folder: the row stays queued and is tried again.
            return Retry(None, None, f"cannot write {path} ({type(error).__name__})")
        log.info(
            "email written to a file (no RELAY_MAILGUN_API_KEY set)",
            extra={"submission_id": email.submission_id, "path": str(path)},
        )
        return Accepted(email.message_id)

    async def _written(self, path: Path, data: bytes) -> Exception | None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Exception | None] = loop.create_future()
        if not self._queued:
            loop.call_soon(self._flush)  # once this turn's other sends have queued theirs
        self._queued.append((path, data, future))
        return await future

    def _flush(self) -> None:
        """Write the queued files in one trip; each send gets its file's error or None, and
        a trip that fails as a whole (the loop's threads shut down) is an error for each."""
        batch, self._queued = self._queued, []
        files = [(path, data) for path, data, _ in batch]

        def settle(errors: Sequence[Exception | None]) -> None:
            for (_, _, future), error in zip(batch, errors, strict=True):
                if not future.done():  # a send cancelled at stop: its file is written anyway
                    future.set_result(error)

        def trip_done(done: asyncio.Future[list[Exception | None]]) -> None:
            try:
                errors: Sequence[Exception | None] = done.result()  # one answer per file
            except Exception as exc:  # noqa: BLE001 - the trip itself failed: each one retries
                errors = [exc] * len(batch)
            settle(errors)

        loop = asyncio.get_running_loop()
        try:
            written = loop.run_in_executor(None, _write_all, self.mail_dir, files)
        except RuntimeError as exc:  # "cannot schedule new futures after shutdown"
            settle([exc] * len(batch))
            return
        written.add_done_callback(trip_done)
