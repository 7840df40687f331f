"""Reconciling jobs nobody runs any more (invariant 3: no job stays ``running`` forever).

- A ``running``/``cancelling`` job whose ``heartbeat_at`` is older than
  ``settings.job_heartbeat_timeout`` lost its worker (killed, machine gone): it is failed
  with reason ``"worker lost: no heartbeat for N s"``. When its worker ran on this machine,
  what is left of its process tree is killed (processes are recognised by their
  ``BOTFLEET_JOB_ID`` environment variable, never by pid alone: pids are reused).
- A ``queued`` job older than the timeout that arq no longer holds (Redis lost it, or the
  api died between commit and enqueue) is failed with reason ``"lost from the queue ..."``.

Every worker calls :func:`reap_lost_jobs` periodically; the api may call it too. Transitions
are compare-and-set, so concurrent reapers never double-fail a job.
"""

from __future__ import annotations

import signal
import socket
from datetime import timedelta

import structlog
from redis.asyncio import Redis
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from botfleet.db.models import Job, JobStatus, utcnow
from botfleet.jobs import queue
from botfleet.jobs.context import worker_hostname
from botfleet.jobs.process import kill_job_processes
from botfleet.jobs.state import ACTIVE, transition
from botfleet.settings import Settings

__all__ = ["reap_lost_jobs"]

log = structlog.get_logger(__name__)


async def reap_lost_jobs(session: AsyncSession, redis: Redis, settings: Settings) -> list[str]:
    """Fail the jobs whose worker or queue entry is gone (see the module docstring); returns
    their ids. Raises database and Redis errors."""
    timeout = settings.job_heartbeat_timeout
    cutoff = utcnow() - timedelta(seconds=timeout)
    maxlen = settings.events_stream_maxlen
    reaped: list[str] = []
    stale = (
        await session.execute(
            select(Job.id, Job.worker).where(
                Job.status.in_(ACTIVE), func.coalesce(Job.heartbeat_at, Job.created_at) < cutoff
            )
        )
    ).all()
    await session.rollback()
    here = socket.gethostname()
    for job_id, worker in stale:
        job = await transition(
            session, redis, job_id, to=JobStatus.FAILED, allowed_from=ACTIVE,
            reason=f"worker lost: no heartbeat for {timeout:g} s (worker {worker or 'unknown'})",
            where=[or_(Job.heartbeat_at.is_(None), Job.heartbeat_at < cutoff)], maxlen=maxlen,
        )  # fmt: skip
        if job is None:
            continue  # it heartbeat, finished or was reaped meanwhile
        reaped.append(job_id)
        if worker_hostname(worker) == here:
            # by job id, not group: a process that left the group is still found
            killed = kill_job_processes(job_id, None, signal.SIGKILL)
            log.warning("lost job reaped", job_id=job_id, worker=worker, killed=killed)
        else:
            log.warning("lost job reaped", job_id=job_id, worker=worker)

    waiting = (
        await session.execute(
            select(Job.id).where(Job.status == JobStatus.QUEUED, Job.created_at < cutoff)
        )
    ).scalars().all()  # fmt: skip
    await session.rollback()
    for job_id in waiting:
        if await queue.queued_in_redis(redis, job_id):
            continue
        job = await transition(
            session, redis, job_id, to=JobStatus.FAILED, allowed_from=[JobStatus.QUEUED],
            reason="lost from the queue (Redis no longer holds it): create the job again",
            maxlen=maxlen,
        )  # fmt: skip
        if job is not None:
            reaped.append(job_id)
            log.warning("queued job lost from Redis", job_id=job_id)
    return reaped
