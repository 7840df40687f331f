"""What a worker process shares between its job functions (arq ``ctx``): settings, the
database engine and session factory, a Redis client for events, and the worker's identity."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from botfleet.db.session import create_engine, create_sessionmaker
from botfleet.settings import Settings

__all__ = ["CONTEXT_KEY", "WorkerContext", "worker_hostname"]

#: Key of the :class:`WorkerContext` in arq's ``ctx``.
CONTEXT_KEY = "botfleet"


def worker_hostname(worker: str | None) -> str | None:
    """The host part of a ``Job.worker`` value (``"<hostname>:<pid>"``)."""
    return worker.rpartition(":")[0] if worker else None


@dataclass
class WorkerContext:
    """Resources of one worker process. Build with :meth:`open`, release with :meth:`close`.

    ``worker_id`` is ``"<hostname>:<pid>"``, stored in ``Job.worker`` of the jobs it runs.
    """

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis
    hostname: str
    worker_id: str

    @classmethod
    async def open(cls, settings: Settings) -> WorkerContext:
        """Create the engine and the Redis client (``settings.redis_url`` must be set)."""
        if not settings.redis_url:
            raise ValueError("the worker needs BOTFLEET_REDIS_URL (botfleet up sets it)")
        engine = create_engine(settings.database)
        redis = Redis.from_url(settings.redis_url, decode_responses=True)
        hostname = socket.gethostname()
        return cls(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            redis=redis,
            hostname=hostname,
            worker_id=f"{hostname}:{os.getpid()}",
        )

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between heartbeats of a running job: a quarter of the heartbeat timeout,
        at most 5 s."""
        return min(5.0, self.settings.job_heartbeat_timeout / 4)

    async def close(self) -> None:
        await self.redis.aclose()
        await self.engine.dispose()
