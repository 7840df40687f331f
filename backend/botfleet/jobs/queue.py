"""The arq side shared by the api (enqueue) and the worker (consume): queue names, the job
function's name and a JSON serializer (no pickle: nothing read from Redis is executed).

One queue per job kind, so that each kind has its own slot count (a worker runs one arq
``Worker`` per queue). The arq job id is the botfleet job id: a fresh UUID4 per job, never
reused (TRAPS.md, arq #485).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix
from redis.asyncio import Redis

from botfleet.db.models import JobKind

__all__ = [
    "FUNCTION",
    "QUEUE_EXPIRY",
    "deserialize",
    "enqueue",
    "queue_name",
    "queued_in_redis",
    "serialize",
]

#: Name of the arq job function (botfleet.jobs.runner.run_job).
FUNCTION = "run_job"

#: How long an enqueued job may wait for a slot before arq drops it. arq's default (1 day) is
#: too short for a queue of long optimizations; the reaper fails rows whose arq job vanished.
QUEUE_EXPIRY = timedelta(days=60)

_QUEUES = {JobKind.BACKTEST: "botfleet:jobs:backtest", JobKind.OPTIMIZE: "botfleet:jobs:optimize"}


def queue_name(kind: JobKind | str) -> str:
    """The arq queue (a Redis sorted set) of a job kind: ``botfleet:jobs:<kind>``."""
    return _QUEUES[JobKind(kind)]


def serialize(data: dict[str, Any]) -> bytes:
    """arq job/result serializer: JSON; anything not JSON (an exception) becomes its text."""
    return json.dumps(data, default=str).encode()


def deserialize(raw: bytes) -> dict[str, Any]:
    """arq job/result deserializer (inverse of :func:`serialize`)."""
    data: dict[str, Any] = json.loads(raw)
    return data


async def enqueue(redis: Redis, job_id: str, kind: JobKind | str) -> None:
    """Put job ``job_id`` on its kind's queue. ``redis`` may be any ``redis.asyncio.Redis``
    (decoded or not): arq's enqueue only writes bytes, so its connection pool is shared.
    Raises ``redis.RedisError`` when Redis fails, :class:`RuntimeError` if the id was already
    enqueued (ids are never reused, so that is a bug)."""
    queue = ArqRedis(connection_pool=redis.connection_pool, job_serializer=serialize)
    job = await queue.enqueue_job(
        FUNCTION, job_id, _job_id=job_id, _queue_name=queue_name(kind), _expires=QUEUE_EXPIRY
    )
    if job is None:
        raise RuntimeError(f"arq job {job_id} exists already: job ids must never be reused")


async def queued_in_redis(redis: Redis, job_id: str) -> bool:
    """Whether arq still holds job ``job_id`` (waiting or in progress)."""
    return bool(await redis.exists(job_key_prefix + job_id, in_progress_key_prefix + job_id))
