"""``/api/v1/agent``: the agent protocol (:mod:`botfleet.protocol`), authenticated by the
host's agent token."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import HeaderParameter
from pydantic import TypeAdapter
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import AppStatus

from botfleet.api.sse import follow_stream, resume_id, sse_response
from botfleet.db.models import Host
from botfleet.fleet import agents, streams
from botfleet.fleet.errors import Invalid
from botfleet.protocol import COMMAND_PING, Announce, AnnounceReply, EventBatchReply
from botfleet.settings import Settings

__all__ = ["AgentController"]

_announce = TypeAdapter(Announce)
#: An upload is ended by the agent every few MiB (agent/link.py, UPLOAD_BYTES); this bounds
#: what one request may carry (litestar's default is 10 MB per request).
UPLOAD_MAX_BYTES = 256 * 2**20


def _command(entry_id: str, fields: dict[str, str]) -> ServerSentEvent:
    return ServerSentEvent(data=fields["data"], id=entry_id, event="command")


class AgentController(Controller):
    path = "/api/v1/agent"
    tags = ["agent"]
    include_in_schema = True

    async def _host(self, session: AsyncSession, agent_host: Host) -> Host:
        host = await session.get(Host, agent_host.id)
        assert host is not None
        return host

    @post("/announce", operation_id="agentAnnounce", status_code=200)
    async def announce(self, request: Request[Any, Any, Any], session: AsyncSession, redis: Redis,
                       settings: Settings, agent_host: Host) -> AnnounceReply:
        message = _announce.validate_json(await request.body())
        if message.host != agent_host.name:
            raise Invalid(f"this token belongs to host {agent_host.name!r}, not {message.host!r}", key="host")
        return await agents.announce(session, redis, settings, await self._host(session, agent_host), message)

    @post("/events", operation_id="agentEvents", status_code=200,
          request_max_body_size=UPLOAD_MAX_BYTES)
    async def events(self, request: Request[Any, Any, Any], session: AsyncSession, redis: Redis,
                     settings: Settings, agent_host: Host) -> EventBatchReply:
        """Event batches as NDJSON (one protocol.EventBatch per line), taken as they arrive
        on a long-lived chunked upload; the reply comes when the agent ends it."""
        # sse-starlette's AppStatus.should_exit turns true when uvicorn is told to exit: the
        # upload then ends at once instead of holding up the graceful shutdown.
        return await agents.take_upload(session, redis, settings, agent_host.id, request.stream(),
                                        stopping=lambda: AppStatus.should_exit)

    @get("/commands", operation_id="agentCommands")
    async def commands(self, request: Request[Any, Any, Any], session: AsyncSession, redis: Redis,
                       settings: Settings, agent_host: Host,
                       last_event_id: str | None = HeaderParameter(name="Last-Event-ID", default=None)) -> EventSourceResponse:
        """SSE of commands for this host (``event: command``, ``data`` = a protocol.Command),
        pinged every protocol.COMMAND_PING seconds (the agent's liveness check)."""
        await session.close()
        after = resume_id(last_event_id, "$")
        if after == "$":
            last = await redis.xrevrange(streams.agent_commands(agent_host.id), count=1)
            after = last[0][0] if last else "0-0"
        key = streams.agent_commands(agent_host.id)
        return sse_response(follow_stream(redis, key, after, _command), COMMAND_PING)
