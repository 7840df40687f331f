"""The agent's Spawner with real processes: a burst is spawned on worker threads, each result
says when its process started, a missing program is an OSError of its own, and the threads
end once the burst is over."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from botfleet.agent import process
from botfleet.agent.layout import Command

SLEEPER = "import time\ntime.sleep(60)\n"


def _spawn_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("spawn")]


def _command(tmp_path: Path, argv: list[str]) -> Command:
    return Command(argv=argv, cwd=tmp_path, env={"PATH": os.environ["PATH"]}, files={})


async def test_a_burst_spawns_on_threads_that_end_after_it(tmp_path: Path) -> None:
    spawner = process.Spawner(threads=4, idle=0.2)
    rfd, wfd = os.pipe()
    command = _command(tmp_path, [sys.executable, "-S", "-c", SLEEPER])
    before = time.time()
    futures = [spawner.submit(command, wfd, rfd) for _ in range(10)]
    missing = spawner.submit(_command(tmp_path, [str(tmp_path / "no-such-program")]), wfd, rfd)
    try:
        spawned = await asyncio.wait_for(asyncio.gather(*futures), 30)
        with pytest.raises(FileNotFoundError):
            await missing
        assert len({s.pid for s in spawned}) == 10
        for s in spawned:
            assert process.create_time(s.pid) is not None
            assert before <= s.wall <= time.time()
            assert os.getsid(s.pid) == s.pid  # its own session, as spawn() promises
        assert 1 <= len(_spawn_threads()) <= 4
        deadline = time.monotonic() + 10
        while _spawn_threads() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not _spawn_threads(), "the spawn threads outlived the burst"
        # a later burst makes new ones
        again = await asyncio.wait_for(spawner.submit(command, wfd, rfd), 30)
        spawned.append(again)
    finally:
        spawner.close()
        for s in spawned:
            os.kill(s.pid, signal.SIGKILL)
            await asyncio.to_thread(os.waitpid, s.pid, 0)
        os.close(rfd)
        os.close(wfd)


async def test_has_exited_follows_the_process(tmp_path: Path) -> None:
    rfd, wfd = os.pipe()
    try:
        pid = process.spawn(_command(tmp_path, [sys.executable, "-S", "-c", SLEEPER]), wfd, rfd)
        pidfd = os.pidfd_open(pid)
        try:
            assert not process.has_exited(pidfd)
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while not process.has_exited(pidfd) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert process.has_exited(pidfd)
            assert process.reap(pid).signal == "SIGKILL"
        finally:
            os.close(pidfd)
    finally:
        os.close(rfd)
        os.close(wfd)
