"""A lean HTTP/1.1 transport for httpx: the Mailgun sends, on kept-alive asyncio connections.

Why not httpx's own transport: for one small POST it goes through httpcore's pool (which asks
every pooled connection "are you still open?" twice per request, through anyio) and writes
the request in three socket sends. That was about 1.2 ms of CPU per Mailgun send with twenty
connections, most of what a delivery cost. Here a request is one socket write, the answer is
parsed by h11 (httpcore's own HTTP/1.1 parser) and each connection is an asyncio Protocol that
already knows whether the server closed it: about a tenth of the CPU.

What it keeps of httpx: the client above it (its default headers and timeouts, cookies, the
response and its decoding; relay.mail.mailgun lays out the request itself) and httpx's
exceptions, which relay.mail.mailgun translates by
class: ConnectError/ConnectTimeout/PoolTimeout (the request never left), WriteTimeout and
ReadTimeout, RemoteProtocolError (a connection dropped mid-exchange), UnsupportedProtocol.
TLS uses httpx's certificate store (certifi, or SSL_CERT_FILE). No HTTP/2, no proxy, no
unix socket: it is the sending client's transport and nothing else's (`open_transport`).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any

import h11
import httpx

#: An answer longer than this is not Mailgun's (a wrong RELAY_MAILGUN_BASE_URL): refused.
MAX_ANSWER = 4 * 1024 * 1024
_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]


class _Protocol(asyncio.Protocol):
    """One connection's socket side: what was received, whether it ended, who waits."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.closed = False
        self._reader: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] # a stream transport (TCP or TLS)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > MAX_ANSWER and self.transport is not None:
            self.transport.abort()  # far more than any answer, unread: not Mailgun talking
        self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._wake()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def _wake(self) -> None:
        if self._reader is not None and not self._reader.done():
            self._reader.set_result(None)

    async def receive(self) -> bytes:
        """What arrived since the last call; b"" once the server has closed."""
        if not self.buffer and not self.closed:
            self._reader = asyncio.get_running_loop().create_future()
            try:
                await self._reader
            finally:
                self._reader = None
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    def room(self) -> asyncio.Future[None] | None:
        """None while the transport takes writes; else a future done once it has room again
        (it holds more than its high-water mark)."""
        waiter = self._writable
        return None if waiter is None or waiter.done() else waiter


class _Connection:
    """One kept-alive HTTP/1.1 connection: h11's state machine over a `_Protocol`."""

    def __init__(self, protocol: _Protocol) -> None:
        assert protocol.transport is not None  # noqa: S101 - set when the connection was made
        self.transport = protocol.transport
        self.protocol = protocol
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = time.monotonic()

    def usable(self, now: float, expiry: float) -> bool:
        """Still open, nothing unasked-for received (a server that sends before closing an
        idle connection, e.g. a 408), and not idle past the keep-alive expiry."""
        protocol = self.protocol
        return (
            not protocol.closed
            and not protocol.buffer
            and not self.transport.is_closing()
            and now - self.idle_since < expiry
        )

    def close(self) -> None:
        self.transport.close()

    async def exchange(
        self, request: httpx.Request, body: bytes, timeouts: dict[str, float | None]
    ) -> httpx.Response:
        headers = [(name, value) for name, value in request.headers.raw]
        if "content-length" not in request.headers and "transfer-encoding" not in request.headers:
            headers.append((b"Content-Length", str(len(body)).encode("ascii")))
        target = request.url.raw_path
        try:
            parts = [
                self.h11.send(h11.Request(method=request.method, target=target, headers=headers))
            ]
            if body:
                parts.append(self.h11.send(h11.Data(data=body)))
            parts.append(self.h11.send(h11.EndOfMessage()))
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(str(exc), request=request) from None
        await self._write(request, b"".join(part for part in parts if part), timeouts.get("write"))
        return await self._read(request, timeouts.get("read"))

    async def _write(self, request: httpx.Request, data: bytes, within: float | None) -> None:
        self.transport.write(data)  # closed meanwhile: the read below ends in a protocol error
        room = self.protocol.room()
        if room is None:
            return  # the transport took it all (nearly always): nothing to wait for
        try:
            async with asyncio.timeout(within):
                await room
        except TimeoutError:
            raise httpx.WriteTimeout("timed out sending the request", request=request) from None

    async def _read(self, request: httpx.Request, within: float | None) -> httpx.Response:
        answer: h11.Response | None = None
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(within):
                while True:
                    event = self.h11.next_event()
                    if event is h11.NEED_DATA:
                        self.h11.receive_data(await self.protocol.receive())
                    elif isinstance(event, h11.Response):
                        answer = event
                    elif isinstance(event, h11.Data):
                        size += len(event.data)
                        if size > MAX_ANSWER:
                            msg = f"the answer is longer than {MAX_ANSWER} bytes"
                            raise httpx.RemoteProtocolError(msg, request=request)
                        chunks.append(bytes(event.data))
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    elif isinstance(event, h11.ConnectionClosed):  # pragma: no cover - h11
                        # raises RemoteProtocolError for a close mid-answer; kept so that a
                        # change there cannot turn into a loop here
                        msg = "the server closed the connection without a complete answer"
                        raise httpx.RemoteProtocolError(msg, request=request)
                    # an InformationalResponse (100 Continue) is skipped
        except TimeoutError:
            raise httpx.ReadTimeout("timed out waiting for the answer", request=request) from None
        except h11.RemoteProtocolError as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from None
        assert answer is not None  # noqa: S101 - h11 gives the Response before EndOfMessage
        return httpx.Response(
            answer.status_code,
            headers=list(answer.headers),
            stream=httpx.ByteStream(b"".join(chunks)),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": bytes(answer.reason)},
        )

    def reusable(self) -> bool:
        """After a whole exchange both sides are DONE unless either said `Connection: close`;
        bytes received past the answer (a 408 before a close) retire the connection too."""
        extra, closed = self.h11.trailing_data
        if extra or closed:
            return False
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
            self.idle_since = time.monotonic()
            return True
        return False


