"""The agent's HTTP client against real sockets: a server that drops a kept-alive connection
(as servers do after an idle timeout), a refused connection, a streamed response, a reply
that is not HTTP, a header that would inject another."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from botfleet.agent.http import HttpConnection, HttpError
from botfleet.fleet.embedded_redis import free_port


class OneShotServer:
    """Answers one request per connection (keep-alive in its headers), then closes the
    connection: what an idle timeout does to a client's next request."""

    def __init__(self) -> None:
        self.connections = 0
        self.bodies: list[bytes] = []
        self.closed = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        self.bodies.append(await reader.readexactly(length))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 17\r\n\r\n{\"accepted\":true}")
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        self.closed.set()


@contextlib.asynccontextmanager
async def serve(handler: object) -> AsyncIterator[str]:
    port = free_port()
    server = await asyncio.start_server(handler, "127.0.0.1", port)  # type: ignore[arg-type]
    async with server:
        yield f"http://127.0.0.1:{port}"


async def test_a_request_after_the_server_dropped_the_connection_is_sent_again() -> None:
    fake = OneShotServer()
    async with serve(fake.handle) as url:
        conn = HttpConnection(url, {"Authorization": "Bearer t"}, timeout=10)
        try:
            assert await conn.request("POST", "/events", b'{"seq":1}') == (200, b'{"accepted":true}')
            await asyncio.wait_for(fake.closed.wait(), 10)
            assert await conn.request("POST", "/events", b'{"seq":2}') == (200, b'{"accepted":true}')
        finally:
            conn.close()
    assert fake.bodies == [b'{"seq":1}', b'{"seq":2}']
    assert fake.connections == 2


async def test_a_refused_connection_raises_http_error() -> None:
    conn = HttpConnection(f"http://127.0.0.1:{free_port()}", {}, timeout=10)
    with pytest.raises(HttpError, match="POST /events"):
        await conn.request("POST", "/events", b"{}")
    conn.close()


async def test_a_streamed_response_arrives_piece_by_piece_then_the_connection_is_reused() -> None:
    pieces = [b"data: one\n\n", b"data: two\n\n"]
    release = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        for piece in pieces:
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            await release.wait()
        writer.write(b"0\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")  # the next request, on the same connection
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with serve(handle) as url:
        conn = HttpConnection(url, {}, timeout=10)
        try:
            assert await conn.open("GET", "/stream", [("Accept", "text/event-stream")]) == 200
            assert await conn.receive(10) == pieces[0]  # before the server sends more
            release.set()
            assert await conn.receive(10) == pieces[1]
            assert await conn.receive(10) is None
            assert await conn.request("GET", "/next") == (204, b"")
        finally:
            conn.close()


def test_a_header_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        HttpConnection("http://127.0.0.1:1", {"Authorization": "Bearer x\r\nX-Admin: 1"})


async def test_a_reply_that_is_not_http_raises_http_error() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with serve(handle) as url:
        conn = HttpConnection(url, {}, timeout=10)
        with pytest.raises(HttpError, match="unreadable response"):
            await conn.request("POST", "/events", b"{}")
        conn.close()
