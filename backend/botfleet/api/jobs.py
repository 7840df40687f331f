"""``/api/v1/jobs``: backtest and optimize jobs (create, list, get, cancel, results,
artifacts, events). Controllers only translate HTTP to :mod:`botfleet.jobs.service`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import HeaderParameter, Parameter
from litestar.response import File
from pydantic import BaseModel, Field
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession
from sse_starlette import EventSourceResponse, ServerSentEvent

from botfleet.api.instances import EventOut
from botfleet.api.sse import follow_stream, resume_id, sse_response
from botfleet.db.models import Job, JobKind, JobStatus, User
from botfleet.fleet import instances as instance_service
from botfleet.fleet import streams
from botfleet.fleet.events import event_payload
from botfleet.jobs import service
from botfleet.settings import Settings

__all__ = ["JobController"]


class JobCreate(BaseModel):
    kind: JobKind
    profile: str | None = Field(default=None, description="Defaults to the instance's profile.")
    instance_id: str | None = Field(default=None, description="Run on this instance's current config.")
    config: dict[str, Any] | None = None
    config_text: str | None = Field(default=None, description="JSON or HJSON text of the config.")
    overrides: dict[str, Any] = Field(default_factory=dict, description='Dotted keys, e.g. {"optimize.iters": 100}.')
    simulated: bool | None = Field(default=None, description="Run the passivbot stand-in.")


class JobOut(BaseModel):
    id: str
    kind: str
    status: str
    reason: str
    profile: str
    simulated: bool
    instance_id: str | None
    overrides: dict[str, Any]
    progress: float = Field(description="0..1")
    progress_detail: dict[str, Any]
    result: dict[str, Any] | None
    worker: str | None
    pid: int | None
    exit_code: int | None
    attempt: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, row: Job) -> JobOut:
        return cls(**{k: getattr(row, k) for k in cls.model_fields})


class JobDetail(JobOut):
    config: dict[str, Any]

    @classmethod
    def of(cls, row: Job) -> JobDetail:
        return cls(**{k: getattr(row, k) for k in cls.model_fields})


class JobPage(BaseModel):
    items: list[JobOut]
    total: int
    limit: int
    offset: int


def _job_event(entry_id: str, fields: dict[str, str]) -> ServerSentEvent:
    data = fields["data"]
    return ServerSentEvent(data=data, id=entry_id, event=json.loads(data).get("kind", "message"))


class JobController(Controller):
    path = "/api/v1/jobs"
    tags = ["jobs"]

    @post("/", operation_id="createJob", status_code=201)
    async def create_job(self, data: JobCreate, session: AsyncSession, redis: Redis, settings: Settings, user: User) -> JobDetail:
        """Queue a backtest or optimize of an instance's config or of a given config."""
        instance = None
        profile = data.profile
        simulated = data.simulated
        if data.instance_id:
            instance = await instance_service.get_instance(session, data.instance_id)
            profile = profile or instance.profile
            simulated = instance.simulated if simulated is None else simulated
        job = await service.create_job(
            session, redis, settings, kind=data.kind, profile=profile or "", config=data.config,
            config_text=data.config_text, instance=instance, overrides=data.overrides, simulated=bool(simulated),
        )
        return JobDetail.of(job)

    @get("/", operation_id="listJobs")
    async def list_jobs(self, session: AsyncSession, user: User, status: JobStatus | None = None,
                        kind: JobKind | None = None, instance_id: str | None = None,
                        limit: int = Parameter(default=50, ge=1, le=1000), offset: int = Parameter(default=0, ge=0)) -> JobPage:
        """Jobs, newest first. Poll a single job with GET /api/v1/jobs/{id}."""
        rows, total = await service.list_jobs(session, status=status, kind=kind, instance_id=instance_id,
                                              limit=limit, offset=offset)
        return JobPage(items=[JobOut.of(r) for r in rows], total=total, limit=limit, offset=offset)

    @get("/{job_id:str}", operation_id="getJob")
    async def get_job(self, job_id: str, session: AsyncSession, user: User) -> JobDetail:
        return JobDetail.of(await service.get_job(session, job_id))

    @post("/{job_id:str}/cancel", operation_id="cancelJob", status_code=202)
    async def cancel(self, job_id: str, session: AsyncSession, redis: Redis, user: User) -> JobOut:
        """Cancel: a queued job never starts; a running one has its whole process tree stopped."""
        return JobOut.of(await service.cancel_job(session, redis, job_id))

    @get("/{job_id:str}/results", operation_id="getJobResults")
    async def results(self, job_id: str, session: AsyncSession, user: User) -> dict[str, Any]:
        """The stored result summary (backtest: analysis metrics; optimize: Pareto members) and
        the artifact names."""
        job = await service.get_job(session, job_id)
        return {"id": job.id, "status": job.status, "result": job.result}

    @get("/{job_id:str}/artifacts/{name:path}", operation_id="getJobArtifact")
    async def artifact(self, job_id: str, name: str, session: AsyncSession, user: User) -> File:
        job = await service.get_job(session, job_id)
        path = service.artifact_path(job, name.lstrip("/"))
        return File(path=path, filename=path.name)

    @get("/{job_id:str}/history", operation_id="listJobEvents")
    async def history(self, job_id: str, session: AsyncSession, user: User, after: int | None = None,
                      limit: int = Parameter(default=500, ge=1, le=5000)) -> list[EventOut]:
        rows = await service.job_events(session, job_id, after_id=after, limit=limit)
        return [EventOut(**event_payload(r)) for r in rows]

    @get("/{job_id:str}/events", operation_id="streamJobEvents")
    async def events(self, request: Request[Any, Any, Any], job_id: str, session: AsyncSession, redis: Redis,
                     settings: Settings, user: User,
                     last_event_id: str | None = HeaderParameter(name="Last-Event-ID", default=None)) -> EventSourceResponse:
        """SSE of the job's events from its start (``job.status``, ``job.progress``); resume
        with Last-Event-ID."""
        job = await service.get_job(session, job_id)
        await session.close()
        after = resume_id(last_event_id, "0-0")
        return sse_response(follow_stream(redis, streams.job_events(job.id), after, _job_event), settings.sse_ping_interval)
