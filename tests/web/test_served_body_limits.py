"""The body limits on the wire, against a real `relay serve`: a body over the form's
max_body_bytes, or slower than RELAY_BODY_TIMEOUT_SECONDS, is answered while the client is still
sending it, and the server then closes the connection rather than reading the rest.

TestClient cannot show this: it reads a streamed body whole before the app sees any of it. So
these tests speak HTTP/1.1 over a raw socket, one chunk at a time.
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import FORMS_TOML
from tests.instances import Proc, relay_env

pytestmark = pytest.mark.slow

CHUNK = 1024
LIMIT = 4096  # the quote form's max_body_bytes (tests/conftest.py)
CHUNKS = 64  # the whole body: 16 times the limit


@pytest.fixture(name="served", scope="module")
def fixture_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One `relay serve` on a port the kernel chose, with a one-second body deadline."""
    tmp_path = tmp_path_factory.mktemp("served")
    (tmp_path / "forms.toml").write_text(FORMS_TOML, encoding="utf-8")
    env = relay_env(tmp_path, "serve", dispatch_in_serve="false", body_timeout_seconds="1")
    proc = Proc("serve", ["serve", "--port", "0"], env, tmp_path)
    try:
        yield proc.url()
    finally:
        proc.stop()


def _open(url: str) -> socket.socket:
    """A connection that has sent the head of a chunked JSON post to the quote form."""
    port = int(url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    head = (
        "POST /f/quote HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json\r\n"
        "Accept: application/json\r\n"
        "Accept-Language: en\r\n"
        "Origin: https://www.example.com\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    sock.sendall(head.encode("ascii"))
    return sock


def _answered(sock: socket.socket, seconds: float) -> bool:
    return bool(select.select([sock], [], [], seconds)[0])


def _rest(sock: socket.socket) -> tuple[bytes, bool]:
    """Everything the server still sends, and whether it then closed the connection."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        return received, True
    except TimeoutError:
        return received, False
    return received, True


def _parse(answer: bytes) -> tuple[str, dict[str, str], dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines)
    return status, headers, json.loads(body)


def test_a_streamed_body_over_the_limit_is_cut_off_with_413(served):
    """A chunked body sent a kilobyte at a time is answered 413 BODY_TOO_LARGE once it passes
    the form's 4096 bytes, while most of it is still unsent, and the server closes the
    connection instead of reading the rest; the refusal is counted."""
    sock = _open(served)
    sent = 0
    with sock:
        while sent < CHUNKS and not _answered(sock, 0.1):
            sock.sendall(b"%x\r\n%s\r\n" % (CHUNK, b"x" * CHUNK))
            sent += 1
        answer, closed = _rest(sock)
    status, headers, body = _parse(answer)
    assert status == "HTTP/1.1 413 Request Entity Too Large"
    assert body["errors"] == [
        {
            "code": "BODY_TOO_LARGE",
            "message": "The form is larger than this form accepts (4096 bytes).",
        }
    ]
    assert headers["connection"] == "close"
    assert closed
    # the fifth kilobyte passes the limit; a loaded machine may take a few more to answer
    assert LIMIT // CHUNK < sent <= CHUNKS // 4
    metric = 'relay_submissions_total{form="quote",outcome="body_too_large"} 1.0'
    assert metric in httpx.get(f"{served}/metrics").text


def test_a_body_still_arriving_after_the_deadline_is_cut_off_with_408(served):
    """A body trickling in a byte every 0.1 s gets 408 BODY_TIMEOUT after the one-second
    deadline, and the server closes the connection though the client keeps sending."""
    sock = _open(served)
    started = time.monotonic()
    with sock:
        while not _answered(sock, 0.1):
            sock.sendall(b"1\r\nx\r\n")
            assert time.monotonic() - started < 5, "no answer within 5 s"
        waited = time.monotonic() - started
        answer, closed = _rest(sock)
    status, headers, body = _parse(answer)
    assert status == "HTTP/1.1 408 Request Timeout"
    assert body["errors"] == [
        {"code": "BODY_TIMEOUT", "message": "The form was not received within 1 seconds."}
    ]
    assert headers["connection"] == "close"
    assert closed
    assert 1 <= waited < 3
