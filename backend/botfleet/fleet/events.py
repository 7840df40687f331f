"""Recording events: one row in SQL (history) and one entry in Redis streams (live feeds).

Used by the api, the agent endpoints and the job worker alike.
"""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from sqlalchemy.ext.asyncio import AsyncSession

from botfleet.db.models import Event, utcnow
from botfleet.fleet import streams

__all__ = ["event_payload", "publish_event", "publish_events", "queue_events", "record_event"]


def event_payload(event: Event) -> dict[str, Any]:
    """The JSON shape of an event in the API and on every stream."""
    return {
        "id": event.id,
        "time": event.time.isoformat(),
        "kind": event.kind,
        "host_id": event.host_id,
        "instance_id": event.instance_id,
        "job_id": event.job_id,
        "data": event.data,
    }


async def record_event(
    session: AsyncSession,
    *,
    kind: str,
    data: dict[str, Any] | None = None,
    host_id: str | None = None,
    instance_id: str | None = None,
    job_id: str | None = None,
) -> Event:
    """Add an event row and flush it (so it has its id). The caller commits, then calls
    :func:`publish_event` so that nothing is streamed that was rolled back."""
    event = Event(
        time=utcnow(),
        kind=kind,
        host_id=host_id,
        instance_id=instance_id,
        job_id=job_id,
        data=data or {},
    )
    session.add(event)
    await session.flush()
    return event


async def publish_event(redis: Redis, event: Event, *, maxlen: int = 100_000) -> None:
    """Append a committed event to the fleet-wide stream (and its job's stream)."""
    await publish_events(redis, [event], maxlen=maxlen)


async def publish_events(redis: Redis, events: list[Event], *, maxlen: int = 100_000) -> None:
    """Append committed events, in order, in one round trip."""
    if not events:
        return
    async with redis.pipeline(transaction=False) as pipe:
        queue_events(pipe, events, maxlen=maxlen)
        await pipe.execute()


def queue_events(pipe: Pipeline, events: list[Event], *, maxlen: int = 100_000) -> None:
    """Add the appends of :func:`publish_events` to ``pipe`` (the caller executes it, after
    the commit), so that they share a round trip with the caller's other commands."""
    for event in events:
        data = json.dumps(event_payload(event))
        pipe.xadd(streams.EVENTS, {"data": data}, maxlen=maxlen, approximate=True)
        if event.job_id:
            pipe.xadd(streams.job_events(event.job_id), {"data": data}, maxlen=10_000, approximate=True)
