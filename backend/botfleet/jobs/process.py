"""A job's process tree: start it in its own session, copy its output to ``output.log`` while
handing each line on, stop it with a signal ladder, and kill whatever is left of its group.

The child runs from an argv list (no shell), with ``start_new_session=True`` so that it and
every process it forks (optimize's worker pool) share one process group whose id is the
child's pid, and with ``PR_SET_PDEATHSIG`` = SIGKILL so that a worker killed outright takes the
direct child with it (the reaper kills the rest of the group). Every process of a job carries
``BOTFLEET_JOB_ID`` in its environment; nothing is killed by pid alone without checking it
(pids are reused).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil

from botfleet.protocol import StopStep

__all__ = ["JOB_ID_ENV", "JobProcess", "job_processes", "kill_job_processes"]

#: Environment variable naming the job in each of its processes.
JOB_ID_ENV = "BOTFLEET_JOB_ID"

_READ_CHUNK = 64 * 1024
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class JobProcess:
    """One running job process. Build with :meth:`start`."""

    def __init__(self, proc: asyncio.subprocess.Process, job_id: str, reader: asyncio.Task[None],
                 tail: deque[str]) -> None:  # fmt: skip
        self._proc = proc
        self.job_id = job_id
        self.pid = proc.pid
        self._reader = reader
        self.tail = tail  #: the last non-empty output lines (for failure reasons)

    @classmethod
    async def start(
        cls,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: dict[str, str],
        job_id: str,
        output: Path,
        on_line: Callable[[str], None],
    ) -> JobProcess:
        """Start ``argv`` in ``cwd`` with exactly ``env`` (plus ``BOTFLEET_JOB_ID``), stdout
        and stderr merged, appended to ``output`` and passed line by line (text, no newline)
        to ``on_line``. The pipe is read continuously, so the child never blocks on a full
        pipe however slow ``on_line`` callers downstream are. Raises ``OSError`` when the
        program cannot be started."""
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env={**env, JOB_ID_ENV: job_id},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        tail: deque[str] = deque(maxlen=20)
        assert proc.stdout is not None
        reader = asyncio.create_task(_copy_output(proc.stdout, output, on_line, tail))
        return cls(proc, job_id, reader, tail)

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    async def wait(self) -> int:
        """Wait for the child to exit, kill what is left of its group, read its output to the
        end; returns its exit code (negative: killed by that signal)."""
        code = await self._proc.wait()
        self.kill_rest()  # nothing of the job outlives its leader; also closes the pipe
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._reader), timeout=5.0)
        self._reader.cancel()
        return code

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to the whole process group (nothing if it is gone)."""
        if self._proc.returncode is None:
            # The leader is not reaped yet, so its pid (= the group id) cannot be reused.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signum)
        else:
            kill_job_processes(self.job_id, self.pid, signum)

    async def stop(self, ladder: Sequence[StopStep]) -> None:
        """Stop the whole tree: each step's signal to the group, then wait up to its timeout
        for the leader to exit; SIGKILL to the group when the ladder is exhausted."""
        for step in ladder:
            self.signal_group(signal.Signals[step.signal])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._proc.wait()), step.timeout)
                break
        self.signal_group(signal.SIGKILL)
        await self._proc.wait()

    def kill_rest(self) -> None:
        """SIGKILL whatever of the job's group outlived the leader (optimize's pool)."""
        self.signal_group(signal.SIGKILL)


async def _copy_output(
    stream: asyncio.StreamReader, output: Path, on_line: Callable[[str], None], tail: deque[str]
) -> None:
    pending = b""
    with output.open("ab", buffering=0) as file:
        while chunk := await stream.read(_READ_CHUNK):
            file.write(chunk)
            *lines, pending = (pending + chunk).split(b"\n")
            for raw in lines:
                _deliver(raw, on_line, tail)
            if len(pending) > _READ_CHUNK:  # a line without end: hand on what we have
                _deliver(pending, on_line, tail)
                pending = b""
        if pending:
            _deliver(pending, on_line, tail)


def _deliver(raw: bytes, on_line: Callable[[str], None], tail: deque[str]) -> None:
    line = raw.decode("utf-8", errors="replace").rstrip("\r")
    if line.strip():
        tail.append(line)
    on_line(line)


def job_processes(job_id: str, pgid: int | None = None) -> list[psutil.Process]:
    """Live processes (zombies excluded) of job ``job_id`` on this machine: those whose
    environment carries ``BOTFLEET_JOB_ID=job_id``, limited to process group ``pgid`` when
    given. Processes we may not inspect are skipped."""
    found = []
    for proc in psutil.process_iter():
        try:
            if pgid is not None and os.getpgid(proc.pid) != pgid:
                continue
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if proc.environ().get(JOB_ID_ENV) == job_id:
                found.append(proc)
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return found


def kill_job_processes(job_id: str, pgid: int | None, signum: int = signal.SIGKILL) -> int:
    """Send ``signum`` to every live process of job ``job_id`` (see :func:`job_processes`);
    returns how many were signalled."""
    count = 0
    for proc in job_processes(job_id, pgid):
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signum)
            count += 1
    return count
