"""The job worker process: two arq ``Worker`` s in one event loop, one per queue, so that each
job kind has its own slot count:

- ``botfleet:jobs:backtest`` with ``max_jobs = settings.backtest_slots`` (default: cores),
- ``botfleet:jobs:optimize`` with ``max_jobs = settings.optimize_slots`` (default: 1).

Slots are per worker process: two worker machines run twice as many jobs.

arq options (TRAPS.md, arq 0.28): ``max_tries=1`` and ``retry_jobs=False`` (we reconcile
ourselves: a job is never silently re-run from scratch), ``keep_result=0`` (results live in
SQL), JSON serialization (no pickle), ``poll_delay=0.05`` s (arq's 0.5 s default alone would
eat the 200 ms "created -> process started" budget), job timeout = ``settings.job_timeout``
plus a margin (the runner enforces ``job_timeout`` itself, gracefully).

Shared resources (:class:`~botfleet.jobs.context.WorkerContext`: engine, Redis, identity) are
opened once before the arq workers start and closed after they stop. A reaper task calls
:func:`~botfleet.jobs.reaper.reap_lost_jobs` at start and every heartbeat-timeout / 3 s.

Stopping (SIGINT/SIGTERM): no new job is taken; running jobs are stopped with their profile's
ladder and failed with reason ``"worker stopped before the job finished"`` (see
:mod:`botfleet.jobs.runner`), then the process exits. A second signal does not hurry this up:
the ladder is bounded (passivbot's: 15 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

import structlog
from arq.connections import RedisSettings
from arq.worker import Worker, func

from botfleet.db.models import JobKind
from botfleet.jobs import queue
from botfleet.jobs.context import CONTEXT_KEY, WorkerContext
from botfleet.jobs.reaper import reap_lost_jobs
from botfleet.jobs.runner import run_job
from botfleet.settings import Settings, get_settings

__all__ = ["POLL_DELAY", "build_workers", "run_worker", "serve"]

log = structlog.get_logger(__name__)

#: Seconds between two looks at a queue (arq's default is 0.5).
POLL_DELAY = 0.05
_TIMEOUT_MARGIN = 120.0


def build_workers(settings: Settings, context: WorkerContext) -> list[Worker]:
    """One arq ``Worker`` per job kind sharing ``context`` (must run in an event loop).
    Signals are not handled by arq (``serve`` does)."""
    assert settings.redis_url
    redis_settings = RedisSettings.from_dsn(settings.redis_url)
    timeout = settings.job_timeout + _TIMEOUT_MARGIN
    slots = {JobKind.BACKTEST: settings.backtest_slots, JobKind.OPTIMIZE: settings.optimize_slots}
    return [
        Worker(
            functions=[func(run_job, name=queue.FUNCTION, max_tries=1, timeout=timeout)],
            queue_name=queue.queue_name(kind),
            redis_settings=redis_settings,
            max_jobs=max(1, slots[kind]),
            job_timeout=timeout,
            keep_result=0,
            poll_delay=POLL_DELAY,
            max_tries=1,
            retry_jobs=False,
            handle_signals=False,
            health_check_interval=30,
            job_serializer=queue.serialize,
            job_deserializer=queue.deserialize,
            ctx={CONTEXT_KEY: context},
        )
        for kind in (JobKind.BACKTEST, JobKind.OPTIMIZE)
    ]


async def _reap_forever(context: WorkerContext) -> None:
    interval = max(0.5, context.settings.job_heartbeat_timeout / 3)
    while True:
        try:
            async with context.sessionmaker() as session:
                await reap_lost_jobs(session, context.redis, context.settings)
        except Exception:  # keep reaping: a database or Redis outage passes
            log.exception("reaping lost jobs failed")
        await asyncio.sleep(interval)


async def serve(
    settings: Settings, *, stop: asyncio.Event | None = None, handle_signals: bool = False
) -> None:
    """Run the worker until ``stop`` is set (or SIGINT/SIGTERM with ``handle_signals``), or
    until an arq worker fails (its exception is raised, e.g. Redis unreachable). Running jobs
    are stopped and failed on the way out (see the module docstring)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    if handle_signals:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
    context = await WorkerContext.open(settings)
    workers = build_workers(settings, context)
    tasks: list[asyncio.Task[Any]] = [asyncio.create_task(w.async_run()) for w in workers]
    reaper = asyncio.create_task(_reap_forever(context))
    stopper = asyncio.create_task(stop.wait())
    log.info("job worker started", worker=context.worker_id,
             backtest_slots=settings.backtest_slots, optimize_slots=settings.optimize_slots)  # fmt: skip
    try:
        await asyncio.wait([*tasks, reaper, stopper], return_when=asyncio.FIRST_COMPLETED)
    finally:
        log.info("job worker stopping", worker=context.worker_id)
        for worker in workers:
            worker.allow_pick_jobs = False
        await asyncio.gather(*(w.close() for w in workers), return_exceptions=True)
        for task in (*tasks, reaper, stopper):
            task.cancel()
        results = await asyncio.gather(*tasks, reaper, stopper, return_exceptions=True)
        await context.close()
        if handle_signals:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
    for result in results[: len(tasks)]:
        if isinstance(result, Exception):
            raise result


def run_worker(settings: Settings | None = None) -> None:
    """Blocking entry point (``botfleet worker``): serve until SIGINT/SIGTERM."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings or get_settings(), handle_signals=True))


if __name__ == "__main__":
    from botfleet.logs import configure_logging

    _settings = get_settings()
    configure_logging(_settings.log_level, _settings.log_format)
    run_worker(_settings)
