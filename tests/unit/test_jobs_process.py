"""A job's process tree without a worker: output copied and split into lines, the stop ladder
reaching the whole group, failure reasons, artifact names, placeholders."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import psutil
import pytest

from botfleet.db import Job
from botfleet.jobs import ArtifactError, ArtifactNotFound, artifact_path
from botfleet.jobs.process import JobProcess, job_processes
from botfleet.jobs.queue import deserialize, serialize
from botfleet.jobs.runner import _resolve, describe_exit
from botfleet.profiles import Command
from botfleet.protocol import StopStep

LADDER = [StopStep(signal="SIGINT", timeout=2), StopStep(signal="SIGTERM", timeout=2)]

# A parent that ignores SIGINT and forks a child that ignores SIGINT too: only SIGTERM ends
# the tree. Prints the child's pid, then a long line, then waits.
STUBBORN = """
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
pid = os.fork()
if pid == 0:
    time.sleep(300)
    os._exit(0)
print(f"child {pid}", flush=True)
print("x" * 200000, flush=True)
print("ready", flush=True)
time.sleep(300)
"""


async def _start(tmp_path: Path, code: str, lines: list[str]) -> JobProcess:
    return await JobProcess.start(
        [sys.executable, "-c", code], cwd=tmp_path, env=dict(os.environ),
        job_id=f"test-{uuid.uuid4()}", output=tmp_path / "output.log", on_line=lines.append,
    )  # fmt: skip


async def _wait_for(lines: list[str], text: str) -> None:
    for _ in range(600):
        if text in lines:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{text!r} never printed; got {lines[-3:]}")


async def test_output_is_copied_whole_and_split_into_lines(tmp_path: Path) -> None:
    lines: list[str] = []
    proc = await _start(tmp_path, "print('a\\nb', flush=True); print('Ω' * 3)\nimport sys\n"
                                  "sys.stderr.write('err line\\nno newline')", lines)  # fmt: skip
    assert await proc.wait() == 0
    assert lines == ["a", "b", "ΩΩΩ", "err line", "no newline"]
    assert (tmp_path / "output.log").read_text() == "a\nb\nΩΩΩ\nerr line\nno newline"
    assert list(proc.tail)[-1] == "no newline"


async def test_stop_ladder_escalates_and_reaches_the_whole_group(tmp_path: Path) -> None:
    lines: list[str] = []
    proc = await _start(tmp_path, STUBBORN, lines)
    try:
        await _wait_for(lines, "ready")
        child = psutil.Process(int(next(line for line in lines if line.startswith("child "))[6:]))
        assert {p.pid for p in job_processes(proc.job_id, proc.pid)} == {proc.pid, child.pid}
        # a line longer than 64 KiB is handed on in pieces (bounded memory), none lost
        assert sum(len(line) for line in lines if set(line) == {"x"}) == 200000
        assert "x" * 200000 in (tmp_path / "output.log").read_text()

        await proc.stop(LADDER)
    finally:
        proc.kill_rest()

    assert proc.returncode == -15  # SIGINT ignored, SIGTERM ended it
    for _ in range(100):
        if not child.is_running() or child.status() == psutil.STATUS_ZOMBIE:
            break
        await asyncio.sleep(0.05)
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    assert job_processes(proc.job_id) == []


def test_failure_reasons_name_the_code_or_signal_and_the_error_line() -> None:
    assert describe_exit(
        3, ["Traceback (most recent call last):", "  x", "KeyError: 'a'", "bye"]
    ) == ("exited with code 3: KeyError: 'a'")
    assert describe_exit(1, ["just this"]) == "exited with code 1: just this"
    traceback = ["Traceback (most recent call last):", '  File "x.py", line 1', "    main()",
                 "KeyboardInterrupt", "flushed results"]  # fmt: skip
    assert describe_exit(130, traceback) == "exited with code 130: KeyboardInterrupt"
    assert describe_exit(2, ["ok", "ERROR fetching markets", "retrying"]) == (
        "exited with code 2: ERROR fetching markets"
    )
    assert describe_exit(-9, []) == "killed by signal SIGKILL"


def test_artifact_names_resolve_only_inside_the_job_dir(tmp_path: Path) -> None:
    job_dir = tmp_path / "jobs" / "j1"
    (job_dir / "backtests").mkdir(parents=True)
    (job_dir / "backtests" / "analysis.json").write_text("{}")
    (tmp_path / "jobs" / "j2").mkdir()
    (tmp_path / "jobs" / "j2" / "x").write_text("other job")
    os.symlink(tmp_path / "jobs" / "j2" / "x", job_dir / "escape")
    os.symlink(job_dir / "backtests" / "analysis.json", job_dir / "inside")
    job = Job(id="j1", job_dir=str(job_dir))

    assert artifact_path(job, "backtests/analysis.json") == job_dir / "backtests" / "analysis.json"
    assert artifact_path(job, "inside") == job_dir / "backtests" / "analysis.json"
    for bad in (
        "../j2/x",
        "/etc/passwd",
        "escape",
        "backtests/../../j2/x",
        "a\\..\\b",
        "",
        "a\x00",
    ):
        with pytest.raises(ArtifactError):
            artifact_path(job, bad)
    with pytest.raises(ArtifactNotFound):
        artifact_path(job, "backtests")  # a directory is not an artifact
    with pytest.raises(ArtifactNotFound):
        artifact_path(Job(id="j3", job_dir=None), "output.log")


def test_placeholders_are_replaced_in_argv_cwd_and_env(tmp_path: Path) -> None:
    command = Command(["{python}", "-u", "src/backtest.py", "{instance_dir}/config.json"],
                      "{demo_v7_root}", {"X": "{instance_dir}/x"})  # fmt: skip
    argv, cwd, env = _resolve(command, tmp_path)
    assert argv == [sys.executable, "-u", "src/backtest.py", f"{tmp_path}/config.json"]
    assert cwd.name == "v7root" and (cwd / "src").is_dir()
    assert env["X"] == f"{tmp_path}/x" and env["PYTHONUNBUFFERED"] == "1"
    assert _resolve(Command(["a"], None), tmp_path)[1] == tmp_path


def test_queue_payloads_are_json_not_pickle() -> None:
    data = {"f": "run_job", "a": ["id"], "r": ValueError("boom")}
    raw = serialize(data)
    assert raw.startswith(b"{")
    assert deserialize(raw)["r"] == "boom"
