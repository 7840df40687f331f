"""Host metrics history: every :class:`~botfleet.protocol.HostMetrics` sample an agent sends,
kept for :data:`RETENTION_SECONDS` in a Redis stream per host (:func:`key`), read back for the
host page's charts.

Why a Redis stream and not a SQL table (docs/architecture.md, "Host metrics"): samples arrive
every ``heartbeat_interval`` seconds per host on the agent's event path, which already writes
Redis; ``XADD ... MINID ~`` trims by age in the same command (no pruning job), the stream id
is the arrival time (a time index for free), and every api replica reads the same stream. The
history is recent and disposable (the latest sample stays on the host row in SQL).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from botfleet.protocol import HostMetrics

__all__ = ["RETENTION_SECONDS", "MetricsPoint", "history", "key", "record"]

#: How long samples are kept (seconds): a day of charts.
RETENTION_SECONDS = 24 * 3600


def key(host_id: str) -> str:
    """Stream of one host's metrics samples, field ``m``: JSON of a :class:`MetricsPoint`
    without ``time`` (the stream id's milliseconds are the time the api received it)."""
    return f"botfleet:host:{host_id}:metrics"


class MetricsPoint(BaseModel):
    """One sample (or the mean of several, when :func:`history` thins a long range)."""

    time: datetime = Field(description="When the api received the sample (UTC).")
    cpu_percent: float = Field(description="All cores, 0-100.")
    memory_used: int = Field(description="Bytes.")
    memory_total: int = Field(description="Bytes.")
    disk_used: int = Field(description="Bytes (total - free) of the agent's instances directory's disk.")
    disk_total: int = Field(description="Bytes.")
    load1: float
    load5: float
    load15: float


def _fields(m: HostMetrics) -> dict[str, float | int]:
    return {
        "cpu_percent": m.cpu_percent, "memory_used": m.memory_used, "memory_total": m.memory_total,
        "disk_used": m.disk_total - m.disk_free, "disk_total": m.disk_total,
        "load1": m.load[0], "load5": m.load[1], "load15": m.load[2],
    }


async def record(redis: Redis, host_id: str, samples: Sequence[HostMetrics]) -> None:
    """Append ``samples`` to the host's history and drop those older than
    :data:`RETENTION_SECONDS` (``MINID ~``: whole macro nodes, so a few more may stay). The key
    expires when a host stops reporting for that long (a deleted host leaves nothing behind)."""
    if not samples:
        return
    oldest = int((time.time() - RETENTION_SECONDS) * 1000)
    stream = key(host_id)
    async with redis.pipeline(transaction=False) as pipe:
        for sample in samples:
            pipe.xadd(stream, {"m": json.dumps(_fields(sample))}, minid=oldest, approximate=True)
        pipe.expire(stream, RETENTION_SECONDS)
        await pipe.execute()


def _thin(points: list[MetricsPoint], max_points: int) -> list[MetricsPoint]:
    """Means over consecutive buckets of equal size, so a day of 1 s samples stays a chart."""
    size = -(-len(points) // max_points)
    out = []
    for start in range(0, len(points), size):
        bucket = points[start:start + size]
        mean = {name: sum(getattr(p, name) for p in bucket) / len(bucket)
                for name in MetricsPoint.model_fields if name != "time"}
        ints = {"memory_used", "memory_total", "disk_used", "disk_total"}
        out.append(MetricsPoint(time=bucket[-1].time, **{k: round(v) if k in ints else v for k, v in mean.items()}))
    return out


async def history(redis: Redis, host_id: str, since: datetime | None = None,
                  max_points: int = 2000) -> list[MetricsPoint]:
    """Samples received strictly after ``since`` (default: the whole retained history), oldest
    first. More than ``max_points`` samples are averaged in consecutive buckets down to at most
    ``max_points`` (each stamped with its last sample's time). Unknown hosts have none."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    start = "-" if since is None else str(int(since.timestamp() * 1000) + 1)
    entries = await redis.xrange(key(host_id), min=start, max="+")
    points = []
    for entry_id, fields in entries:
        ms = int((entry_id.decode() if isinstance(entry_id, bytes) else entry_id).split("-")[0])
        raw = fields.get("m") or fields.get(b"m")
        points.append(MetricsPoint(time=datetime.fromtimestamp(ms / 1000, UTC), **json.loads(raw)))
    return _thin(points, max_points) if len(points) > max_points else points
