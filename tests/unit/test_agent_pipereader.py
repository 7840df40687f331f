"""Pipes read together (botfleet.agent.capture.PipeReader): output of many bots is read in
one drain, and a flooding pipe is read to the end while others go on."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

from botfleet.agent.capture import OutputCapture
from botfleet.agent.logfile import OutputLog


def _capture(tmp_path: Path, name: str, ready: list[str]) -> OutputCapture:
    cap = OutputCapture(name, tmp_path / name / "fifo", OutputLog(tmp_path / name, 10**9, 1),
                        add_timestamps=False, queue_lines=10**6,
                        on_output=lambda c: ready.append(c.instance_id))
    cap.open()
    return cap


async def _until(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not reached: {what}")


async def test_lines_of_many_pipes_arrive_in_order(tmp_path: Path) -> None:
    ready: list[str] = []
    caps = [_capture(tmp_path, f"b{i}", ready) for i in range(20)]
    fds = [cap.child_fds()[0] for cap in caps]
    try:
        for n in range(3):
            for fd in fds:
                os.write(fd, b"line %d\n" % n)
            await _until(lambda n=n: all(c.pending == n + 1 for c in caps),
                         "all lines queued")
        for cap in caps:
            (event,) = cap.take(10)
            assert event.lines == ["line 0", "line 1", "line 2"]
    finally:
        for fd in fds:
            os.close(fd)
        for cap in caps:
            cap.close()


async def test_a_flood_is_read_to_the_end_beside_a_quiet_pipe(tmp_path: Path) -> None:
    ready: list[str] = []
    flood, quiet = _capture(tmp_path, "flood", ready), _capture(tmp_path, "quiet", ready)
    flood_fd, quiet_fd = flood.child_fds()[0], quiet.child_fds()[0]
    lines = 200_000  # ~10 MiB: many times the pipe buffer, so the writer blocks on a full pipe
    body = b"".join(b"flood line number %09d .........................\n" % i
                    for i in range(lines))

    def write() -> None:
        view = memoryview(body)
        while view:
            view = view[os.write(flood_fd, view[: 1 << 16]):]

    writer = threading.Thread(target=write)
    writer.start()
    try:
        os.write(quiet_fd, b"still here\n")
        await _until(lambda: flood.output.next_seq == lines + 1, "the whole flood on disk")
        await _until(lambda: quiet.pending == 1, "the quiet pipe's line")
        assert (tmp_path / "flood" / "output.log").read_bytes() == body
        (event,) = quiet.take(10)
        assert event.lines == ["still here"]
    finally:
        writer.join(30)
        os.close(flood_fd)
        os.close(quiet_fd)
        flood.close()
        quiet.close()
