"""Server-Sent Events from Redis streams (sse-starlette does the framing, pings and shutdown).

A stream entry's Redis id is the SSE ``id``, so a client that reconnects with
``Last-Event-ID`` resumes right after the last entry it got: no gap, no duplicate (as long as
the entry is still within the stream's retention).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from redis.asyncio import Redis
from sse_starlette import EventSourceResponse, ServerSentEvent

from botfleet.fleet.errors import Invalid

__all__ = ["Follow", "follow_stream", "resume_id", "sse_response"]

STREAM_ID = re.compile(r"^\d+-\d+$")
#: How long one XREAD waits; also how soon a stream notices a server shutdown.
BLOCK_MS = 1_000
#: Seconds a stream gets to finish after the server begins to shut down (> BLOCK_MS).
SHUTDOWN_GRACE = 3.0


def resume_id(last_event_id: str | None, default: str) -> str:
    """The stream id to read after: the client's ``Last-Event-ID`` when given, else ``default``.

    Raises:
        Invalid: the id is not a stream id (``<ms>-<seq>``).
    """
    if not last_event_id:
        return default
    if not STREAM_ID.match(last_event_id):
        raise Invalid(f"Last-Event-ID {last_event_id!r} is not an event id of this stream", key="Last-Event-ID")
    return last_event_id


class Follow:
    """An SSE stream of one Redis stream: yields ``encode(id, fields)`` for each entry of ``key``
    after ``after``, then waits for new ones until the client goes away (sse-starlette cancels
    it) or the server shuts down (it then ends cleanly, so clients see a complete response and
    reconnect to another replica with ``Last-Event-ID``). ``backlog`` entries go first and
    ``after`` should then be the last of them."""

    def __init__(
        self, redis: Redis, key: str, after: str,
        encode: Callable[[str, dict[str, str]], ServerSentEvent | None],
        *, backlog: list[tuple[str, dict[str, str]]] | None = None,
    ) -> None:
        self.shutdown = anyio.Event()
        self.events = _follow(redis, key, after, encode, backlog or [], self.shutdown)


def follow_stream(
    redis: Redis, key: str, after: str, encode: Callable[[str, dict[str, str]], ServerSentEvent | None],
    *, backlog: list[tuple[str, dict[str, str]]] | None = None,
) -> Follow:
    """See :class:`Follow`."""
    return Follow(redis, key, after, encode, backlog=backlog)


async def _follow(
    redis: Redis, key: str, after: str, encode: Callable[[str, dict[str, str]], ServerSentEvent | None],
    backlog: list[tuple[str, dict[str, str]]], shutdown: anyio.Event,
) -> AsyncIterator[ServerSentEvent]:
    for entry_id, fields in backlog:
        event = encode(entry_id, fields)
        if event is not None:
            yield event
    last = after
    while not shutdown.is_set():
        # XREAD BLOCK awaits real I/O, so a vanished client is noticed (TRAPS.md, sse-starlette).
        result = await redis.xread({key: last}, block=BLOCK_MS, count=1000)
        for _key, entries in result or []:
            for entry_id, fields in entries:
                last = entry_id
                event = encode(entry_id, fields)
                if event is not None:
                    yield event


def sse_response(stream: Follow, ping: float) -> EventSourceResponse:
    """The SSE response for ``stream``: pings every ``ping`` seconds, a clean end on shutdown."""
    headers: dict[str, Any] = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return EventSourceResponse(
        stream.events, ping=ping, headers=headers,
        shutdown_event=stream.shutdown, shutdown_grace_period=SHUTDOWN_GRACE,
    )
