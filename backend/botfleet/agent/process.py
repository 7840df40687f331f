"""Operating-system side of a bot process: start it in its own session from an argv list,
recognise it again after an agent restart, tell how it ended, signal its process group.

Linux only (pidfd, /proc).
"""

from __future__ import annotations

import asyncio
import functools
import os
import select
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil

from botfleet.agent.layout import Command

__all__ = [
    "SPAWN_THREADS",
    "Exit",
    "Spawned",
    "Spawner",
    "create_time",
    "find_session_leader",
    "group_alive",
    "has_exited",
    "is_same_process",
    "one_malloc_arena",
    "reap",
    "signal_group",
    "spawn",
    "spawn_timed",
    "trim_heap",
]


def spawn(command: Command, stdout_fd: int, pass_fd: int) -> int:
    """Start ``command`` (argv list, never a shell) in a new session (so its process group id
    is its pid), stdin from /dev/null, stdout and stderr to ``stdout_fd``, with ``pass_fd``
    inherited as the same fd number. Returns the pid. Raises OSError (e.g. FileNotFoundError
    for a missing program or cwd, PermissionError).

    The caller reaps the child itself (pidfd + :func:`reap`); the ``Popen`` object is marked
    done so that the subprocess module never reaps it behind our back."""
    proc = subprocess.Popen(  # an argv list, never a shell
        command.argv,
        cwd=command.cwd,
        env=command.env,
        stdin=subprocess.DEVNULL,
        stdout=stdout_fd,
        stderr=stdout_fd,
        pass_fds=(pass_fd,),
        start_new_session=True,
        close_fds=True,
    )
    proc.returncode = 0  # ours to reap with os.waitpid (see docstring)
    return proc.pid


SPAWN_THREADS = 32  # spawns in flight at once (Spawner)
SPAWN_IDLE = 5.0  # seconds without a spawn before the Spawner's threads end


@dataclass(frozen=True, slots=True)
class Spawned:
    """A process :class:`Spawner` started: ``pid``, and when ``spawn`` returned, as
    ``time.time()`` (``wall``) and ``time.monotonic()`` (``mono``) seconds."""

    pid: int
    wall: float
    mono: float


def spawn_timed(command: Command, stdout_fd: int, pass_fd: int) -> Spawned:
    """:func:`spawn`, with when it returned. Raises as :func:`spawn`."""
    pid = spawn(command, stdout_fd, pass_fd)
    return Spawned(pid, time.time(), time.monotonic())


class Spawner:
    """Runs :func:`spawn` on up to ``threads`` worker threads, for bursts of starts.

    Why: ``Popen`` returns only once the child has exec'd (CPython's vfork child, or its
    error pipe), and with the bots already started busy on every core that new child waits
    its turn for a CPU, the spawner idle meanwhile. One spawn after another, 100 stand-ins
    took 1.26-1.31 s to start here (a bare Popen loop); 32 in flight, 0.34-0.45 s
    (docs/benchmarks.md, "What changed this session"). What is submitted during one pass of the event loop goes
    to the threads at its end: a command for many instances prepares every start before the
    first bot's own start-up takes the cores. The threads exist only during a burst: they end
    ``idle`` seconds after the last spawn. Create and use it on the agent's event loop."""

    def __init__(self, threads: int = SPAWN_THREADS, idle: float = SPAWN_IDLE) -> None:
        self.threads, self.idle = threads, idle
        self._pool: ThreadPoolExecutor | None = None
        self._queued: list[tuple[asyncio.Future[Spawned], Command, int, int]] = []
        self._in_flight = 0
        self._idle_timer: asyncio.TimerHandle | None = None

    def submit(self, command: Command, stdout_fd: int, pass_fd: int) -> asyncio.Future[Spawned]:
        """:func:`spawn` on a worker thread, at the end of this pass of the event loop; the
        future gives a :class:`Spawned` or raises spawn's OSError. The fds must stay open
        until the future is done."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Spawned] = loop.create_future()
        if not self._queued:
            loop.call_soon(self._flush)
        self._queued.append((future, command, stdout_fd, pass_fd))
        return future

    def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="spawn")
        queued, self._queued = self._queued, []
        for future, command, stdout_fd, pass_fd in queued:
            if future.cancelled():
                continue
            self._in_flight += 1
            work = loop.run_in_executor(self._pool, spawn_timed, command, stdout_fd, pass_fd)
            work.add_done_callback(functools.partial(self._done, future))

    def _done(self, future: asyncio.Future[Spawned], work: asyncio.Future[Spawned]) -> None:
        if not future.cancelled():
            if (exc := work.exception()) is not None:
                future.set_exception(exc)
            else:
                future.set_result(work.result())
        self._in_flight -= 1
        if self._in_flight == 0 and self._pool is not None:
            self._idle_timer = asyncio.get_running_loop().call_later(self.idle, self.close)

    def close(self) -> None:
        """End the threads (after the spawns in flight; does not wait), then give the memory
        the burst freed back to the system (:func:`trim_heap`)."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
            trim_heap()


