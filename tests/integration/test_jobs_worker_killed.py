"""A worker process killed outright (SIGKILL) mid-job: the job does not stay ``running``, and
nothing of its process tree survives. The worker is a real subprocess
(``python -m botfleet.jobs.worker``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from botfleet.db import JobStatus
from botfleet.jobs import reap_lost_jobs
from tests.integration.test_jobs_support import (
    JobsEnv,
    alive,
    jobs_env,
    live_job_processes,
    running_worker,
    wait_until,
)

__all__ = ["jobs_env"]  # the fixture, imported for pytest


def _start_worker(env: JobsEnv, log: Path) -> subprocess.Popen[bytes]:
    settings = env.settings
    variables = {
        **os.environ,
        "BOTFLEET_HOME": str(settings.home),
        "BOTFLEET_DATABASE_URL": settings.database,
        "BOTFLEET_REDIS_URL": str(settings.redis_url),
        "BOTFLEET_JOB_HEARTBEAT_TIMEOUT": str(settings.job_heartbeat_timeout),
        "BOTFLEET_OPTIMIZE_SLOTS": "1",
        "BOTFLEET_DEMO_JOB_SECONDS": "300",
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "botfleet.jobs.worker"], env=variables, stdout=out,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip


@pytest.mark.parametrize("reaper", ["reap_lost_jobs", "a new worker"])
async def test_a_killed_worker_leaves_no_job_running_and_no_process_behind(
    jobs_env: JobsEnv, tmp_path: Path, reaper: str
) -> None:
    jobs_env.settings = jobs_env.settings.model_copy(update={"job_heartbeat_timeout": 2.0})
    worker = _start_worker(jobs_env, tmp_path / "worker.log")
    try:
        job = await jobs_env.create("optimize", overrides={"optimize.iters": 1_000_000})

        async def tree() -> list | None:
            if worker.poll() is not None:
                raise AssertionError((tmp_path / "worker.log").read_text())
            running = await jobs_env.job(job.id)
            procs = live_job_processes(job.id) if running.pid else []
            return procs if len(procs) >= 2 else None

        procs = await wait_until(tree, what="the job's optimizer and pool to run")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()

    assert (await jobs_env.job(job.id)).status == JobStatus.RUNNING  # nobody has noticed yet
    if reaper == "reap_lost_jobs":

        async def reaped() -> list[str]:
            async with jobs_env.sessionmaker() as session:
                return await reap_lost_jobs(session, jobs_env.redis, jobs_env.settings)

        assert await wait_until(reaped, what="the reaper to fail the job") == [job.id]
        done = await jobs_env.job(job.id)
    else:
        async with running_worker(jobs_env.settings):
            done = await jobs_env.finished(job.id)

    assert done.status == JobStatus.FAILED
    assert done.reason.startswith("worker lost: no heartbeat for 2 s")

    async def gone() -> bool:
        return not alive(procs) and not live_job_processes(job.id)

    await wait_until(gone, what="every process of the job to be gone")
