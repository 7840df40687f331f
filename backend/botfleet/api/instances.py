"""``/api/v1/instances``: CRUD, start/stop/restart, config versions, logs (SSE and ranges),
an instance's events. Controllers only translate HTTP to :mod:`botfleet.fleet.instances`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from litestar import Controller, Request, delete, get, patch, post, put
from litestar.params import HeaderParameter, Parameter, QueryParameter
from pydantic import BaseModel, Field
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sse_starlette import EventSourceResponse, ServerSentEvent

from botfleet.api.sse import follow_stream, resume_id, sse_response
from botfleet.db.models import ConfigVersion, Event, Instance, User
from botfleet.fleet import instances as service
from botfleet.fleet import placement, streams
from botfleet.fleet.configs import config_diff
from botfleet.fleet.errors import NotFound
from botfleet.fleet.events import event_payload
from botfleet.protocol import Autorestart, DesiredState
from botfleet.settings import Settings

__all__ = ["InstanceController"]


class Supervision(BaseModel):
    autorestart: Autorestart | None = None
    exitcodes: list[int] | None = None
    startsecs: float | None = Field(default=None, ge=0)
    startretries: int | None = Field(default=None, ge=0)
    backoff_initial: float | None = Field(default=None, ge=0)
    backoff_max: float | None = Field(default=None, ge=0)
    backoff_reset_after: float | None = Field(default=None, ge=0)

    def given(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class InstanceCreate(BaseModel):
    name: str
    profile: str
    host: str = "local"
    config: dict[str, Any] | None = None
    config_text: str | None = Field(default=None, description="JSON or HJSON text of the config.")
    simulated: bool = Field(default=False, description="Run the passivbot stand-in instead of passivbot.")
    argv: list[str] | None = Field(default=None, description="custom profile only; {config} = config path.")
    labels: dict[str, str] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    supervision: Supervision = Field(default_factory=Supervision)


class InstanceUpdate(BaseModel):
    labels: dict[str, str] | None = None
    env: dict[str, str] | None = None
    supervision: Supervision | None = None
    argv: list[str] | None = None


class InstanceOut(BaseModel):
    id: str
    name: str
    host_id: str
    profile: str
    simulated: bool
    argv: list[str] | None
    labels: dict[str, Any]
    env: dict[str, Any]
    supervision: dict[str, Any]
    desired_state: str
    generation: int
    config_version: int
    state: str
    pid: int | None
    started_at: datetime | None
    uptime: float | None = Field(description="Seconds since the process started, while it runs.")
    state_changed_at: datetime | None
    state_reason: str
    restart_count: int
    exit_code: int | None
    exit_signal: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Instance) -> InstanceOut:
        data = {k: getattr(row, k) for k in cls.model_fields if k != "uptime"}
        running = row.state in ("STARTING", "RUNNING", "STOPPING") and row.started_at is not None
        uptime = (datetime.now(row.started_at.tzinfo) - row.started_at).total_seconds() if running and row.started_at else None
        return cls(**data, uptime=uptime)


class InstancePage(BaseModel):
    items: list[InstanceOut]
    total: int
    limit: int
    offset: int


class ConfigIn(BaseModel):
    config: dict[str, Any] | None = None
    config_text: str | None = None
    comment: str = ""


class ConfigOut(BaseModel):
    version: int
    document: dict[str, Any]
    source: str
    comment: str
    created_at: datetime

    @classmethod
    def of(cls, row: ConfigVersion) -> ConfigOut:
        return cls(version=row.version, document=row.document, source=row.source, comment=row.comment,
                   created_at=row.created_at)


class LogLine(BaseModel):
    id: str
    seq: int
    line: str


class LogPage(BaseModel):
    items: list[LogLine] = Field(description="Oldest first.")
    next_before: str | None = Field(description="Pass as ?before= for the page before this one.")


class EventOut(BaseModel):
    id: int
    time: datetime
    kind: str
    host_id: str | None
    instance_id: str | None
    job_id: str | None
    data: dict[str, Any]


class MoveIn(BaseModel):
    host: str = Field(description="Target host (name or id).")
    force: bool = Field(default=False, description="Override for a lost (offline) old host.")


class BulkIn(BaseModel):
    action: str = Field(description="start | stop | restart")
    ids: list[str] = Field(description="Instance ids or names (1-1000).")


#: Seconds a batched log stream lets lines gather between events while it is up to date.
LOG_BATCH_INTERVAL = 0.05


def _log_event(entry_id: str, fields: dict[str, str]) -> ServerSentEvent:
    return ServerSentEvent(data=fields.get("line", ""), id=entry_id, event="log")


def _log_batch(entries: list[tuple[str, dict[str, str]]]) -> ServerSentEvent:
    """``event: logs``: ``data`` = JSON ``[[id, line], ...]`` (oldest first), ``id`` = the last."""
    data = json.dumps([[i, f.get("line", "")] for i, f in entries], ensure_ascii=False, separators=(",", ":"))
    return ServerSentEvent(data=data, id=entries[-1][0], event="logs")


class InstanceController(Controller):
    path = "/api/v1/instances"
    tags = ["instances"]

    @get("/", operation_id="listInstances")
    async def list_instances(
        self, session: AsyncSession, user: User,
        host: str | None = None, state_: str | None = QueryParameter(name="state", default=None), profile: str | None = None,
        label: str | None = Parameter(default=None, description="key or key=value"),
        q: str | None = Parameter(default=None, description="text in the name"),
        limit: int = Parameter(default=50, ge=1, le=1000), offset: int = Parameter(default=0, ge=0),
    ) -> InstancePage:
        rows, total = await service.list_instances(
            session, host=host, state=state_, profile=profile, label=label, q=q, limit=limit, offset=offset
        )
        return InstancePage(items=[InstanceOut.of(r) for r in rows], total=total, limit=limit, offset=offset)

    @post("/", operation_id="createInstance")
    async def create_instance(self, data: InstanceCreate, session: AsyncSession, redis: Redis, settings: Settings, user: User) -> InstanceOut:
        draft = service.InstanceDraft(
            name=data.name, profile=data.profile, host=data.host, config=data.config,
            config_text=data.config_text, simulated=data.simulated, argv=data.argv,
            labels=data.labels, env=data.env, supervision=data.supervision.given(),
        )
        return InstanceOut.of(await service.create_instance(session, redis, settings, draft))

    @get("/{instance_id:str}", operation_id="getInstance")
    async def get_instance(self, instance_id: str, session: AsyncSession, user: User) -> InstanceOut:
        return InstanceOut.of(await service.get_instance(session, instance_id))

    @patch("/{instance_id:str}", operation_id="updateInstance")
    async def update_instance(self, instance_id: str, data: InstanceUpdate, session: AsyncSession, redis: Redis,
                     settings: Settings, user: User) -> InstanceOut:
        instance = await service.get_instance(session, instance_id)
        changes = data.model_dump(exclude_unset=True)
        if data.supervision is not None:
            changes["supervision"] = data.supervision.given()
        return InstanceOut.of(await service.update_instance(session, redis, settings, instance, changes))

    @delete("/{instance_id:str}", operation_id="deleteInstance", status_code=204)
    async def delete_instance(self, instance_id: str, session: AsyncSession, redis: Redis, settings: Settings, user: User) -> None:
        instance = await service.get_instance(session, instance_id)
        await service.delete_instance(session, redis, settings, instance)

    async def _desired(self, instance_id: str, session: AsyncSession, redis: Redis, settings: Settings,
                       desired: DesiredState, action: str, restart: bool = False) -> InstanceOut:
        instance = await service.get_instance(session, instance_id)
        row = await service.set_desired(session, redis, settings, instance, desired, restart=restart, action=action)
        return InstanceOut.of(row)

    @post("/{instance_id:str}/start", operation_id="startInstance", status_code=202)
    async def start(self, instance_id: str, session: AsyncSession, redis: Redis, settings: Settings, user: User) -> InstanceOut:
        """Ask the host's agent to run it (also after FATAL). Watch /events for the states."""
        return await self._desired(instance_id, session, redis, settings, DesiredState.RUNNING, "start")

    @post("/{instance_id:str}/stop", operation_id="stopInstance", status_code=202)
    async def stop(self, instance_id: str, session: AsyncSession, redis: Redis, settings: Settings, user: User) -> InstanceOut:
        """Stop it by the profile's signal ladder (passivbot: SIGINT, SIGTERM, SIGKILL)."""
        return await self._desired(instance_id, session, redis, settings, DesiredState.STOPPED, "stop")

    @post("/{instance_id:str}/restart", operation_id="restartInstance", status_code=202)
    async def restart(self, instance_id: str, session: AsyncSession, redis: Redis, settings: Settings, user: User) -> InstanceOut:
        return await self._desired(instance_id, session, redis, settings, DesiredState.RUNNING, "restart", restart=True)

    @post("/{instance_id:str}/move", operation_id="moveInstance", status_code=200)
    async def move(self, instance_id: str, data: MoveIn, session: AsyncSession, redis: Redis, settings: Settings,
                   user: User) -> InstanceOut:
        """Move to another host: stopped (and confirmed) on the old host first, started on the new
        one if it was running. ``force`` only when the old host is offline (declared lost)."""
        instance = await service.get_instance(session, instance_id)
        row = await placement.move_instance(session, redis, settings, instance, data.host, force=data.force)
        return InstanceOut.of(row)

    @post("/bulk", operation_id="bulkInstances", status_code=200)
    async def bulk(self, data: BulkIn, session: AsyncSession, redis: Redis, settings: Settings,
                   user: User) -> list[placement.BulkResult]:
        """start/stop/restart many instances; one result per id (failures do not stop the rest)."""
        return await placement.bulk_action(session, redis, settings, data.action, data.ids)

    @get("/{instance_id:str}/configs", operation_id="listInstanceConfigs")
    async def configs(self, instance_id: str, session: AsyncSession, user: User) -> list[ConfigOut]:
        instance = await service.get_instance(session, instance_id)
        rows = await session.scalars(
            select(ConfigVersion).where(ConfigVersion.instance_id == instance.id).order_by(ConfigVersion.version)
        )
        return [ConfigOut.of(r) for r in rows]

    @get("/{instance_id:str}/configs/diff", operation_id="diffInstanceConfigs")
    async def diff(self, instance_id: str, session: AsyncSession, user: User,
                   from_: int = QueryParameter(name="from"), to: int = QueryParameter(name="to")) -> dict[str, Any]:
        instance = await service.get_instance(session, instance_id)
        rows = {r.version: r for r in await session.scalars(
            select(ConfigVersion).where(ConfigVersion.instance_id == instance.id, ConfigVersion.version.in_([from_, to]))
        )}
        for version in (from_, to):
            if version not in rows:
                raise NotFound(f"instance {instance.name!r} has no config version {version}")
        return config_diff(rows[from_], rows[to])

    @put("/{instance_id:str}/config", operation_id="putInstanceConfig")
    async def put_config(self, instance_id: str, data: ConfigIn, session: AsyncSession, redis: Redis,
                         settings: Settings, user: User) -> ConfigOut:
        """Save a new config version. A running bot uses it from its next (re)start."""
        instance = await service.get_instance(session, instance_id)
        row = await service.put_config(session, redis, settings, instance, config=data.config,
                                       config_text=data.config_text, comment=data.comment)
        return ConfigOut.of(row)

    @get("/{instance_id:str}/events", operation_id="listInstanceEvents")
    async def events(self, instance_id: str, session: AsyncSession, user: User,
                     before: int | None = None, limit: int = Parameter(default=100, ge=1, le=1000)) -> list[EventOut]:
        """The instance's persisted events, newest first."""
        instance = await service.get_instance(session, instance_id)
        query = select(Event).where(Event.instance_id == instance.id)
        if before is not None:
            query = query.where(Event.id < before)
        rows = await session.scalars(query.order_by(Event.id.desc()).limit(limit))
        return [EventOut(**event_payload(r)) for r in rows]

    @get("/{instance_id:str}/logs", operation_id="streamInstanceLogs")
    async def logs(self, request: Request[Any, Any, Any], instance_id: str, session: AsyncSession, redis: Redis,
                   settings: Settings, user: User,
                   tail: int = Parameter(default=100, ge=0, le=10_000, description="Recent lines first sent."),
                   batch: bool = Parameter(default=False, description=(
                       "Send lines in batches: `event: logs`, `data` = a JSON array of `[id, line]` pairs "
                       "(oldest first), `id` = the last pair's id; at most ~20 events a second while lines "
                       "keep coming. Without it: one `event: log` per line.")),
                   last_event_id: str | None = HeaderParameter(name="Last-Event-ID", default=None)) -> EventSourceResponse:
        """SSE of the instance's log lines (``event: log``, ``id``, ``data`` = the line with its
        UTC timestamp; or, with ``batch``, ``event: logs`` carrying many). Reconnect with
        ``Last-Event-ID`` to resume without gap or duplicate (in batches too: the id of a batch
        is its last line's). Batches are for busy streams: 10,000 lines/s as 10,000 events cost
        the browser one event dispatch each, ~20 batches cost ~20."""
        instance = await service.get_instance(session, instance_id)
        key = streams.instance_logs(instance.id)
        await session.close()
        after = resume_id(last_event_id or request.query_params.get("last_event_id"), "")
        backlog: list[tuple[str, dict[str, str]]] = []
        if not after:
            backlog = list(reversed(await redis.xrevrange(key, count=tail))) if tail else []
            after = backlog[-1][0] if backlog else ((await redis.xrevrange(key, count=1)) or [("0-0", {})])[0][0]
        follow = (follow_stream(redis, key, after, backlog=backlog, encode_batch=_log_batch, min_interval=LOG_BATCH_INTERVAL)
                  if batch else follow_stream(redis, key, after, _log_event, backlog=backlog))
        return sse_response(follow, settings.sse_ping_interval)

    @get("/{instance_id:str}/logs/range", operation_id="readInstanceLogs")
    async def log_range(self, instance_id: str, session: AsyncSession, redis: Redis, user: User,
                        before: str | None = Parameter(default=None, description="Lines older than this id."),
                        limit: int = Parameter(default=200, ge=1, le=5000)) -> LogPage:
        """Older lines, a page at a time (oldest first within the page)."""
        instance = await service.get_instance(session, instance_id)
        end = f"({resume_id(before, '')}" if before else "+"
        entries = await redis.xrevrange(streams.instance_logs(instance.id), max=end, min="-", count=limit)
        items = [LogLine(id=i, seq=int(f.get("seq", -1)), line=f.get("line", "")) for i, f in reversed(entries)]
        return LogPage(items=items, next_before=items[0].id if len(items) == limit else None)


