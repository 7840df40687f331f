"""The agent's SSE decoder against the WHATWG rules ("Interpreting an event stream")."""

from __future__ import annotations

from botfleet.agent.sse import ServerSentEvent, SSEDecoder

STREAM = (
    "\ufeff: ping 2026-08-22\r\n"
    "\r\n"
    "event: command\r\n"
    "id: 1-0\r\n"
    'data: {"kind":"sync",\r\n'
    'data:"instances":[]}\r\n'
    "\r\n"
    "id: 2-0\rdata: ünïcödé €\r\r"
    "data\n"
    "\n"
    "retry: 3000\n"
    "event: command\n"
    "data: last\n"
    "\n"
    "data: never finished\n"
).encode()

EXPECTED = [
    ServerSentEvent("command", '{"kind":"sync",\n"instances":[]}', "1-0"),
    ServerSentEvent("message", "ünïcödé €", "2-0"),
    ServerSentEvent("message", "", "2-0"),
    ServerSentEvent("command", "last", "2-0", retry=3000),
]


def test_events_whole_stream() -> None:
    assert SSEDecoder().feed(STREAM) == EXPECTED


def test_events_split_at_every_byte_are_the_same() -> None:
    """Chunks may split a CRLF or a UTF-8 character: the result must not change."""
    decoder = SSEDecoder()
    got = [event for i in range(len(STREAM)) for event in decoder.feed(STREAM[i : i + 1])]
    assert got == EXPECTED


def test_comments_alone_dispatch_nothing() -> None:
    assert SSEDecoder().feed(b": ping\n\n: ping\n\n") == []
