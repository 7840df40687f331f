"""The agent's HTTP/1.1 client: one keep-alive asyncio connection (TLS for ``https://``),
responses parsed by httptools (MagicStack's binding of llhttp, Node.js's HTTP parser; the one
uvicorn uses) right in the protocol's ``data_received``.

Why not httpx, or h11 (httpx's parser): the agent's CPU target is <= 2 % of a core with 100
bots, and its biggest cost is the event-batch POSTs (25-30 a second under load). Measured here
per POST, same server, same loop (uvloop): httpx ~1.3 ms of CPU, h11 over asyncio streams
~0.13-0.24 ms, this client ~0.02-0.04 ms; in the agent, with caches cold between wake-ups,
each costs several times that. httpx with anyio and httpcore also added ~8 MiB of resident
memory (target <= 50 MB). Requests are written here from a fixed template (method, target,
``Host``, the fixed headers, ``Content-Length``); header values with CR or LF are refused.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Iterable
from urllib.parse import urlsplit

import httptools

__all__ = ["HttpConnection", "HttpError"]


class HttpError(OSError):
    """The request could not be completed: connection refused or lost, timeout, a reply that
    is not HTTP/1.x. The connection is closed; the next request opens a new one."""


def _header_lines(headers: Iterable[tuple[str, str]]) -> bytes:
    out = []
    for name, value in headers:
        line = f"{name}: {value}\r\n"
        if line.count("\r") != 1 or line.count("\n") != 1 or ":" in name:
            raise ValueError(f"header {name!r} holds a line break or a colon in its name")
        out.append(line)
    return "".join(out).encode("latin-1")


class _Wire(asyncio.Protocol):
    """One connection: parses responses as bytes arrive, one response at a time."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.status = 0
        self.complete = False
        self.keep_alive = False
        self.chunks: deque[bytes] = deque()
        self.error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionResetError(f"unreadable response: {exc}"))
            assert self.transport is not None
            self.transport.close()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete:
            self._fail(ConnectionResetError(f"connection closed before the response ended"
                                            f"{f': {exc}' if exc else ''}"))

    # -- httptools callbacks -----------------------------------------------------------------

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()
        self._wake()

    # -- for HttpConnection ------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Start a new exchange with the request ``data``."""
        self.status, self.complete, self.error = 0, False, None
        self.chunks.clear()
        assert self.transport is not None
        self.transport.write(data)

    async def wait(self) -> None:
        """Until something new arrived (head, body, end) or the exchange failed."""
        if self.error is not None:
            raise self.error
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, exc: Exception) -> None:
        self.error = exc
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)