class Http1Transport(httpx.AsyncBaseTransport):
    """At most `max_connections` requests at once, each on a kept-alive connection of its
    origin (opened when none is idle), closed once idle for `keepalive_expiry` seconds."""

    def __init__(
        self,
        *,
        max_connections: int,
        keepalive_expiry: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._slots = asyncio.Semaphore(max_connections)
        self._max_idle = max_connections
        self._expiry = keepalive_expiry
        self._ssl = ssl_context
        self._idle: dict[Origin, list[_Connection]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in _PORTS or not url.host:
            msg = f"only http:// and https:// URLs are supported, not {url.scheme!r}"
            raise httpx.UnsupportedProtocol(msg, request=request)
        origin = (url.scheme, url.host, url.port or _PORTS[url.scheme])
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        body = await request.aread()
        try:
            if self._slots.locked():  # else acquiring cannot wait: no timer needed
                async with asyncio.timeout(timeouts.get("pool")):
                    await self._slots.acquire()
            else:
                await self._slots.acquire()
        except TimeoutError:
            msg = "timed out waiting for a free connection"
            raise httpx.PoolTimeout(msg, request=request) from None
        try:
            connection = self._take_idle(origin) or await self._connect(
                origin, timeouts.get("connect"), request
            )
            try:
                response = await connection.exchange(request, body, timeouts)
            except BaseException:
                connection.close()
                raise
            if connection.reusable():
                self._park(origin, connection)
            else:
                connection.close()
            return response
        finally:
            self._slots.release()

    def _take_idle(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to be closed
            if connection.usable(now, self._expiry):
                return connection
            connection.close()
        return None

    def _park(self, origin: Origin, connection: _Connection) -> None:
        self._idle.setdefault(origin, []).append(connection)
        if sum(len(idle) for idle in self._idle.values()) > self._max_idle:
            oldest = min(
                (idle for idle in self._idle.values() if idle), key=lambda c: c[0].idle_since
            )
            oldest.pop(0).close()

    async def _connect(
        self, origin: Origin, within: float | None, request: httpx.Request
    ) -> _Connection:
        scheme, host, port = origin
        tls: dict[str, Any] = {}
        if scheme == "https":
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
            tls = {"ssl": self._ssl, "server_hostname": host}
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(within):
                _, protocol = await loop.create_connection(_Protocol, host, port, **tls)
        except TimeoutError:
            msg = f"timed out connecting to {host}:{port}"
            raise httpx.ConnectTimeout(msg, request=request) from None
        except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
            msg = f"cannot connect to {host}:{port} ({type(exc).__name__})"
            raise httpx.ConnectError(msg, request=request) from None
        return _Connection(protocol)

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
