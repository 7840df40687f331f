"""The job state machine, written down once and used by the service, the runner and the reaper.

::

    queued ──> running ──> succeeded | failed | cancelled
       │          └──> cancelling ──> cancelled | failed
       └──> cancelled | failed   (cancelled before start; lost from the queue)

Every transition is a compare-and-set (``UPDATE ... WHERE status IN (...)``), so two parties
racing (a cancel and a worker start, a reaper and a late heartbeat) never both win, and every
won transition records one ``job.status`` event: committed to SQL first, then published to
the fleet-wide stream and the job's stream.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from botfleet.db.models import Event, Job, JobStatus, utcnow
from botfleet.fleet.events import publish_event, record_event

__all__ = [
    "ACTIVE",
    "JOB_PROGRESS",
    "JOB_STATUS",
    "publish",
    "status_data",
    "transition",
]

log = structlog.get_logger(__name__)

#: Event kinds this package records.
JOB_STATUS = "job.status"
JOB_PROGRESS = "job.progress"

#: States in which a job's process may be alive.
ACTIVE = (JobStatus.RUNNING, JobStatus.CANCELLING)


def status_data(job: Job) -> dict[str, Any]:
    """Data of a ``job.status`` event: ``{"status", "reason", "progress", "kind",
    "exit_code"}`` (``progress`` 0..1, ``exit_code`` null until the process exited)."""
    return {
        "status": job.status,
        "reason": job.reason,
        "progress": job.progress,
        "kind": job.kind,
        "exit_code": job.exit_code,
    }


async def publish(redis: Redis, event: Event, *, maxlen: int) -> None:
    """Publish a committed event; a Redis failure is logged, not raised: the event is safe
    in SQL, only live followers miss it (they re-read SQL on reconnect)."""
    try:
        await publish_event(redis, event, maxlen=maxlen)
    except RedisError as exc:
        log.warning("job event not streamed", event_id=event.id, kind=event.kind, error=str(exc))


async def transition(
    session: AsyncSession,
    redis: Redis,
    job_id: str,
    *,
    to: JobStatus,
    allowed_from: Collection[JobStatus],
    reason: str = "",
    values: dict[str, Any] | None = None,
    where: Collection[ColumnElement[bool]] = (),
    maxlen: int = 100_000,
) -> Job | None:
    """Move job ``job_id`` to ``to`` if its status is one of ``allowed_from`` (and every extra
    ``where`` condition holds), setting ``reason``, ``finished_at`` for a final state and any
    other column in ``values``. Commits, then publishes the ``job.status`` event.

    Returns the updated job, or ``None`` when the job was not in an allowed state (nothing is
    written then). Raises SQLAlchemy errors from the database.
    """
    fields: dict[str, Any] = {"status": to, "reason": reason, **(values or {})}
    if to.finished:
        fields.setdefault("finished_at", utcnow())
    statement = (
        update(Job)
        .where(Job.id == job_id, Job.status.in_([JobStatus(s) for s in allowed_from]), *where)
        .values(**fields)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(statement)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        await session.rollback()
        return None
    job = (
        await session.execute(
            select(Job).where(Job.id == job_id).execution_options(populate_existing=True)
        )
    ).scalar_one()
    event = await record_event(session, kind=JOB_STATUS, job_id=job_id, data=status_data(job))
    await session.commit()
    await publish(redis, event, maxlen=maxlen)
    log.info("job status", job_id=job_id, status=str(to), reason=reason)
    return job