class HttpConnection:
    """Requests to ``base_url`` (``http://host:port/prefix`` or ``https://...``) with fixed
    extra ``headers`` on one connection, one request at a time (concurrent callers wait their
    turn). ``timeout``: seconds for a whole :meth:`request`, or for :meth:`open` up to the
    response head. Raises ValueError for a header holding a line break.

    A request on a kept-alive connection that the server closed meanwhile (servers drop idle
    connections after a few seconds) is sent again once on a fresh connection, as browsers
    and httpx do; callers send only requests that are safe to repeat (the agent's are: batches
    carry a sequence number, announce is idempotent)."""

    def __init__(self, base_url: str, headers: dict[str, str], timeout: float = 10.0) -> None:
        url = urlsplit(base_url)
        self._https = url.scheme == "https"
        self._host = url.hostname or "127.0.0.1"
        self._port = url.port or (443 if self._https else 80)
        self._prefix = url.path.rstrip("/")
        self._fixed = _header_lines([("Host", url.netloc.rpartition("@")[2]), *headers.items()])
        self.timeout = timeout
        self._lock = asyncio.Lock()
        self._wire: _Wire | None = None
        self._streaming = False

    # -- whole requests ----------------------------------------------------------------------

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: Iterable[tuple[str, str]] = ()) -> tuple[int, bytes]:
        """Send one request and read the whole response: ``(status, body)``. A ``body`` is sent
        as JSON (``Content-Type: application/json``). Raises :class:`HttpError`."""
        async with self._lock:
            try:
                async with asyncio.timeout(self.timeout):
                    wire = await self._start(method, path, body, headers)
                    while not wire.complete:
                        await wire.wait()
            except (OSError, TimeoutError) as exc:
                self._drop()
                raise HttpError(f"{method} {path}: {exc!r}") from exc
            content = b"".join(wire.chunks)
            self._recycle()
            return wire.status, content

    # -- streamed responses (SSE) ------------------------------------------------------------

    async def open(self, method: str, path: str,
                   headers: Iterable[tuple[str, str]] = ()) -> int:
        """Send a request without a body and read the response head; returns the status. Read
        the body with :meth:`receive`; the connection stays taken (other requests wait) until
        the body ends or :meth:`close`. Raises :class:`HttpError`."""
        await self._lock.acquire()
        try:
            async with asyncio.timeout(self.timeout):
                wire = await self._start(method, path, b"", headers)
        except BaseException as exc:
            self._drop()
            self._lock.release()
            if isinstance(exc, OSError | TimeoutError):
                raise HttpError(f"{method} {path}: {exc!r}") from exc
            raise
        self._streaming = True
        return wire.status

    async def receive(self, timeout: float) -> bytes | None:
        """The next piece of the body opened by :meth:`open` (any size), or None at its end
        (the connection is then free again). ``timeout``: seconds to wait for it. Raises
        :class:`HttpError` (the connection is then closed and free)."""
        wire = self._wire
        try:
            if wire is None:
                raise ConnectionResetError("no response is open")
            async with asyncio.timeout(timeout):
                while not wire.chunks and not wire.complete:
                    await wire.wait()
        except (OSError, TimeoutError) as exc:
            self.close()
            raise HttpError(f"reading the response: {exc!r}") from exc
        if wire.chunks:
            return wire.chunks.popleft()
        self._recycle()
        self._end_stream()
        return None

    # -- the connection ----------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent); ends a response opened by :meth:`open`."""
        self._drop()
        self._end_stream()

    def _end_stream(self) -> None:
        if self._streaming:
            self._streaming = False
            self._lock.release()

    async def _connect(self) -> _Wire:
        context = ssl.create_default_context() if self._https else None
        _, wire = await asyncio.get_running_loop().create_connection(
            _Wire, self._host, self._port, ssl=context)
        self._wire = wire
        return wire

    async def _start(self, method: str, path: str, body: bytes,
                     headers: Iterable[tuple[str, str]]) -> _Wire:
        """Send the request and wait for the response head."""
        data = b"".join((
            f"{method} {self._prefix}{path} HTTP/1.1\r\n".encode("latin-1"),
            self._fixed,
            _header_lines(headers),
            b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body) if body
            else b"",
            b"\r\n",
            body,
        ))
        wire = self._wire
        reused = wire is not None and not wire.closed
        if not reused:
            self._drop()
            wire = await self._connect()
        assert wire is not None
        try:
            return await self._exchange(wire, data)
        except ConnectionError:
            if not reused or wire.status:
                raise
        self._drop()  # the server closed the idle connection: once more on a new one
        return await self._exchange(await self._connect(), data)

    @staticmethod
    async def _exchange(wire: _Wire, data: bytes) -> _Wire:
        wire.send(data)
        while not wire.status:
            await wire.wait()
        return wire

    def _recycle(self) -> None:
        """After a response ended: keep the connection if both sides allow it."""
        wire = self._wire
        if wire is not None and not (wire.keep_alive and not wire.closed):
            self._drop()

    def _drop(self) -> None:
        wire, self._wire = self._wire, None
        if wire is not None and wire.transport is not None:
            wire.transport.close()
