"""Fixtures and helpers shared by the job tests (no tests here): a database with the schema,
Settings pointing at it and at the test Redis, an in-process job worker, waiting helpers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from botfleet.db import Base, Job, JobStatus, create_engine, create_sessionmaker
from botfleet.fleet import streams
from botfleet.jobs import create_job, get_job
from botfleet.jobs.process import JOB_ID_ENV
from botfleet.jobs.worker import serve
from botfleet.settings import Settings
from tests.conftest import PASSIVBOT_CONFIGS

T = TypeVar("T")

V8_CONFIG = PASSIVBOT_CONFIGS / "v8" / "btc_long.json"


@dataclass
class JobsEnv:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis

    async def create(self, kind: str, **kwargs: Any) -> Job:
        """Create a job on the v8 example config with the stand-in (unless overridden)."""
        kwargs.setdefault("profile", "passivbot-v8")
        kwargs.setdefault("config", json.loads(V8_CONFIG.read_text()))
        kwargs.setdefault("simulated", True)
        async with self.sessionmaker() as session:
            return await create_job(session, self.redis, self.settings, kind=kind, **kwargs)

    async def job(self, job_id: str) -> Job:
        async with self.sessionmaker() as session:
            return await get_job(session, job_id)

    async def finished(self, job_id: str, timeout: float = 90.0) -> Job:
        """Wait for the job to reach a final state."""

        async def check() -> Job | None:
            job = await self.job(job_id)
            return job if JobStatus(job.status).finished else None

        return await wait_until(check, timeout, f"job {job_id} to finish")

    async def status(self, job_id: str, status: JobStatus, timeout: float = 90.0) -> Job:
        async def check() -> Job | None:
            job = await self.job(job_id)
            if JobStatus(job.status).finished and job.status != status:
                raise AssertionError(f"job ended {job.status} ({job.reason}), wanted {status}")
            return job if job.status == status else None

        return await wait_until(check, timeout, f"job {job_id} to be {status}")

    async def stream(self, job_id: str) -> list[dict[str, Any]]:
        """The job's Redis stream entries (decoded payloads), oldest first."""
        entries = await self.redis.xrange(streams.job_events(job_id))
        return [json.loads(fields["data"]) for _, fields in entries]


async def wait_until(
    check: Callable[[], Awaitable[T | None]], timeout: float = 90.0, what: str = "a condition"
) -> T:
    """Poll ``check`` until it returns something truthy (a generous deadline, not a timing
    assertion: a loaded machine only makes it slower)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


def live_job_processes(job_id: str) -> list[psutil.Process]:
    """Every live (non-zombie) process on this machine carrying the job's id."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and proc.environ().get(JOB_ID_ENV) == job_id:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.Error:
            continue
    return out


def make_settings(home: Path, db_url: str, redis_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "home": home,
        "database_url": db_url,
        "redis_url": redis_url,
        "backtest_slots": 2,
        "optimize_slots": 1,
        "job_heartbeat_timeout": 10.0,
    }
    return Settings(**(values | overrides))


@pytest.fixture
async def jobs_env(
    db_url: str, redis: Redis, redis_url: str, tmp_path: Path
) -> AsyncIterator[JobsEnv]:
    """Schema created, nothing running."""
    settings = make_settings(tmp_path / "home", db_url, redis_url)
    engine = create_engine(db_url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield JobsEnv(settings, engine, create_sessionmaker(engine), redis)
    await engine.dispose()


@contextlib.asynccontextmanager
async def running_worker(settings: Settings) -> AsyncIterator[asyncio.Task[None]]:
    """A job worker (both queues, reaper) in this event loop, stopped on exit."""
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop=stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=60)
