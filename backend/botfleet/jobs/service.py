"""The job service the api calls (no HTTP here): create, cancel, list, read jobs, their events
and artifacts. Functions take an ``AsyncSession`` (committed here), a ``redis.asyncio.Redis``
and, where needed, :class:`~botfleet.settings.Settings`.

States and transitions: :mod:`botfleet.jobs.state`. Running jobs: :mod:`botfleet.jobs.runner`.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from botfleet.db.models import ConfigVersion, Event, Instance, Job, JobKind, JobStatus, new_id
from botfleet.fleet import streams
from botfleet.fleet.events import record_event
from botfleet.jobs import queue
from botfleet.jobs.errors import (
    ArtifactError,
    ArtifactNotFound,
    JobError,
    JobNotFound,
    JobStateError,
)
from botfleet.jobs.reaper import reap_lost_jobs
from botfleet.jobs.state import JOB_STATUS, publish, status_data, transition
from botfleet.profiles import ConfigError, apply_overrides, get_profile
from botfleet.settings import Settings

__all__ = [
    "CANCEL_KEY_TTL",
    "artifact_path",
    "cancel_job",
    "create_job",
    "get_job",
    "job_events",
    "list_jobs",
    "reap_lost_jobs",
]

#: Seconds the cancel key of a running job lives (the runner deletes it when the job ends).
CANCEL_KEY_TTL = 7 * 24 * 3600


async def create_job(
    session: AsyncSession,
    redis: Redis,
    settings: Settings,
    *,
    kind: JobKind | str,
    profile: str | None = None,
    config: dict[str, Any] | None = None,
    config_text: str | None = None,
    instance: Instance | None = None,
    overrides: dict[str, Any] | None = None,
    simulated: bool = False,
) -> Job:
    """Validate and queue a backtest or optimize job.

    The config comes from exactly one of ``config`` (a parsed document), ``config_text``
    (JSON/HJSON text) or ``instance`` (its current config version; ``profile`` defaults to
    the instance's). ``overrides`` maps dotted keys to values (``{"backtest.end_date":
    "2024-01-01"}``), applied before validation. The row is committed ``queued`` with a
    ``job.status`` event, then enqueued on its kind's arq queue.

    Raises :class:`~botfleet.profiles.UnknownProfile`, :class:`~botfleet.profiles.ConfigError`
    (``.key`` names the offending key), :class:`JobError` (bad kind, no or several config
    sources, a profile without jobs), ``redis.RedisError`` when enqueueing fails (the job is
    then failed with that reason, never left queued).
    """
    try:
        kind = JobKind(kind)
    except ValueError:
        raise JobError(f"unknown job kind {kind!r}: use backtest or optimize", key="kind") from None
    if profile is None:
        if instance is None:
            raise JobError("name the profile that runs this config", key="profile")
        profile = instance.profile
    runner = get_profile(profile)
    if not runner.supports_jobs:
        raise JobError(f"profile {profile!r} runs no backtest or optimize jobs", key="profile")
    document = await _source_document(session, runner, config, config_text, instance)
    if overrides:
        if not isinstance(overrides, dict):
            raise JobError("overrides must be an object of dotted keys", key="overrides")
        document = apply_overrides(document, overrides)
    document = runner.validate_config(document, purpose=kind.value)
    job = Job(
        id=new_id(),
        kind=kind,
        status=JobStatus.QUEUED,
        profile=profile,
        simulated=simulated,
        instance_id=instance.id if instance is not None else None,
        config=document,
        overrides=dict(overrides or {}),
    )
    session.add(job)
    await session.flush()
    event = await record_event(session, kind=JOB_STATUS, job_id=job.id, data=status_data(job))
    await session.commit()
    await publish(redis, event, maxlen=settings.events_stream_maxlen)
    try:
        await queue.enqueue(redis, job.id, kind)
    except Exception as exc:
        await transition(
            session, redis, job.id, to=JobStatus.FAILED, allowed_from=[JobStatus.QUEUED],
            reason=f"could not be queued: {exc}", maxlen=settings.events_stream_maxlen,
        )  # fmt: skip
        raise
    return job


async def _source_document(
    session: AsyncSession,
    runner: Any,
    config: dict[str, Any] | None,
    config_text: str | None,
    instance: Instance | None,
) -> dict[str, Any]:
    given = [name for name, value in
             (("config", config), ("config_text", config_text), ("instance", instance))
             if value is not None]  # fmt: skip
    if len(given) != 1:
        raise JobError(
            "give exactly one of config, config_text or instance_id "
            f"(got {', '.join(given) or 'none'})",
            key="config",
        )
    if config_text is not None:
        document: dict[str, Any] = runner.parse_config(config_text)
        return document
    if config is not None:
        if not isinstance(config, dict):
            raise ConfigError("", "the config must be a JSON object {...}")
        return dict(config)
    assert instance is not None
    version = (
        await session.execute(
            select(ConfigVersion).where(
                ConfigVersion.instance_id == instance.id,
                ConfigVersion.version == instance.config_version,
            )
        )
    ).scalar_one_or_none()
    if version is None:
        raise JobError(
            f"instance {instance.name!r} has no config version {instance.config_version}: "
            "save a config for it first",
            key="instance_id",
        )
    return dict(version.document)


async def cancel_job(
    session: AsyncSession, redis: Redis, job_id: str, *, reason: str = "cancelled by user"
) -> Job:
    """Cancel a job. Queued: ``cancelled`` at once (reason ``"cancelled before start"``; the
    worker skips it). Running: ``cancelling``, and the worker running it stops its process
    tree (the profile's signal ladder) and marks it ``cancelled`` with ``reason``. Cancelling:
    returned as is. Raises :class:`JobNotFound`, :class:`JobStateError` when it has finished.
    """
    for _ in range(3):  # the status may move under us; each step is a compare-and-set
        job = await get_job(session, job_id)
        status = JobStatus(job.status)
        if status == JobStatus.CANCELLING:
            return job
        if status.finished:
            raise JobStateError(f"job {job_id} has already finished ({status}): nothing to cancel")
        if status == JobStatus.QUEUED:
            done = await transition(
                session, redis, job_id, to=JobStatus.CANCELLED,
                allowed_from=[JobStatus.QUEUED], reason="cancelled before start",
            )  # fmt: skip
        else:
            done = await transition(
                session, redis, job_id, to=JobStatus.CANCELLING,
                allowed_from=[JobStatus.RUNNING], reason=reason,
            )  # fmt: skip
            if done is not None:  # the runner polls this key (and the status, at heartbeats)
                await redis.set(streams.job_cancel(job_id), reason, ex=CANCEL_KEY_TTL)
        if done is not None:
            return done
    return await get_job(session, job_id)


async def get_job(session: AsyncSession, job_id: str) -> Job:
    """The job ``job_id``, freshly read. Raises :class:`JobNotFound`."""
    job = (
        await session.execute(
            select(Job).where(Job.id == job_id).execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if job is None:
        raise JobNotFound(f"no job {job_id}: list jobs to find its id", key="job_id")
    return job


async def list_jobs(
    session: AsyncSession,
    *,
    status: JobStatus | str | None = None,
    kind: JobKind | str | None = None,
    instance_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Job], int]:
    """Jobs matching the filters, newest first: ``(rows, total)`` where ``total`` counts all
    matches (for pagination). ``limit`` is clamped to 1..1000."""
    conditions = []
    if status is not None:
        conditions.append(Job.status == str(status))
    if kind is not None:
        conditions.append(Job.kind == str(kind))
    if instance_id is not None:
        conditions.append(Job.instance_id == instance_id)
    total = (
        await session.execute(select(func.count()).select_from(Job).where(*conditions))
    ).scalar_one()
    rows = (
        await session.execute(
            select(Job).where(*conditions).order_by(Job.created_at.desc(), Job.id)
            .limit(max(1, min(limit, 1000))).offset(max(0, offset))
        )
    ).scalars().all()  # fmt: skip
    return list(rows), int(total)


async def job_events(
    session: AsyncSession, job_id: str, *, after_id: int | None = None, limit: int = 200
) -> list[Event]:
    """The job's persisted events (``job.status``, ``job.progress``) with ``id > after_id``,
    oldest first, at most ``limit`` (clamped to 1..5000). Raises :class:`JobNotFound`."""
    await get_job(session, job_id)
    statement = select(Event).where(Event.job_id == job_id)
    if after_id is not None:
        statement = statement.where(Event.id > after_id)
    statement = statement.order_by(Event.id).limit(max(1, min(limit, 5000)))
    return list((await session.execute(statement)).scalars().all())


def artifact_path(job: Job, name: str) -> Path:
    """The file ``name`` (a relative POSIX path such as ``"backtests/combined/<ts>/fills.csv"``
    or ``"output.log"``) inside the job directory, resolved.

    Raises :class:`ArtifactError` for an empty, absolute or ``..`` path or one that resolves
    (through symlinks) outside the job directory; :class:`ArtifactNotFound` when the job has
    no directory yet or the file does not exist or is not a regular file."""
    if not job.job_dir:
        raise ArtifactNotFound(f"job {job.id} has no files yet: it has not started", key="name")
    if not name or "\x00" in name or "\\" in name:
        raise ArtifactError(
            f"bad artifact name {name!r}: give a path relative to the job", key="name"
        )
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise ArtifactError(
            f"artifact {name!r} is outside the job directory: give a path inside it", key="name"
        )
    base = Path(job.job_dir).resolve()
    target = (base / relative).resolve()
    if not target.is_relative_to(base):
        raise ArtifactError(
            f"artifact {name!r} leads outside the job directory (a symlink?): refused", key="name"
        )
    if not target.is_file():
        raise ArtifactNotFound(f"job {job.id} has no file {name!r}", key="name")
    return target
