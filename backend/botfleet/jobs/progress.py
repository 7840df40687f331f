"""Progress and output of a running job, written at a bounded rate.

A job may print thousands of lines a second, and an optimization may run for a week; the
database and the fleet-wide stream must not follow that pace. :class:`JobReporter` keeps the
latest progress in memory and

- at most every ``interval`` seconds (0.25 s: <= 4 writes/s) updates the job row
  (``progress``, ``progress_detail``) and appends a ``job.progress`` entry to the job's stream
  (its ``id`` is ``null``: not persisted);
- at most every ``persist_interval`` seconds (5 s), on every phase change and at the end,
  records a ``job.progress`` event in SQL (with its id) and publishes it on the fleet-wide
  stream and the job's stream.

Output lines go to the job's stream only, batched per flush as ``job.output`` entries (not in
SQL: the full output is ``output.log`` in the job directory).
"""

from __future__ import annotations

import json
import time
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from botfleet.db.models import Job
from botfleet.db.models import utcnow as _utcnow
from botfleet.fleet import streams
from botfleet.fleet.events import record_event
from botfleet.jobs.state import ACTIVE, JOB_PROGRESS, publish
from botfleet.profiles import ProgressUpdate

__all__ = ["JOB_OUTPUT", "JobReporter"]

log = structlog.get_logger(__name__)

#: Kind of the job-stream entries carrying output lines: ``data = {"lines": [str, ...],
#: "dropped": int}`` (``dropped``: lines left out of this batch to bound its size).
JOB_OUTPUT = "job.output"

_MAX_BATCH = 500
_JOB_STREAM_MAXLEN = 10_000


class JobReporter:
    """Throttled progress and output of one job (see the module docstring)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis: Redis,
        job_id: str,
        *,
        maxlen: int,
        interval: float = 0.25,
        persist_interval: float = 5.0,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._redis = redis
        self._job_id = job_id
        self._maxlen = maxlen
        self._interval = interval
        self._persist_interval = persist_interval
        self.fraction: float | None = None
        self.phase: str | None = None
        self.detail: dict[str, Any] = {}
        self._dirty = False
        self._phase_changed = False
        self._last_write = 0.0
        self._last_persist = 0.0
        self._lines: list[str] = []
        self._dropped = 0

    def on_update(self, update: ProgressUpdate) -> None:
        """Merge one parsed update: a ``None`` fraction or phase keeps the previous one,
        ``detail`` keys are merged. The fraction is clamped to 0..1."""
        if update.fraction is not None:
            self.fraction = min(1.0, max(0.0, float(update.fraction)))
        if update.phase is not None and update.phase != self.phase:
            self.phase = update.phase
            self._phase_changed = True
        self.detail.update(update.detail)
        self._dirty = True

    def on_line(self, line: str) -> None:
        """Queue one output line for the job's stream."""
        self._lines.append(line)
        if len(self._lines) > _MAX_BATCH:
            del self._lines[0]
            self._dropped += 1

    def progress_data(self) -> dict[str, Any]:
        """Data of a ``job.progress`` event: ``{"fraction": float|None, "phase": str|None,
        "detail": {...}}``."""
        return {"fraction": self.fraction, "phase": self.phase, "detail": dict(self.detail)}

    async def flush(self, *, force: bool = False) -> None:
        """Write what is due (everything when ``force``). Redis failures are logged; database
        errors propagate."""
        now = time.monotonic()
        if self._lines:
            await self._stream_lines()
        if not self._dirty or (not force and now - self._last_write < self._interval):
            return
        self._dirty = False
        self._last_write = now
        data = self.progress_data()
        persist = force or self._phase_changed or now - self._last_persist >= self._persist_interval
        values: dict[str, Any] = {"progress_detail": {"phase": self.phase, **self.detail}}
        if self.fraction is not None:
            values["progress"] = self.fraction
        async with self._sessionmaker() as session:
            await session.execute(
                update(Job)
                .where(Job.id == self._job_id, Job.status.in_(ACTIVE))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            event = None
            if persist:
                event = await record_event(
                    session, kind=JOB_PROGRESS, job_id=self._job_id, data=data
                )
            await session.commit()
        if event is not None:
            self._last_persist = now
            self._phase_changed = False
            await publish(self._redis, event, maxlen=self._maxlen)  # fleet-wide + job stream
        else:
            await self._to_job_stream(JOB_PROGRESS, data)

    async def _stream_lines(self) -> None:
        lines, dropped = self._lines, self._dropped
        self._lines, self._dropped = [], 0
        await self._to_job_stream(JOB_OUTPUT, {"lines": lines, "dropped": dropped})

    async def _to_job_stream(self, kind: str, data: dict[str, Any]) -> None:
        """Append a not-persisted entry (``id`` null) shaped like an event to the job's stream."""
        payload = {
            "id": None,
            "time": _utcnow().isoformat(),
            "kind": kind,
            "host_id": None,
            "instance_id": None,
            "job_id": self._job_id,
            "data": data,
        }
        try:
            await self._redis.xadd(
                streams.job_events(self._job_id),
                {"data": json.dumps(payload)},
                maxlen=_JOB_STREAM_MAXLEN,
                approximate=True,
            )
        except RedisError as exc:
            log.warning(
                "job stream entry not written", job_id=self._job_id, kind=kind, error=str(exc)
            )
