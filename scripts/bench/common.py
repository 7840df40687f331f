"""What every benchmark scenario shares: the bot definition, start stamps, percentiles,
process watching and machine facts.

Start stamps: every bot of the bench runs with ``PYTHONPATH=scripts/bench/stamp`` so that
Python imports ``stamp/sitecustomize.py`` while it starts, which appends one line
``<bot name> <pid> <time.time()>`` to ``BENCH_STAMP_FILE``. The bot program itself is the
unchanged passivbot stand-in (``python -m botfleet.demo live CONFIG``), and the same env is
given under botfleet, supervisord and PM2, so "the new process started" is measured the same
way for all three (the stamp is taken a few ms into interpreter start-up; see
:func:`interpreter_baseline` for that cost).
"""

from __future__ import annotations

import os
import platform
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

__all__ = [
    "BENCH_DIR",
    "BotDef",
    "CONFIG_FILE",
    "ExitWatch",
    "PYTHON",
    "ROOT",
    "STAMP_DIR",
    "StampLog",
    "cpu_window",
    "interpreter_baseline",
    "machine_facts",
    "percentiles",
    "wait_exit",
    "wait_until",
]

ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = Path(__file__).resolve().parent
STAMP_DIR = BENCH_DIR / "stamp"
PYTHON = str(ROOT / ".venv" / "bin" / "python")
#: A real passivbot v8 example config (public-domain data kept in tests/data).
CONFIG_FILE = ROOT / "tests" / "data" / "passivbot" / "v8" / "btc_long.json"


