"""Captured output: timestamped lines on disk, size rotation with numbered lines that continue
across rotations and agent restarts, a stream queue that never slows the bot."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from botfleet.agent import Supervisor
from botfleet.agent.testing import Recorder, python_bot
from botfleet.protocol import ApplyCommand, Autorestart, InstanceState, LogLines, ProcessSpec
from botfleet.settings import AgentSettings

TS = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z ")


def _once(code: str, gen: int = 1, **kw: object) -> ApplyCommand:
    spec = ProcessSpec(argv=python_bot(code), startsecs=0, autorestart=Autorestart.NEVER, **kw)  # type: ignore[arg-type]
    return ApplyCommand(instance_id="out", generation=gen, desired="running", spec=spec)


def _all_lines(log_dir: Path) -> list[bytes]:
    files = sorted(log_dir.glob("output.log.*"), key=lambda p: -int(p.suffix[1:]))
    paths = [*files, log_dir / "output.log"]
    return b"".join(p.read_bytes() for p in paths if p.exists()).splitlines()


async def _wait_lines(
    log_dir: Path, count: int, *, last: bytes | None = None, timeout: float = 20.0
) -> list[bytes]:
    """The lines in all files once there are ``count`` (or the last one ends with ``last``)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = _all_lines(log_dir)
        done = lines[-1].endswith(last) if last and lines else len(lines) >= count
        if done or time.monotonic() > deadline:
            return lines
        await asyncio.sleep(0.05)


async def test_lines_are_timestamped_rotated_and_numbered_across_restarts(tmp_path: Path) -> None:
    settings = AgentSettings(home=tmp_path, log_max_bytes=20_000, log_backups=3)
    state = tmp_path / "state"
    rec = Recorder()
    sup = Supervisor(state, settings, on_event=rec)
    await sup.start()
    code = "for i in range(2000):\n    print(f'line {i:05d} ' + 'x' * 20)"
    await sup.apply(_once(code))
    await rec.wait_state("out", InstanceState.EXITED)
    log_dir = sup.layout.instance("out").log_dir
    await _wait_lines(log_dir, 2000, last=b"line 01999 " + b"x" * 20)
    # Rotation kept 3 backups: older lines are gone, the rest are in order and timestamped.
    names = sorted(p.name for p in log_dir.glob("output.log*"))
    assert names == ["output.log", "output.log.1", "output.log.2", "output.log.3"]
    kept = _all_lines(log_dir)
    assert all(TS.match(line) for line in kept)
    numbers = [int(line.split()[2]) for line in kept]
    assert numbers == list(range(2000 - len(kept), 2000))
    for name in names[1:]:
        size = (log_dir / name).stat().st_size
        assert 20_000 <= size < 20_000 + 4096
    # The stream numbers lines from 1, consecutively, like the disk.
    streamed: list[LogLines] = sup.take_logs(10_000)
    assert streamed[0].first_seq == 1 and streamed[0].dropped == 0
    texts = [t for e in streamed for t in e.lines]
    assert len(texts) == 2000 and texts[-1].endswith("line 01999 " + "x" * 20)
    assert texts[-len(kept):] == [line.decode() for line in kept]
    await sup.close()

    # A new agent continues the numbering where the files say it stopped.
    sup2 = Supervisor(state, settings, on_event=rec)
    await sup2.start()
    seen = len(rec.events)
    await sup2.apply(_once("print('after restart')", gen=2))
    await rec.wait_state("out", InstanceState.EXITED, after=seen)
    for _ in range(400):
        got = sup2.take_logs(10)
        if got:
            break
        await asyncio.sleep(0.05)
    assert got[0].first_seq == 2001 and got[0].lines[0].endswith("Z after restart")
    await sup2.close()


async def test_partial_lines_keep_one_timestamp(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path / "s", AgentSettings(home=tmp_path), on_event=Recorder())
    await sup.start()
    code = ("import sys, time\nw = sys.stdout.write\n"
            "w('hel'); sys.stdout.flush(); time.sleep(0.3)\n"
            "w('lo\\nworld\\n'); sys.stdout.flush()")
    await sup.apply(_once(code))
    log_dir = sup.layout.instance("out").log_dir
    lines = await _wait_lines(log_dir, 2)
    assert len(lines) == 2
    assert TS.match(lines[0]) and lines[0].endswith(b"Z hello")
    assert TS.match(lines[1]) and lines[1].endswith(b"Z world")
    await sup.close()


async def test_flooding_bot_is_not_blocked_by_a_full_stream_queue(tmp_path: Path) -> None:
    rec = Recorder()
    sup = Supervisor(tmp_path / "s", AgentSettings(home=tmp_path, log_max_bytes=1 << 30),
                     on_event=rec, queue_lines=1_000)
    await sup.start()
    total = 300_000
    code = (f"import sys\nout = sys.stdout.buffer\nn = {total}\n"
            "for start in range(0, n, 5000):\n"
            "    out.write(b''.join(b'%d\\n' % i for i in range(start, min(n, start + 5000))))\n"
            "out.flush()")
    await sup.apply(_once(code))
    # Nobody takes from the stream: the bot still runs to its end (not blocked) ...
    await rec.wait_state("out", InstanceState.EXITED, timeout=60)
    log_dir = sup.layout.instance("out").log_dir
    lines = await _wait_lines(log_dir, total)
    # ... and the disk has every line, in order.
    assert [int(line.split(b" ")[1]) for line in lines] == list(range(total))
    streamed = sup.take_logs(100_000)
    assert sum(len(e.lines) for e in streamed) == 1_000
    assert sum(e.dropped for e in streamed) == total - 1_000
    assert streamed[0].first_seq == 1
    await sup.close()
