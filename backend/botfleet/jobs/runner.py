"""The arq job function: run one backtest/optimize job to a final state.

:func:`run_job` claims the row (``queued -> running``; a job cancelled before start or
already reaped is skipped), makes the job directory ``<job_root>/<job_id>/`` (created
exclusively: two jobs never share results), writes the prepared ``config.json``, starts the
profile's command there, and supervises it (:class:`JobRun`): progress from output lines,
heartbeats, the cancel key, the job timeout. Every path ends ``succeeded``, ``failed`` or
``cancelled`` with a reason, and with no process of the job left.

On a worker stop (arq cancels the task) the job's tree is stopped with the profile's ladder
(optimize flushes on SIGINT) and the job is failed with reason ``"worker stopped before the
job finished"``: a rerun from scratch is the user's call, not ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from redis.exceptions import RedisError
from sqlalchemy import select, update

import botfleet.demo
from botfleet.db.models import Job, JobKind, JobStatus, utcnow
from botfleet.fleet import streams
from botfleet.jobs.context import CONTEXT_KEY, WorkerContext
from botfleet.jobs.errors import JobError
from botfleet.jobs.process import JobProcess
from botfleet.jobs.progress import JobReporter
from botfleet.jobs.state import ACTIVE, transition
from botfleet.profiles import (
    Command,
    ConfigError,
    Profile,
    UnavailableProfile,
    UnknownProfile,
    get_profile,
)
from botfleet.protocol import StopStep

__all__ = ["DEFAULT_STOP_LADDER", "JobRun", "describe_exit", "run_job"]

log = structlog.get_logger(__name__)

#: passivbot's ladder (INTERFACE.md, Signals), used when a profile names none.
DEFAULT_STOP_LADDER = [StopStep(signal="SIGINT", timeout=10), StopStep(signal="SIGTERM", timeout=5)]
_TICK = 0.2  # seconds between checks of the cancel key
_ERROR_LINE = re.compile(r"error|exception|traceback|fatal", re.IGNORECASE)


async def run_job(ctx: dict[str, Any], job_id: str) -> str:
    """arq job function (registered as ``run_job``): run job ``job_id``; returns its final
    status (``"skipped"`` when it was no longer queued)."""
    return await JobRun(ctx[CONTEXT_KEY], job_id).run()


def describe_exit(code: int, tail: list[str]) -> str:
    """Failure reason for exit code ``code`` (negative: killed by that signal), with the
    output line that best says why (see :func:`_error_line`), e.g.
    ``exited with code 2: ValueError: no data``."""
    if code < 0:
        try:
            text = f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            text = f"killed by signal {-code}"
    else:
        text = f"exited with code {code}"
    return f"{text}: {line[:500]}" if (line := _error_line(tail)) else text


def _error_line(tail: list[str]) -> str:
    """The exception line of the last Python traceback (the first unindented line after its
    header), else the last error-looking line, else the last line."""
    headers = [i for i, line in enumerate(tail) if line.startswith("Traceback (most recent")]
    if headers:
        after = [line for line in tail[headers[-1] + 1 :] if line[:1] not in (" ", "\t")]
        if after:
            return after[0].strip()
    errors = [line for line in tail if _ERROR_LINE.search(line)]
    return (errors or tail or [""])[-1].strip()


@dataclass
class _Outcome:
    code: int | None
    stop_reason: str | None = None  # cancel or timeout, decided by us
    cancelled: bool = False
    lost: bool = False  # the row is no longer ours (reaped)


class JobRun:
    """One execution of one job in this worker (see the module docstring)."""

    def __init__(self, context: WorkerContext, job_id: str) -> None:
        self.ctx = context
        self.job_id = job_id
        self.settings = context.settings
        self.maxlen = context.settings.events_stream_maxlen
        self.proc: JobProcess | None = None
        self.reporter = JobReporter(context.sessionmaker, context.redis, job_id, maxlen=self.maxlen)

    async def run(self) -> str:
        job = await self._claim()
        if job is None:
            log.info("job skipped: no longer queued", job_id=self.job_id)
            return "skipped"
        profile: Profile | None = None
        try:
            profile = get_profile(job.profile)
            await self._start(job, profile)
            outcome = await self._supervise(profile)
            return await self._finish(job, profile, outcome)
        except asyncio.CancelledError:
            await self._abort(profile, "worker stopped before the job finished", graceful=True)
            raise
        except (ConfigError, UnavailableProfile, UnknownProfile, JobError) as exc:
            log.warning("job cannot run", job_id=self.job_id, reason=str(exc))
            await self._abort(profile, str(exc), graceful=False)
            return JobStatus.FAILED
        except Exception as exc:
            log.exception("job run failed", job_id=self.job_id)
            await self._abort(profile, f"{type(exc).__name__}: {exc}", graceful=False)
            return JobStatus.FAILED
        finally:
            await self._forget_cancel()

    async def _claim(self) -> Job | None:
        now = utcnow()
        async with self.ctx.sessionmaker() as session:
            return await transition(
                session, self.ctx.redis, self.job_id, to=JobStatus.RUNNING,
                allowed_from=[JobStatus.QUEUED], maxlen=self.maxlen,
                values={"worker": self.ctx.worker_id, "attempt": Job.attempt + 1,
                        "heartbeat_at": now,
                        "job_dir": str(self.settings.job_root / self.job_id)},
            )  # fmt: skip

    async def _start(self, job: Job, profile: Profile) -> None:
        kind = JobKind(job.kind)
        job_dir = self.settings.job_root / job.id
        job_dir.mkdir(parents=True, exist_ok=False)
        if not job.simulated:
            for name in profile.shared_job_dirs:
                shared = self.settings.home.resolve() / "passivbot" / name
                shared.mkdir(parents=True, exist_ok=True)
                (job_dir / name).symlink_to(shared, target_is_directory=True)
        prepared = profile.prepare_job_config(kind, job.config, job_dir=str(job_dir))
        config_path = job_dir / "config.json"
        config_path.write_text(json.dumps(prepared, indent=2), encoding="utf-8")
        command = profile.job_command(
            kind, config_path=str(config_path), job_dir=str(job_dir), simulated=job.simulated,
            settings=self.settings,
        )  # fmt: skip
        argv, cwd, env = _resolve(command, job_dir)
        parser = profile.progress_parser(kind, prepared)
        reporter = self.reporter

        def on_line(line: str) -> None:
            reporter.on_line(line)
            try:
                update_ = parser.feed(line)
            except Exception:  # a parser bug must not kill the job
                log.exception("progress parser failed", job_id=job.id, line=line[:200])
                return
            if update_ is not None:
                reporter.on_update(update_)

        try:
            self.proc = await JobProcess.start(
                argv, cwd=cwd, env=env, job_id=job.id, output=job_dir / "output.log",
                on_line=on_line,
            )  # fmt: skip
        except OSError as exc:
            raise JobError(
                f"could not start {argv[0]!r} in {cwd}: {exc.strerror or exc}: check the "
                "profile's command setting (e.g. BOTFLEET_PASSIVBOT_V8_COMMAND)"
            ) from exc
        async with self.ctx.sessionmaker() as session:
            await session.execute(
                update(Job).where(Job.id == job.id, Job.status.in_(ACTIVE))
                .values(pid=self.proc.pid, started_at=utcnow())
                .execution_options(synchronize_session=False)
            )  # fmt: skip
            await session.commit()
        log.info("job process started", job_id=job.id, pid=self.proc.pid, argv=argv)

    async def _supervise(self, profile: Profile) -> _Outcome:
        assert self.proc is not None
        proc, ladder = self.proc, _ladder(profile)
        exit_task = asyncio.ensure_future(proc.wait())
        deadline = time.monotonic() + self.settings.job_timeout
        next_heartbeat = time.monotonic() + self.ctx.heartbeat_interval
        outcome = _Outcome(code=None)
        stopping: asyncio.Task[None] | None = None
        try:
            while True:
                await asyncio.wait([exit_task], timeout=_TICK)
                try:
                    await self.reporter.flush()
                except Exception:  # a database hiccup must not end a long job
                    log.exception("job progress not written", job_id=self.job_id)
                if exit_task.done():
                    break
                if outcome.stop_reason is None:
                    reason = await self._cancel_requested()
                    if reason is not None:
                        outcome.stop_reason, outcome.cancelled = reason, True
                    elif time.monotonic() > deadline:
                        outcome.stop_reason = f"timed out after {self.settings.job_timeout:g} s"
                    if outcome.stop_reason is not None:
                        log.info("stopping job", job_id=self.job_id, reason=outcome.stop_reason)
                        stopping = asyncio.create_task(proc.stop(ladder))
                if time.monotonic() >= next_heartbeat:
                    next_heartbeat = time.monotonic() + self.ctx.heartbeat_interval
                    try:
                        status = await self._heartbeat()
                    except Exception:  # if this lasts, the reaper fails the job; we then stop
                        log.exception("job heartbeat failed", job_id=self.job_id)
                        continue
                    if status is None:
                        log.warning("job taken from this worker (reaped?)", job_id=self.job_id)
                        proc.signal_group(signal.SIGKILL)
                        await exit_task
                        return _Outcome(code=proc.returncode, lost=True)
                    if status == JobStatus.CANCELLING and outcome.stop_reason is None:
                        outcome.stop_reason, outcome.cancelled = "cancelled by user", True
                        stopping = asyncio.create_task(proc.stop(ladder))
            outcome.code = exit_task.result()
            if stopping is not None:
                await stopping
            return outcome
        finally:
            if not exit_task.done():  # cancelled or failed: the caller stops the tree
                exit_task.cancel()

    async def _finish(self, job: Job, profile: Profile, outcome: _Outcome) -> str:
        await self.reporter.flush(force=True)
        if outcome.lost:
            return "lost"
        code = outcome.code
        values: dict[str, Any] = {"exit_code": code}
        if outcome.cancelled:
            status, reason = JobStatus.CANCELLED, outcome.stop_reason or "cancelled"
            if code == 0:  # optimize flushes its Pareto front on SIGINT: keep what it found
                with contextlib.suppress(Exception):
                    results = await asyncio.to_thread(
                        profile.read_results, JobKind(job.kind), self.settings.job_root / job.id
                    )
                    values["result"] = {"summary": results.summary, "artifacts": results.artifacts}
        elif outcome.stop_reason is not None:
            status, reason = JobStatus.FAILED, outcome.stop_reason
        elif code == 0:
            try:
                results = await asyncio.to_thread(
                    profile.read_results, JobKind(job.kind), self.settings.job_root / job.id
                )
            except Exception as exc:  # noqa: BLE001 - any reader failure is the job's reason
                status = JobStatus.FAILED
                reason = f"exited with code 0 but its results could not be read: {exc}"
            else:
                status, reason = JobStatus.SUCCEEDED, "finished"
                values |= {"progress": 1.0,
                           "result": {"summary": results.summary, "artifacts": results.artifacts}}  # fmt: skip
        else:
            assert self.proc is not None and code is not None
            status, reason = JobStatus.FAILED, describe_exit(code, list(self.proc.tail))
        async with self.ctx.sessionmaker() as session:
            done = await transition(
                session, self.ctx.redis, job.id, to=status, allowed_from=ACTIVE,
                reason=reason, values=values, maxlen=self.maxlen,
            )  # fmt: skip
        return status if done is not None else "lost"

    async def _abort(self, profile: Profile | None, reason: str, *, graceful: bool) -> None:
        """Stop the tree (ladder or SIGKILL) and fail the job with ``reason``."""
        proc = self.proc
        if proc is not None:
            if graceful and proc.returncode is None:
                await proc.stop(_ladder(profile))
            else:
                proc.signal_group(signal.SIGKILL)
                await proc.wait()
        async with self.ctx.sessionmaker() as session:
            await transition(
                session, self.ctx.redis, self.job_id, to=JobStatus.FAILED, allowed_from=ACTIVE,
                reason=reason, maxlen=self.maxlen,
                values={"exit_code": proc.returncode if proc else None},
            )  # fmt: skip

    async def _heartbeat(self) -> str | None:
        """Refresh ``heartbeat_at``; returns the job's status, ``None`` if it is not ours."""
        async with self.ctx.sessionmaker() as session:
            result = await session.execute(
                update(Job)
                .where(Job.id == self.job_id, Job.status.in_(ACTIVE),
                       Job.worker == self.ctx.worker_id)
                .values(heartbeat_at=utcnow())
                .execution_options(synchronize_session=False)
            )  # fmt: skip
            await session.commit()
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None
            return (await session.execute(select(Job.status).where(Job.id == self.job_id))).scalar()

    async def _cancel_requested(self) -> str | None:
        try:
            value = await self.ctx.redis.get(streams.job_cancel(self.job_id))
        except RedisError as exc:  # the heartbeat's status check covers a Redis outage
            log.warning("cancel key unreadable", job_id=self.job_id, error=str(exc))
            return None
        if value is None:
            return None
        return str(value) or "cancelled by user"

    async def _forget_cancel(self) -> None:
        try:
            await self.ctx.redis.delete(streams.job_cancel(self.job_id))
        except RedisError:
            pass  # it expires on its own


def _ladder(profile: Profile | None) -> list[StopStep]:
    return list(getattr(profile, "stop_ladder", None) or DEFAULT_STOP_LADDER)


def _resolve(command: Command, job_dir: Path) -> tuple[list[str], Path, dict[str, str]]:
    """Replace the placeholders (botfleet.protocol.PLACEHOLDERS) in argv, cwd and env."""
    values = {
        "{python}": sys.executable,
        "{demo_v7_root}": str(Path(botfleet.demo.__file__).parent / "v7root"),
        "{instance_dir}": str(job_dir),
    }

    def fill(text: str) -> str:
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        return text

    argv = [fill(word) for word in command.argv]
    cwd = Path(fill(command.cwd)) if command.cwd else job_dir
    env = {**os.environ, **{k: fill(v) for k, v in command.env.items()}, "PYTHONUNBUFFERED": "1"}
    return argv, cwd, env
