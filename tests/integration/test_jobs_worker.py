"""Jobs run by a real arq worker (in this event loop) on real Redis and SQL, with the passivbot
stand-in (or a small failing program) as the job process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from botfleet.db import JobStatus
from botfleet.fleet import streams
from botfleet.jobs import ArtifactError, ArtifactNotFound, artifact_path, cancel_job, job_events
from tests.integration.test_jobs_support import (
    JobsEnv,
    alive,
    jobs_env,
    live_job_processes,
    running_worker,
    wait_until,
)

__all__ = ["jobs_env"]  # the fixture, imported for pytest


def _failing_program(tmp_path: Path, body: str) -> str:
    """A stand-in for the ``passivbot`` console script running ``body`` (sh)."""
    script = tmp_path / "fake-passivbot"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


async def test_backtest_succeeds_with_metrics_and_downloadable_artifacts(jobs_env: JobsEnv) -> None:
    async with running_worker(jobs_env.settings):
        job = await jobs_env.create("backtest")
        done = await jobs_env.finished(job.id)

    assert done.status == JobStatus.SUCCEEDED, done.reason
    assert done.exit_code == 0 and done.progress == 1.0
    summary, artifacts = done.result["summary"], done.result["artifacts"]
    assert isinstance(summary["adg"], float) and "drawdown_worst" in summary
    analysis = next(a for a in artifacts if a.endswith("analysis.json"))
    assert artifact_path(done, analysis).is_file()
    assert artifact_path(done, "output.log").read_text().count("Backtesting") >= 1
    async with jobs_env.sessionmaker() as session:
        events = await job_events(session, job.id)
    statuses = [e.data["status"] for e in events if e.kind == "job.status"]
    assert statuses == ["queued", "running", "succeeded"]
    assert any(e.kind == "job.progress" and e.data["phase"] for e in events)
    live = await jobs_env.stream(job.id)
    assert [e["data"]["status"] for e in live if e["kind"] == "job.status"] == statuses
    assert any(e["kind"] == "job.output" for e in live)
    # fleet-wide stream carries the transitions too
    fleet = await jobs_env.redis.xrange(streams.EVENTS)
    assert sum(job.id in fields["data"] for _, fields in fleet) >= 3


async def test_artifact_names_outside_the_job_dir_are_refused(jobs_env: JobsEnv) -> None:
    async with running_worker(jobs_env.settings):
        job = await jobs_env.create("backtest")
        done = await jobs_env.finished(job.id)
    assert done.status == JobStatus.SUCCEEDED, done.reason
    outside = Path(done.job_dir).parent / "secret.txt"
    outside.write_text("not yours")
    os.symlink(outside, Path(done.job_dir) / "link.txt")
    for name in ("../secret.txt", "/etc/passwd", "backtests/../../secret.txt", "link.txt", ""):
        with pytest.raises(ArtifactError):
            artifact_path(done, name)
    with pytest.raises(ArtifactNotFound):
        artifact_path(done, "backtests/nothing-here.csv")


async def test_two_jobs_on_the_same_config_never_share_results(jobs_env: JobsEnv) -> None:
    async with running_worker(jobs_env.settings):
        first = await jobs_env.create("backtest")
        second = await jobs_env.create("backtest")
        a, b = await jobs_env.finished(first.id), await jobs_env.finished(second.id)

    assert a.status == b.status == JobStatus.SUCCEEDED
    assert a.job_dir != b.job_dir
    files_a = {artifact_path(a, name) for name in a.result["artifacts"]}
    files_b = {artifact_path(b, name) for name in b.result["artifacts"]}
    assert files_a and files_b and not files_a & files_b
    assert all(p.is_relative_to(Path(a.job_dir)) for p in files_a)
    assert all(p.is_relative_to(Path(b.job_dir)) for p in files_b)


async def test_optimize_reports_rising_progress_and_cancel_kills_the_whole_tree(
    jobs_env: JobsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOTFLEET_DEMO_JOB_SECONDS", "120")
    async with running_worker(jobs_env.settings):
        job = await jobs_env.create("optimize", overrides={"optimize.iters": 100_000})

        async def progress() -> list[dict] | None:
            events = [
                e["data"] for e in await jobs_env.stream(job.id) if e["kind"] == "job.progress"
            ]
            sized = [e for e in events if e["fraction"] and "front_size" in e["detail"]]
            return sized if len(sized) >= 3 else None

        updates = await wait_until(progress, what="three optimize progress events")
        fractions = [u["fraction"] for u in updates]
        assert fractions == sorted(fractions) and fractions[-1] > fractions[0]
        assert all(u["detail"]["front_size"] >= 1 for u in updates)
        assert updates[-1]["detail"]["iters"] == 100_000
        running = await jobs_env.job(job.id)
        assert 0 < running.progress < 1 and running.progress_detail["front_size"] >= 1
        tree = live_job_processes(job.id)
        assert len(tree) >= 2  # the optimizer and its pool workers
        assert {p.pid for p in tree} >= {running.pid}

        async with jobs_env.sessionmaker() as session:
            cancelling = await cancel_job(session, jobs_env.redis, job.id)
        assert cancelling.status in (JobStatus.CANCELLING, JobStatus.CANCELLED)
        done = await jobs_env.status(job.id, JobStatus.CANCELLED)

    assert done.reason == "cancelled by user"
    assert alive(tree) == [] and live_job_processes(job.id) == []
    # SIGINT let the optimizer flush its Pareto front: it is kept
    assert done.result is not None and done.result["artifacts"]
    assert not await jobs_env.redis.exists(streams.job_cancel(job.id))


async def test_one_optimize_slot_runs_optimizations_one_after_the_other(
    jobs_env: JobsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOTFLEET_DEMO_JOB_SECONDS", "1.5")
    async with running_worker(jobs_env.settings):
        first = await jobs_env.create("optimize", overrides={"optimize.iters": 300})
        second = await jobs_env.create("optimize", overrides={"optimize.iters": 300})
        a, b = await jobs_env.finished(first.id), await jobs_env.finished(second.id)

    assert a.status == b.status == JobStatus.SUCCEEDED, (a.reason, b.reason)
    assert b.started_at > a.finished_at
    async with jobs_env.sessionmaker() as session:
        events = [*await job_events(session, first.id), *await job_events(session, second.id)]
    order = sorted((e.id, e.job_id, e.data["status"]) for e in events if e.kind == "job.status")
    # the second left the queue only after the first had finished
    assert [(job_id, status) for _, job_id, status in order if status != "queued"] == [
        (first.id, "running"), (first.id, "succeeded"), (second.id, "running"),
        (second.id, "succeeded"),
    ]  # fmt: skip
    assert a.result["summary"] and b.result["artifacts"]


async def test_a_process_exiting_non_zero_fails_the_job_with_its_code(
    jobs_env: JobsEnv, tmp_path: Path
) -> None:
    program = _failing_program(
        tmp_path, 'echo "Traceback (most recent call last):"\necho "ValueError: no market data" >&2\n'
        'echo "bye"\nexit 3'
    )  # fmt: skip
    settings = jobs_env.settings.model_copy(update={"passivbot_v8_command": program})
    async with running_worker(settings):
        job = await jobs_env.create("backtest", simulated=False)
        done = await jobs_env.finished(job.id)

    assert done.status == JobStatus.FAILED
    assert done.exit_code == 3
    assert done.reason == "exited with code 3: ValueError: no market data"


async def test_a_job_that_exits_zero_without_results_fails(
    jobs_env: JobsEnv, tmp_path: Path
) -> None:
    settings = jobs_env.settings.model_copy(
        update={"passivbot_v8_command": _failing_program(tmp_path, "exit 0")}
    )
    async with running_worker(settings):
        job = await jobs_env.create("backtest", simulated=False)
        done = await jobs_env.finished(job.id)

    assert done.status == JobStatus.FAILED
    assert "results could not be read" in done.reason


async def test_a_missing_program_fails_the_job_saying_which_setting_to_fix(
    jobs_env: JobsEnv, tmp_path: Path
) -> None:
    settings = jobs_env.settings.model_copy(
        update={"passivbot_v8_command": str(tmp_path / "no-such-passivbot")}
    )
    async with running_worker(settings):
        job = await jobs_env.create("backtest", simulated=False)
        done = await jobs_env.finished(job.id)

    assert done.status == JobStatus.FAILED
    assert done.reason.startswith(f"could not start '{tmp_path / 'no-such-passivbot'}'")
    assert "BOTFLEET_PASSIVBOT_V8_COMMAND" in done.reason


async def test_a_job_over_its_time_limit_is_stopped_and_failed(
    jobs_env: JobsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOTFLEET_DEMO_JOB_SECONDS", "120")
    settings = jobs_env.settings.model_copy(update={"job_timeout": 1.0})
    async with running_worker(settings):
        job = await jobs_env.create("optimize", overrides={"optimize.iters": 100_000})
        done = await jobs_env.finished(job.id)

    assert done.status == JobStatus.FAILED
    assert done.reason == "timed out after 1 s"
    assert live_job_processes(job.id) == []


async def test_stopping_the_worker_fails_its_running_job_and_stops_the_tree(
    jobs_env: JobsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOTFLEET_DEMO_JOB_SECONDS", "120")
    async with running_worker(jobs_env.settings):
        job = await jobs_env.create("optimize", overrides={"optimize.iters": 100_000})

        async def tree() -> list | None:
            running = await jobs_env.job(job.id)
            procs = live_job_processes(job.id) if running.pid else []
            return procs if len(procs) >= 2 else None

        procs = await wait_until(tree, what="the optimizer and its pool to start")

    done = await jobs_env.job(job.id)
    assert done.status == JobStatus.FAILED
    assert done.reason == "worker stopped before the job finished"
    assert alive(procs) == [] and live_job_processes(job.id) == []
