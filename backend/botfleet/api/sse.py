"""Server-Sent Events from Redis streams (sse-starlette does the framing, pings and shutdown).

A stream entry's Redis id is the SSE ``id``, so a client that reconnects with
``Last-Event-ID`` resumes right after the last entry it got: no gap, no duplicate (as long as
the entry is still within the stream's retention).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from redis.asyncio import Redis
from sse_starlette import EventSourceResponse, ServerSentEvent

from botfleet.fleet.errors import Invalid

__all__ = ["follow_stream", "resume_id", "sse_response"]

STREAM_ID = re.compile(r"^\d+-\d+$")
BLOCK_MS = 5_000


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


async def follow_stream(
    redis: Redis, key: str, after: str, encode: Callable[[str, dict[str, str]], ServerSentEvent | None],
    *, backlog: list[tuple[str, dict[str, str]]] | None = None,
) -> AsyncIterator[ServerSentEvent]:
    """Yield ``encode(id, fields)`` for each entry of ``key`` after ``after``, then block for new
    ones forever (until the client goes away: sse-starlette cancels us). ``backlog`` entries are
    sent first and ``after`` should then be the last of them."""
    for entry_id, fields in backlog or []:
        event = encode(entry_id, fields)
        if event is not None:
            yield event
    last = after
    while True:
        # XREAD BLOCK awaits real I/O, so a vanished client is noticed (TRAPS.md, sse-starlette).
        result = await redis.xread({key: last}, block=BLOCK_MS, count=1000)
        for _key, entries in result or []:
            for entry_id, fields in entries:
                last = entry_id
                event = encode(entry_id, fields)
                if event is not None:
                    yield event


def sse_response(content: AsyncIterator[ServerSentEvent], ping: float) -> EventSourceResponse:
    headers: dict[str, Any] = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return EventSourceResponse(content, ping=ping, headers=headers)