def one_malloc_arena() -> None:
    """Make every thread allocate from glibc's main malloc arena (``mallopt(M_ARENA_MAX, 1)``,
    man 3 mallopt; the ``MALLOC_ARENA_MAX`` environment variable set from inside). By default
    each new thread may get an arena of its own (up to 8 per core), and the :class:`Spawner`'s
    32 threads kept their arenas' pages after a burst: the idle agent after a bulk start of 100
    was 0.25 MiB smaller with one arena (47.7-47.8 against 48.0 MiB,
    scripts/bench/agent_resources.py). Call it before any thread starts; a no-op where the
    C library has no ``mallopt`` (musl)."""
    m_arena_max = -8  # malloc.h
    _libc_call("mallopt", m_arena_max, 1)


def trim_heap() -> None:
    """Return the C heap's free pages to the system: glibc's ``malloc_trim(0)`` (man 3
    malloc_trim; it also releases free pages inside the heap and the threads' arenas); a no-op
    where the C library has none (musl). glibc keeps what it freed for reuse: after a bulk
    start of 100 passivbot bots (their configs ~28 KB each, 32 spawn threads) the idle agent
    stayed 3 MiB larger without this (51.2 against 48.2 MiB with the 100 starts in one
    command, scripts/bench/agent_resources.py)."""
    _libc_call("malloc_trim", 0)


def _libc_call(name: str, *args: int) -> None:
    """Call the C library's function ``name`` with int ``args`` (ctypes), or nothing where it
    has none (glibc's malloc tuning functions are missing from musl)."""
    import ctypes  # only here: 0.5 MiB of RSS, paid by the agent alone

    try:
        getattr(ctypes.CDLL(None), name)(*args)
    except (OSError, AttributeError):
        pass


def has_exited(pidfd: int) -> bool:
    """True when the process of ``pidfd`` has ended (its pidfd is readable; not reaped)."""
    return bool(select.select([pidfd], [], [], 0)[0])


def create_time(pid: int) -> float | None:
    """psutil's start time of ``pid`` (seconds since the epoch) or None if it is gone."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def is_same_process(pid: int, started: float) -> bool:
    """True when ``pid`` is alive, not a zombie, and started at ``started`` (psutil create
    time, compared within 10 ms): guards against a reused pid (TRAPS.md: kill -0 and
    psutil.pid_exists are true for zombies)."""
    try:
        proc = psutil.Process(pid)
        return (
            proc.status() != psutil.STATUS_ZOMBIE and abs(proc.create_time() - started) < 0.01
        )
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


@dataclass(frozen=True, slots=True)
class Exit:
    """How a process ended: ``code`` (exit status) or ``signal`` (name, e.g. "SIGKILL"), both
    None when unknown (a process adopted from a previous agent is not our child)."""

    code: int | None
    signal: str | None

    @property
    def reason(self) -> str:
        if self.signal is not None:
            return f"killed by {self.signal}"
        if self.code is not None:
            return f"exited with code {self.code}"
        return "exited (exit code unknown: adopted process, not the agent's child)"


def reap(pid: int) -> Exit:
    """Collect the exit status of ``pid`` after its pidfd reported the exit. For a process
    that is not our child (adopted) the status is unknown."""
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return Exit(None, None)
    if got == 0:
        return Exit(None, None)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            return Exit(None, signal.Signals(sig).name)
        except ValueError:
            return Exit(None, str(sig))
    return Exit(os.waitstatus_to_exitcode(status), None)


def signal_group(pgid: int, sig: signal.Signals) -> bool:
    """Send ``sig`` to process group ``pgid``; False when the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def group_alive(pgid: int) -> bool:
    """True while a process that is not a zombie is in group ``pgid`` (a scan of /proc: used
    while stopping, to wait for the grandchildren too)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            data = Path(entry.path, "stat").read_bytes()
        except OSError:
            continue
        fields = data[data.rfind(b")") + 2 :].split(b" ", 3)
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def find_session_leader(stdout: Path) -> int | None:
    """The pid of a session leader (a bot as :func:`spawn` starts it) whose stdout is
    ``stdout`` (the instance's named pipe), or None. It finds a bot that an agent started
    and was killed before it recorded the pid. Reads ``/proc/<pid>/fd/1`` of every process
    (Linux; other users' processes are skipped)."""
    target = os.path.realpath(stdout)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            if os.readlink(f"/proc/{pid}/fd/1") == target and os.getsid(pid) == pid:
                return pid
        except OSError:  # gone, or not ours to look at
            continue
    return None
