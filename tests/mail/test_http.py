"""relay.mail.http: the sending client's HTTP/1.1 transport, against real local servers.

The servers are asyncio servers on 127.0.0.1 (plain, and TLS with a certificate made here),
each answering as scripted: keep-alive, `Connection: close`, chunked and gzip answers, a
server that closes idle connections, one that hangs, one that hangs up mid-answer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from relay.mail.http import MAX_ANSWER, Http1Transport
from relay.mail.mailgun import MailgunTransport
from relay.mail.transport import Accepted, Retry
from tests.browser_support import reserved_port
from tests.mail.test_mailgun import EMAIL

pytestmark = pytest.mark.anyio

OK = b'{"id": "<x@mg.example.com>", "message": "Queued. Thank you."}'
Handler = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]


def answer(status: int, body: bytes, *headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def reply_ok(_request: bytes, writer: asyncio.StreamWriter) -> bool:
    writer.write(answer(200, OK, "Content-Type: application/json"))
    return True


class Server:
    """Reads whole requests (headers and Content-Length body) and lets `handler` answer;
    the handler returns whether to keep the connection open."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[bytes] = []
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                keep = await self.handler(request, writer)
                await writer.drain()
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def running(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[Any]:
    server = Server(handler)
    listener = await asyncio.start_server(server.serve, "127.0.0.1", 0, ssl=tls)
    port = listener.sockets[0].getsockname()[1]
    server.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/v3/mg.example.com/messages"  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        for writer in server.writers:
            writer.close()
        listener.close()


def client(transport: Http1Transport, timeout: float = 5.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport, timeout=timeout)


async def test_requests_share_one_kept_alive_connection_and_arrive_whole():
    """Two sends in a row use one connection; each request (headers, multipart body with its
    Content-Length, Basic auth) reaches the server whole, and the JSON answer is read."""
    async with running(reply_ok) as server, client(Http1Transport(max_connections=2)) as http:
        for _ in range(2):
            response = await http.post(
                server.url, files={"text": (None, b"Bonjour")}, auth=("api", "key")
            )
            assert response.status_code == 200
            assert response.json()["id"] == "<x@mg.example.com>"
    assert server.connections == 1
    assert len(server.requests) == 2
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    assert b"POST /v3/mg.example.com/messages HTTP/1.1" in head
    assert b"Authorization: Basic YXBpOmtleQ==" in head.replace(b"authorization", b"Authorization")
    assert b'name="text"\r\n\r\nBonjour\r\n' in body


async def test_chunked_and_gzip_answers_are_decoded():
    """A chunked, gzip-compressed answer reads as its JSON."""

    async def chunked(_request: bytes, writer: asyncio.StreamWriter) -> bool:
        data = gzip.compress(OK)
        half = len(data) // 2
        chunks = b"".join(
            f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in (data[:half], data[half:])
        )
        head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"
        writer.write(head.encode() + chunks + b"0\r\n\r\n")
        return True

    async with running(chunked) as server, client(Http1Transport(max_connections=1)) as http:
        response = await http.post(server.url, content=b"x")
    assert response.json()["message"] == "Queued. Thank you."


async def test_connection_close_and_idle_closes_open_a_fresh_connection():
    """After `Connection: close`, or once the server has closed an idle connection, the next
    request opens a new connection instead of failing on the dead one."""
    calls = 0

    async def closing(_request: bytes, writer: asyncio.StreamWriter) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            writer.write(answer(200, OK, "Connection: close"))
            return False
        writer.write(answer(200, OK))
        return calls != 2  # the second is answered, then its connection dropped while idle

    async with running(closing) as server, client(Http1Transport(max_connections=1)) as http:
        for _ in range(3):
            assert (await http.post(server.url, content=b"x")).status_code == 200
            await asyncio.sleep(0.05)  # the close reaches the client while it is idle
    assert server.connections == 3


async def test_an_idle_connection_past_its_expiry_is_not_reused():
    """Kept-alive connections older than keepalive_expiry are closed, not used."""
    transport = Http1Transport(max_connections=1, keepalive_expiry=0.01)
    async with running(reply_ok) as server, client(transport) as http:
        await http.post(server.url, content=b"x")
        await asyncio.sleep(0.05)
        await http.post(server.url, content=b"x")
    assert server.connections == 2


async def test_unasked_for_bytes_on_an_idle_connection_retire_it():
    """A server that writes on an idle connection (a 408 before it closes) gets a new
    connection for the next request, not a misread answer."""

    async def stray(_request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(200, OK) + answer(408, b""))
        return True

    async with running(stray) as server, client(Http1Transport(max_connections=1)) as http:
        assert (await http.post(server.url, content=b"x")).status_code == 200
        await asyncio.sleep(0.05)
        assert (await http.post(server.url, content=b"x")).status_code == 200
    assert server.connections == 2


async def test_a_server_that_hangs_is_a_read_timeout_and_an_ambiguous_retry():
    """No answer in time: httpx.ReadTimeout, which MailgunTransport sends again later as
    ambiguous (the message may have arrived)."""

    async def hang(_request: bytes, _writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(5)
        return False

    async with running(hang) as server, client(Http1Transport(max_connections=1), 0.1) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(server.url, content=b"x")
        mailgun = MailgunTransport(
            http, api_key="key", domain="mg.example.com", base_url=server.url.split("/v3")[0]
        )
        result = await mailgun.send(EMAIL)
    assert isinstance(result, Retry)
    assert result.ambiguous


async def test_a_hang_up_mid_answer_is_a_protocol_error():
    """The server closes before the answer is complete: RemoteProtocolError (ambiguous)."""

    async def half(_request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(200, OK)[:-10])
        return False

    async with running(half) as server, client(Http1Transport(max_connections=1)) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post(server.url, content=b"x")


async def test_garbage_and_oversized_answers_are_protocol_errors():
    """An answer that is not HTTP, or longer than MAX_ANSWER, is refused as a protocol error."""

    async def garbage(_request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"SMTP ready\r\n\r\n")
        return True

    async def huge(_request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {MAX_ANSWER + 1}\r\n\r\n".encode())
        writer.write(b"x" * (MAX_ANSWER + 1))
        return True

    for handler in (garbage, huge):
        async with running(handler) as server, client(Http1Transport(max_connections=1)) as http:
            with pytest.raises(httpx.RemoteProtocolError):
                await http.post(server.url, content=b"x")


async def test_a_refused_connection_is_a_connect_error_and_a_plain_retry():
    """Nothing listening: ConnectError; MailgunTransport retries it as not ambiguous."""
    url = f"http://127.0.0.1:{reserved_port()}"
    async with client(Http1Transport(max_connections=1)) as http:
        with pytest.raises(httpx.ConnectError):
            await http.post(url, content=b"x")
        mailgun = MailgunTransport(http, api_key="key", domain="mg.example.com", base_url=url)
        result = await mailgun.send(EMAIL)
    assert result == Retry(None, None, "cannot connect to Mailgun (ConnectError)")


async def test_a_connect_that_does_not_finish_in_time_is_a_connect_timeout():
    """A TLS handshake that never completes (the server never answers it): ConnectTimeout."""

    async def silent(_reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    timeout = httpx.Timeout(5.0, connect=0.1)
    try:
        async with httpx.AsyncClient(
            transport=Http1Transport(max_connections=1), timeout=timeout
        ) as http:
            with pytest.raises(httpx.ConnectTimeout):
                await http.post(f"https://127.0.0.1:{port}/", content=b"x")
    finally:
        listener.close()


async def test_requests_beyond_max_connections_wait_for_a_free_one():
    """With one connection, a second request waits its turn (PoolTimeout if it waits too
    long); the server never sees two connections."""
    gate = asyncio.Event()

    async def slow(_request: bytes, writer: asyncio.StreamWriter) -> bool:
        await gate.wait()
        writer.write(answer(200, OK))
        return True

    async with running(slow) as server:
        transport = Http1Transport(max_connections=1)
        timeout = httpx.Timeout(5.0, pool=0.05)
        async with httpx.AsyncClient(transport=transport, timeout=timeout) as http:
            first = asyncio.create_task(http.post(server.url, content=b"1"))
            await asyncio.sleep(0.05)
            with pytest.raises(httpx.PoolTimeout):
                await http.post(server.url, content=b"2")
            waiting = asyncio.create_task(
                http.post(server.url, content=b"3", timeout=httpx.Timeout(5.0))
            )
            await asyncio.sleep(0.05)
            gate.set()
            assert [(await first).status_code, (await waiting).status_code] == [200, 200]
    assert server.connections == 1


async def test_only_http_and_https_urls_are_sent():
    """Another scheme is UnsupportedProtocol, before any connection."""
    transport = Http1Transport(max_connections=1)
    request = httpx.Request("POST", "ftp://127.0.0.1/x", content=b"x")
    with pytest.raises(httpx.UnsupportedProtocol):
        await transport.handle_async_request(request)


async def test_https_with_a_trusted_certificate(tmp_path):
    """Over TLS (the certificate checked against the given trust store, for 127.0.0.1) the
    exchange is the same; an untrusted certificate is a ConnectError."""
    server_tls, trusted = _tls_pair(tmp_path)
    async with running(reply_ok, tls=server_tls) as server:
        async with client(Http1Transport(max_connections=1, ssl_context=trusted)) as http:
            assert (await http.post(server.url, content=b"x")).json()["id"]
        async with client(Http1Transport(max_connections=1)) as http:  # the default store
            with pytest.raises(httpx.ConnectError):
                await http.post(server.url, content=b"x")


async def test_a_cancelled_request_closes_its_connection():
    """A send cancelled mid-exchange (dispatcher stop) does not leave its connection in the
    pool half-read: the next request gets a fresh one and its own answer."""
    calls = 0

    async def first_slow(_request: bytes, writer: asyncio.StreamWriter) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(0.2)
        writer.write(answer(200, OK))
        return True

    async with running(first_slow) as server, client(Http1Transport(max_connections=1)) as http:
        task = asyncio.create_task(http.post(server.url, content=b"x"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await http.post(server.url, content=b"y")).status_code == 200
    assert server.connections == 2


async def test_a_server_that_does_not_read_is_a_write_timeout_and_large_bodies_go_whole():
    """A request body the server never reads ends in WriteTimeout (the socket buffers fill
    up); a server that reads gets a body of many megabytes whole."""

    async def deaf(_reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    big = b"x" * (16 * 1024 * 1024)
    listener = await asyncio.start_server(deaf, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        async with client(Http1Transport(max_connections=1), 0.2) as http:
            with pytest.raises(httpx.WriteTimeout):
                await http.post(f"http://127.0.0.1:{port}/", content=big)
    finally:
        listener.close()
    async with running(reply_ok) as server, client(Http1Transport(max_connections=1)) as http:
        assert (await http.post(server.url, content=big)).status_code == 200
    assert server.requests[0].endswith(big)


async def test_a_hang_up_while_the_body_is_sent_is_a_protocol_error_at_once():
    """A server that stops reading and drops the connection mid-body: RemoteProtocolError
    as soon as the connection is gone, not after the write timeout."""

    async def drop(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.2)
        writer.transport.abort()

    listener = await asyncio.start_server(drop, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    started = asyncio.get_running_loop().time()
    try:
        async with client(Http1Transport(max_connections=1), 30.0) as http:
            with pytest.raises(httpx.RemoteProtocolError):
                await http.post(f"http://127.0.0.1:{port}/", content=b"x" * (32 * 1024 * 1024))
    finally:
        listener.close()
    assert asyncio.get_running_loop().time() - started < 10


async def test_a_request_without_a_body_and_a_header_h11_refuses():
    """A GET goes out with `Content-Length: 0`; a header value with a NUL byte never leaves
    (LocalProtocolError) and its connection is not kept."""
    async with running(reply_ok) as server, client(Http1Transport(max_connections=1)) as http:
        assert (await http.get(server.url)).status_code == 200
        with pytest.raises(httpx.LocalProtocolError):
            await http.get(server.url, headers={"X-Test": "a\x00b"})
        assert (await http.get(server.url)).status_code == 200
    assert b"Content-Length: 0" in server.requests[0]
    assert len(server.requests) == 2


async def test_a_close_without_any_answer_is_a_protocol_error():
    """The server reads the request and hangs up: RemoteProtocolError (ambiguous)."""

    async def hang_up(_request: bytes, _writer: asyncio.StreamWriter) -> bool:
        return False

    async with running(hang_up) as server, client(Http1Transport(max_connections=1)) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post(server.url, content=b"x")


async def test_idle_connections_are_bounded_across_origins():
    """At most max_connections idle connections are kept, whatever the origins: the oldest
    is closed first."""
    transport = Http1Transport(max_connections=1)
    async with running(reply_ok) as one, running(reply_ok) as two, client(transport) as http:
        for url in (one.url, two.url, one.url):
            assert (await http.post(url, content=b"x")).status_code == 200
    assert (one.connections, two.connections) == (2, 1)


async def test_a_flood_on_an_idle_connection_is_cut_off():
    """Megabytes nobody asked for on an idle connection are not buffered: the connection is
    dropped and the next request gets a new one."""

    async def flood(_request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(200, OK))
        await writer.drain()
        await asyncio.sleep(0.05)  # the answer has been read; the connection is idle
        writer.write(b"z" * (MAX_ANSWER + 1024 * 1024))
        return True

    async with running(flood) as server, client(Http1Transport(max_connections=1)) as http:
        assert (await http.post(server.url, content=b"x")).status_code == 200
        await asyncio.sleep(0.2)
        assert (await http.post(server.url, content=b"x")).status_code == 200
    assert server.connections == 2


def _tls_pair(folder: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1: the server's context and a client's trusting it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    trusting = ssl.create_default_context(cafile=str(cert_file))
    return server, trusting


async def test_successful_send_through_mailgun_transport():
    """MailgunTransport over this transport: 200 with an id is Accepted."""
    async with running(reply_ok) as server, client(Http1Transport(max_connections=1)) as http:
        mailgun = MailgunTransport(
            http, api_key="key", domain="mg.example.com", base_url=server.url.split("/v3")[0]
        )
        assert await mailgun.send(EMAIL) == Accepted("<x@mg.example.com>")
