"""The agent's HTTP/1.1 client: h11 (the HTTP/1.1 state machine httpx itself is built on) over
one keep-alive asyncio connection, TLS for ``https://``.

Why not httpx: measured on a 2-core VM, an agent supervising 100 bots spends its CPU in the
event-batch POSTs (25-30 a second), where ``httpx.AsyncClient.post`` costs ~1.3 ms of CPU
against ~0.2 ms through h11; and httpx with anyio and httpcore adds ~8 MiB to the agent's
resident memory (target: <= 50 MB). The command stream (SSE) is read through
:meth:`HttpConnection.open` / :meth:`HttpConnection.receive` and :mod:`botfleet.agent.sse`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from urllib.parse import urlsplit

import h11

__all__ = ["HttpConnection", "HttpError"]

_READ = 65536


class HttpError(OSError):
    """The request could not be completed: connection refused or lost, timeout, a reply that
    is not HTTP/1.1. The connection is closed; the next request opens a new one."""


class HttpConnection:
    """Requests to ``base_url`` (``http://host:port/prefix`` or ``https://...``) with fixed
    extra ``headers`` on one connection, one request at a time (concurrent callers wait their
    turn). ``timeout``: seconds for a whole :meth:`request`, or for :meth:`open` up to the
    response head.

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
        host_header = url.netloc.rpartition("@")[2]
        self._headers = [(b"Host", host_header.encode())] + [
            (k.encode(), v.encode()) for k, v in headers.items()]
        self.timeout = timeout
        self._lock = asyncio.Lock()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._conn: h11.Connection | None = None
        self._streaming = False

    # -- whole requests ----------------------------------------------------------------------

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: Iterable[tuple[str, str]] = ()) -> tuple[int, bytes]:
        """Send one request and read the whole response: ``(status, body)``. A ``body`` is sent
        as JSON (``Content-Type: application/json``). Raises :class:`HttpError`."""
        async with self._lock:
            try:
                async with asyncio.timeout(self.timeout):
                    status = await self._start(method, path, body, headers)
                    chunks = []
                    while (chunk := await self._next_data()) is not None:
                        chunks.append(chunk)
            except (OSError, TimeoutError, h11.ProtocolError) as exc:
                await self._drop()
                raise HttpError(f"{method} {path}: {exc!r}") from exc
            await self._recycle()
            return status, b"".join(chunks)

    # -- streamed responses (SSE) ------------------------------------------------------------

    async def open(self, method: str, path: str,
                   headers: Iterable[tuple[str, str]] = ()) -> int:
        """Send a request without a body and read the response head; returns the status. Read
        the body with :meth:`receive`; the connection stays taken (other requests wait) until
        the body ends or :meth:`close`. Raises :class:`HttpError`."""
        await self._lock.acquire()
        try:
            async with asyncio.timeout(self.timeout):
                status = await self._start(method, path, b"", headers)
        except BaseException as exc:
            await self._drop()
            self._lock.release()
            if isinstance(exc, OSError | TimeoutError | h11.ProtocolError):
                raise HttpError(f"{method} {path}: {exc!r}") from exc
            raise
        self._streaming = True
        return status

    async def receive(self, timeout: float) -> bytes | None:
        """The next piece of the body opened by :meth:`open` (any size), or None at its end
        (the connection is then free again). ``timeout``: seconds to wait for it. Raises
        :class:`HttpError` (the connection is then closed and free)."""
        try:
            async with asyncio.timeout(timeout):
                chunk = await self._next_data()
        except (OSError, TimeoutError, h11.ProtocolError) as exc:
            await self.close()
            raise HttpError(f"reading the response: {exc!r}") from exc
        if chunk is None:
            await self._recycle()
            self._end_stream()
        return chunk

    # -- the connection ----------------------------------------------------------------------

    async def close(self) -> None:
        """Close the connection (idempotent); ends a response opened by :meth:`open`."""
        await self._drop()
        self._end_stream()

    def _end_stream(self) -> None:
        if self._streaming:
            self._streaming = False
            self._lock.release()

    async def _connect(self) -> None:
        context = ssl.create_default_context() if self._https else None
        self._reader, self._writer = await asyncio.open_connection(self._host, self._port,
                                                                   ssl=context)
        self._conn = h11.Connection(h11.CLIENT)

    async def _start(self, method: str, path: str, body: bytes,
                     headers: Iterable[tuple[str, str]]) -> int:
        """Send the request and read up to the response head; returns the status."""
        fields = [*self._headers, *((k.encode(), v.encode()) for k, v in headers)]
        if body:
            fields += [(b"Content-Type", b"application/json"),
                       (b"Content-Length", b"%d" % len(body))]
        request = h11.Request(method=method, target=self._prefix + path, headers=fields)
        reused = self._conn is not None
        if reused and (self._reader is None or self._reader.at_eof()
                       or self._conn.our_state is not h11.IDLE):  # type: ignore[union-attr]
            await self._drop()
            reused = False
        if not reused:
            await self._connect()
        try:
            return await self._exchange(request, body)
        except (ConnectionError, asyncio.IncompleteReadError, h11.RemoteProtocolError):
            if not reused:
                raise
        await self._drop()  # the server closed the idle connection: once more on a new one
        await self._connect()
        return await self._exchange(request, body)

    async def _exchange(self, request: h11.Request, body: bytes) -> int:
        conn, writer = self._conn, self._writer
        assert conn is not None and writer is not None
        data = conn.send(request)
        if body:
            data += conn.send(h11.Data(data=body))
        data += conn.send(h11.EndOfMessage())  # type: ignore[operator]
        writer.write(data)
        await writer.drain()
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Response):
                return event.status_code
            if isinstance(event, h11.InformationalResponse):
                continue
            raise ConnectionResetError(f"unexpected {type(event).__name__} before the response")

    async def _next_event(self) -> h11.Event | type[h11.PAUSED]:
        conn, reader = self._conn, self._reader
        assert conn is not None and reader is not None
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                if isinstance(event, h11.ConnectionClosed):
                    raise ConnectionResetError("connection closed before the response ended")
                return event  # type: ignore[return-value]
            conn.receive_data(await reader.read(_READ))

    async def _next_data(self) -> bytes | None:
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                return bytes(event.data)
            if isinstance(event, h11.EndOfMessage):
                return None

    async def _recycle(self) -> None:
        """After a response ended: keep the connection for the next request when both sides
        allow it, else close it."""
        conn = self._conn
        if conn is not None and conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        else:
            await self._drop()

    async def _drop(self) -> None:
        writer, self._writer, self._reader, self._conn = self._writer, None, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