@dataclass
class BotDef:
    """One bot as every tool runs it: ``argv`` (absolute program path first), extra ``env``
    (added to the tool's own environment), and supervision settings in Supervisor's words
    (``startsecs`` seconds, ``autorestart`` always|never). ``botfleet_profile`` says how
    botfleet creates it: ``passivbot-v8`` (simulated: argv is then the stand-in's own) or
    ``custom`` (argv as given); ``host`` the botfleet host it runs on (None: ``local``)."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    startsecs: float = 1.0
    autorestart: bool = True
    botfleet_profile: str = "passivbot-v8"
    host: str | None = None


def bot_env(stamps: Path, name: str, **extra: str) -> dict[str, str]:
    """The environment every tool gives a bench bot: stamp hook, unbuffered Python, no
    passivbot ``logs/{user}.log`` file (only the supervisor's capture is measured), and a bot
    that exits at once on SIGINT (``BOTFLEET_DEMO_SHUTDOWN_SECONDS=0``; the stand-in's default
    0.2 s stands for passivbot cancelling its orders, a wait any supervisor has to sit out and
    the issue's stop target excludes: "for bots that exit on SIGINT")."""
    return {
        "PYTHONPATH": str(STAMP_DIR),
        "PYTHONUNBUFFERED": "1",
        "BENCH_STAMP_FILE": str(stamps),
        "BENCH_BOT": name,
        "BOTFLEET_DEMO_LOG_FILE": "0",
        "BOTFLEET_DEMO_SHUTDOWN_SECONDS": "0",
        **extra,
    }


def standin_argv() -> list[str]:
    """``python -m botfleet.demo live CONFIG``: what botfleet's passivbot-v8 simulated
    profile runs (``{python}`` = the agent's interpreter, the same venv)."""
    return [PYTHON, "-m", "botfleet.demo", "live", str(CONFIG_FILE)]


class StampLog:
    """Reader of a ``BENCH_STAMP_FILE``: ``{name: [(pid, time), ...]}`` in file order,
    refreshed incrementally by :meth:`poll`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()
        self._offset = 0
        self._rest = b""
        self.by_name: dict[str, list[tuple[int, float]]] = {}

    def poll(self) -> int:
        """Read new stamps; returns how many arrived."""
        with self.path.open("rb") as f:
            f.seek(self._offset)
            data = f.read()
        self._offset += len(data)
        data = self._rest + data
        *lines, self._rest = data.split(b"\n")
        for line in lines:
            name, pid, t = line.decode().split(" ")
            self.by_name.setdefault(name, []).append((int(pid), float(t)))
        return len(lines)

    def latest(self, name: str) -> tuple[int, float] | None:
        got = self.by_name.get(name)
        return got[-1] if got else None

    def wait_new(self, name: str, not_pid: int | None, timeout: float) -> tuple[int, float]:
        """Poll (every 5 ms) until ``name`` has a stamp from a pid other than ``not_pid``.
        Raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            got = self.latest(name)
            if got is not None and got[0] != not_pid:
                return got
            if time.monotonic() > deadline:
                raise TimeoutError(f"no new start stamp of {name} within {timeout} s")
            time.sleep(0.005)


def wait_exit(pid: int, timeout: float) -> float | None:
    """Wait for ``pid`` (any process, not only a child) to exit using a pidfd; returns
    ``time.time()`` right after the exit was seen, None on timeout or if it is gone already."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(timeout * 1000):
            return None
        return time.time()
    finally:
        os.close(fd)


class ExitWatch:
    """Exit times of a set of processes (any, not only children), seen through pidfds by a
    thread that sleeps in ``poll`` (no /proc polling competing with the bots for the cores).
    Open it before the processes are told to exit; :meth:`wait` returns ``{pid: time.time()
    right after its exit was seen}`` (a zombie has exited). A pid already gone when watched
    gets the time the watch was opened."""

    def __init__(self, pids: list[int]) -> None:
        self.exits: dict[int, float] = {}
        self._fds: dict[int, int] = {}
        opened = time.time()
        for pid in pids:
            try:
                self._fds[os.pidfd_open(pid)] = pid
            except ProcessLookupError:
                self.exits[pid] = opened
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        poller = select.poll()
        for fd in self._fds:
            poller.register(fd, select.POLLIN)
        while self._fds:
            for fd, _ in poller.poll():
                self.exits[self._fds.pop(fd)] = time.time()
                poller.unregister(fd)
                os.close(fd)

    def wait(self, timeout: float) -> dict[int, float]:
        """Wait until every watched process has exited. Raises TimeoutError."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"timed out after {timeout} s waiting for {len(self._fds)} processes to exit")
        return dict(self.exits)


def wait_until(predicate: Any, timeout: float, interval: float = 0.02, what: str = "condition") -> Any:
    """Call ``predicate()`` until truthy (returned); raises TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def percentiles(values: list[float], scale: float = 1000.0) -> dict[str, float]:
    """``{"n", "p50", "p95", "p99", "max", "min"}`` of ``values`` times ``scale`` (default:
    seconds to milliseconds), nearest-rank percentiles, rounded to 0.1."""
    if not values:
        return {"n": 0}
    ordered = sorted(v * scale for v in values)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))]

    return {"n": len(ordered), "min": round(ordered[0], 1), "p50": round(rank(50), 1),
            "p95": round(rank(95), 1), "p99": round(rank(99), 1), "max": round(ordered[-1], 1)}


def cpu_window(pids: dict[str, int], seconds: float) -> dict[str, dict[str, float]]:
    """CPU used by each named process (its own user+system time, not its children's) over a
    window of ``seconds``, as percent of one core, and its RSS in MB (max of samples taken
    every 5 s). ``{name: {"cpu_percent", "rss_mb"}}`` plus ``"window_s"``."""
    procs = {n: psutil.Process(p) for n, p in pids.items()}
    before = {n: p.cpu_times() for n, p in procs.items()}
    rss = dict.fromkeys(procs, 0)
    start = time.monotonic()
    while True:
        for n, p in procs.items():
            rss[n] = max(rss[n], p.memory_info().rss)
        left = seconds - (time.monotonic() - start)
        if left <= 0:
            break
        time.sleep(min(5.0, left))
    elapsed = time.monotonic() - start
    out: dict[str, Any] = {"window_s": round(elapsed, 1)}
    for n, p in procs.items():
        a, b = p.cpu_times(), before[n]
        used = (a.user + a.system) - (b.user + b.system)
        out[n] = {"cpu_percent": round(100 * used / elapsed, 2), "rss_mb": round(rss[n] / 2**20, 1)}
    return out


def interpreter_baseline(stamps: Path, samples: int = 20) -> dict[str, float]:
    """How long the venv's Python takes from ``Popen`` to the start stamp (the part of every
    "process started" figure that is Python's and not the supervisor's), in ms."""
    log = StampLog(stamps)
    got = []
    for i in range(samples):
        env = {**os.environ, **bot_env(stamps, f"baseline{i}")}
        t0 = time.time()
        proc = subprocess.Popen([PYTHON, "-c", "pass"], env=env)
        _, t = log.wait_new(f"baseline{i}", None, 10)
        got.append(t - t0)
        proc.wait()
    return percentiles(got)


def machine_facts() -> dict[str, Any]:
    """nproc, CPU model, kernel, Python version, date (UTC), the checkout's commit."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "botfleet_commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                          capture_output=True, text=True).stdout.strip(),
    }
