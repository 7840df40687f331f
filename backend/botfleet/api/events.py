"""``/api/v1/events``: the fleet-wide feed of persisted events (SSE) and its history."""

from __future__ import annotations

import json
from typing import Any

from litestar import Controller, Request, get
from litestar.params import HeaderParameter, Parameter
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sse_starlette import EventSourceResponse, ServerSentEvent

from botfleet.api.instances import EventOut
from botfleet.api.sse import follow_stream, resume_id, sse_response
from botfleet.db.models import Event, User
from botfleet.fleet import streams
from botfleet.fleet.events import event_payload
from botfleet.settings import Settings

__all__ = ["EventController"]


def _event(entry_id: str, fields: dict[str, str]) -> ServerSentEvent:
    data = fields["data"]
    return ServerSentEvent(data=data, id=entry_id, event=json.loads(data).get("kind", "message"))


class EventController(Controller):
    path = "/api/v1/events"
    tags = ["events"]

    @get("/", operation_id="streamEvents")
    async def stream(self, request: Request[Any, Any, Any], session: AsyncSession, redis: Redis, settings: Settings,
                     user: User, last_event_id: str | None = HeaderParameter(name="Last-Event-ID", default=None)) -> EventSourceResponse:
        """SSE of fleet events as they happen (``event`` = kind, ``data`` = the event JSON:
        instance state changes, commands, job transitions and progress, host status)."""
        await session.close()
        after = resume_id(last_event_id, "$")
        if after == "$":
            last = await redis.xrevrange(streams.EVENTS, count=1)
            after = last[0][0] if last else "0-0"
        return sse_response(follow_stream(redis, streams.EVENTS, after, _event), settings.sse_ping_interval)

    @get("/history", operation_id="listEvents")
    async def history(self, session: AsyncSession, user: User, kind: str | None = None,
                      instance_id: str | None = None, job_id: str | None = None, host_id: str | None = None,
                      before: int | None = None, limit: int = Parameter(default=100, ge=1, le=1000)) -> list[EventOut]:
        """Persisted events, newest first; filter by kind, instance, job or host."""
        query = select(Event)
        for column, value in ((Event.kind, kind), (Event.instance_id, instance_id), (Event.job_id, job_id),
                              (Event.host_id, host_id)):
            if value is not None:
                query = query.where(column == value)
        if before is not None:
            query = query.where(Event.id < before)
        rows = await session.scalars(query.order_by(Event.id.desc()).limit(limit))
        return [EventOut(**event_payload(r)) for r in rows]
