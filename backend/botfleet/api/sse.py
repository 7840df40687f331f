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

__all__ = ["Encode", "EncodeBatch", "Follow", "follow_stream", "resume_id", "sse_response"]

STREAM_ID = re.compile(r"^\d+-\d+$")
#: How long one XREAD waits; also how soon a stream notices a server shutdown.
BLOCK_MS = 1_000
#: Seconds a stream gets to finish after the server begins to shut down (> BLOCK_MS).
SHUTDOWN_GRACE = 3.0
#: Most entries one XREAD returns (and so the most one batch event carries).
READ_COUNT = 1_000

#: Encodes one stream entry (id, fields) as an event; None skips the entry.
Encode = Callable[[str, dict[str, str]], ServerSentEvent | None]
#: Encodes a run of stream entries (oldest first, never empty) as one event.
EncodeBatch = Callable[[list[tuple[str, dict[str, str]]]], ServerSentEvent]


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
    """An SSE stream of one Redis stream: the entries of ``key`` after ``after``, then new ones
    as they come, until the client goes away (sse-starlette cancels it) or the server shuts
    down (it then ends cleanly, so clients see a complete response and reconnect to another
    replica with ``Last-Event-ID``). ``backlog`` entries go first and ``after`` should then be
    the last of them.

    Two shapes:

    - ``encode`` (default): one event per entry, ``encode(id, fields)``. The events of one
      XREAD go out as one write (one ASGI send and socket write per XREAD, not per entry).
    - ``encode_batch``: one event per XREAD, ``encode_batch(entries)``, whose ``id`` must be
      its last entry's. After a short read (the reader is up to date) the next read waits
      ``min_interval`` seconds, so a busy stream makes at most ~1/min_interval events a
      second (10,000 lines/s: ~20 events of ~500 lines) instead of one per entry. SSE
      dispatches an event only once it is complete and sets the last event id with it, so a
      client that resumes with ``Last-Event-ID`` gets exactly the entries after the last
      batch it saw: no gap, no duplicate.
    """

    def __init__(
        self, redis: Redis, key: str, after: str, encode: Encode | None = None,
        *, backlog: list[tuple[str, dict[str, str]]] | None = None,
        encode_batch: EncodeBatch | None = None, min_interval: float = 0.0,
    ) -> None:
        if (encode is None) == (encode_batch is None):
            raise TypeError("give exactly one of encode and encode_batch")
        self.shutdown = anyio.Event()
        if encode_batch is not None:
            self.events = _follow_batches(redis, key, after, encode_batch, backlog or [], self.shutdown, min_interval)
        else:
            assert encode is not None
            self.events = _follow(redis, key, after, encode, backlog or [], self.shutdown)


def follow_stream(
    redis: Redis, key: str, after: str, encode: Encode | None = None,
    *, backlog: list[tuple[str, dict[str, str]]] | None = None,
    encode_batch: EncodeBatch | None = None, min_interval: float = 0.0,
) -> Follow:
    """See :class:`Follow`."""
    return Follow(redis, key, after, encode, backlog=backlog, encode_batch=encode_batch, min_interval=min_interval)


def _joined(entries: list[tuple[str, dict[str, str]]], encode: Encode) -> bytes:
    """The events of ``entries`` as one chunk of SSE bytes (empty when every one is skipped)."""
    out = []
    for entry_id, fields in entries:
        event = encode(entry_id, fields)
        if event is not None:
            out.append(event.encode())
    return b"".join(out)


async def _follow(
    redis: Redis, key: str, after: str, encode: Encode,
    backlog: list[tuple[str, dict[str, str]]], shutdown: anyio.Event,
) -> AsyncIterator[bytes]:
    if chunk := _joined(backlog, encode):
        yield chunk
    last = after
    while not shutdown.is_set():
        # XREAD BLOCK awaits real I/O, so a vanished client is noticed (TRAPS.md, sse-starlette).
        result = await redis.xread({key: last}, block=BLOCK_MS, count=READ_COUNT)
        for _key, entries in result or []:
            last = entries[-1][0]
            if chunk := _joined(entries, encode):
                yield chunk


async def _follow_batches(
    redis: Redis, key: str, after: str, encode: EncodeBatch,
    backlog: list[tuple[str, dict[str, str]]], shutdown: anyio.Event, min_interval: float,
) -> AsyncIterator[ServerSentEvent]:
    if backlog:
        yield encode(backlog)
    last = after
    while not shutdown.is_set():
        result = await redis.xread({key: last}, block=BLOCK_MS, count=READ_COUNT)
        read = 0
        for _key, entries in result or []:
            last, read = entries[-1][0], len(entries)
            yield encode(entries)
        if 0 < read < READ_COUNT and min_interval:
            # Up to date: let lines gather. A full read means a backlog: read on at once.
            with anyio.move_on_after(min_interval):
                await shutdown.wait()


def sse_response(stream: Follow, ping: float) -> EventSourceResponse:
    """The SSE response for ``stream``: pings every ``ping`` seconds, a clean end on shutdown."""
    headers: dict[str, Any] = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return EventSourceResponse(
        stream.events, ping=ping, headers=headers,
        shutdown_event=stream.shutdown, shutdown_grace_period=SHUTDOWN_GRACE,
    )
