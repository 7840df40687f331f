"""The passivbot stand-in (botfleet.demo) as real subprocesses: live signals and switches,
backtest and optimize results read back through the profiles, both v7 and v8 entry points."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import psutil
import pytest

from botfleet.db.models import JobKind
from botfleet.demo import V7_ROOT
from botfleet.profiles import Command, ProgressUpdate, get_profile
from botfleet.settings import Settings

DATA = Path(__file__).parents[1] / "data" / "passivbot"
DEADLINE = 60.0
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
SETTINGS = Settings(_env_file=None)  # type: ignore[call-arg]


class Proc:
    """A started stand-in in its own session; its stdout/stderr lines are collected."""

    def __init__(self, command: Command, cwd: Path, env: dict[str, str] | None = None) -> None:
        argv = [a.replace("{python}", sys.executable) for a in command.argv]
        workdir = (command.cwd or str(cwd)).replace("{demo_v7_root}", V7_ROOT)
        full_env = {**os.environ, **command.env, **(env or {})}
        self.popen = subprocess.Popen(
            argv,
            cwd=workdir,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(name,), daemon=True) for name in self.lines
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, name: str) -> None:
        stream: IO[bytes] = getattr(self.popen, name)
        for raw in stream:
            with self._changed:
                self.lines[name].append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._changed.notify_all()

    def wait_line(self, pattern: str, stream: str = "stderr", start: int = 0) -> re.Match[str]:
        deadline = time.monotonic() + DEADLINE
        with self._changed:
            while True:
                for line in self.lines[stream][start:]:
                    if m := re.search(pattern, line):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no line matching {pattern!r}; got {self.lines}")
                self._changed.wait(left)

    def wait(self) -> int:
        """The exit code, once the process has exited and all its output is read."""
        code = self.popen.wait(timeout=DEADLINE)
        for reader in self._readers:
            reader.join(DEADLINE)
        return code

    def kill_group(self) -> None:
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait(timeout=DEADLINE)


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.kill_group()


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def write_config(
    tmp_path: Path, version: str, name: str = "btc_long.json", **changes: Any
) -> tuple[str, dict[str, Any]]:
    document = json.loads((DATA / version / name).read_text())
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = document
        for part in parents:
            node = node[part]
        node[last] = value
    path = tmp_path / f"{version}-{name}"
    path.write_text(json.dumps(document))
    return str(path), document


def live(procs: list[Proc], tmp_path: Path, version: str, **env: str) -> Proc:
    config_path, _ = write_config(tmp_path, version, live__user=f"bybit_{version}_test")
    command = get_profile(f"passivbot-{version}").live_command(
        config_path=config_path, simulated=True, settings=SETTINGS
    )
    env.setdefault("BOTFLEET_DEMO_LINES_PER_SEC", "20")
    if version == "v7":
        env.setdefault("BOTFLEET_DEMO_LOG_FILE", "0")  # cwd is the package's v7root
    proc = Proc(command, tmp_path, env)
    procs.append(proc)
    return proc


@pytest.mark.parametrize("version", ["v7", "v8"])
def test_live_boots_with_passivbot_lines_and_stops_gracefully_on_sigint(
    version: str, procs: list[Proc], tmp_path: Path
) -> None:
    proc = live(procs, tmp_path, version)
    boot = proc.wait_line(
        rf"^({STAMP}) INFO     \[boot\] passivbot (\d+\.\d+\.\d+) .*user=bybit_{version}_test exchange=bybit"
    )
    assert boot[2].startswith(version[1])
    proc.wait_line(
        rf"^{STAMP} INFO     \[balance\] raw \d+\.\d\d \| snap \d+\.\d\d \| equity=\d+\.\d\d source=\w+$"
    )
    proc.wait_line(
        rf"^{STAMP} INFO     \[fill\] {STAMP} BTC (long|short) \w+ [+-][\d.e-]+ @ [\d.]+, pnl=[+-][\d.]+ USDT, fee=[\d.]+ USDT id=\S+$"
    )
    proc.wait_line(
        rf"^{STAMP} INFO     \[pos\] \w+ BTC (long|short) [\d.e-]+ -> [\d.e-]+ \| WEL=[\d.]+ TWEL=[\d.]+ uPnL=[+-][\d.]+$"
    )
    proc.popen.send_signal(signal.SIGINT)
    assert proc.wait() == 0
    assert any("[shutdown]" in line for line in proc.lines["stderr"])
    assert proc.lines["stderr"][-1].endswith("[shutdown] done")
    if version == "v8":
        on_disk = (tmp_path / "logs" / "bybit_v8_test.log").read_text().splitlines()
        assert on_disk[0] == proc.lines["stderr"][0], "the same lines go to logs/{user}.log"


def test_live_dies_at_once_on_sigterm(procs: list[Proc], tmp_path: Path) -> None:
    proc = live(procs, tmp_path, "v8")
    proc.wait_line(r"\[balance\]")
    proc.popen.send_signal(signal.SIGTERM)
    assert proc.wait() == -signal.SIGTERM
    assert not any("[shutdown]" in line for line in proc.lines["stderr"])


def test_live_ignores_sigint_with_the_switch(procs: list[Proc], tmp_path: Path) -> None:
    proc = live(procs, tmp_path, "v8", BOTFLEET_DEMO_IGNORE_SIGINT="1")
    proc.wait_line(r"\[balance\]")
    proc.popen.send_signal(signal.SIGINT)
    proc.wait_line(r"\[shutdown\] SIGINT received: ignored")
    seen = len(proc.lines["stderr"])
    proc.wait_line(r"\[(order|fill|pos|balance|health)\]", start=seen)
    assert proc.popen.poll() is None, "still running after SIGINT"


def test_live_second_sigint_forces_exit(procs: list[Proc], tmp_path: Path) -> None:
    proc = live(procs, tmp_path, "v8", BOTFLEET_DEMO_SHUTDOWN_SECONDS="600")
    proc.wait_line(r"\[balance\]")
    proc.popen.send_signal(signal.SIGINT)
    proc.wait_line(r"\[shutdown\] SIGINT received")
    proc.popen.send_signal(signal.SIGINT)
    assert proc.wait() == 130


def test_live_crash_switch_exits_nonzero_with_a_traceback(
    procs: list[Proc], tmp_path: Path
) -> None:
    proc = live(procs, tmp_path, "v8", BOTFLEET_DEMO_CRASH_AFTER="0.3", BOTFLEET_DEMO_EXIT_CODE="3")
    assert proc.wait() == 3
    proc.wait_line(rf"^{STAMP} ERROR    \[health\] fatal error")
    proc.wait_line(r"^Traceback \(most recent call last\):")
    proc.wait_line(r"^RuntimeError: simulated crash")


def test_live_flood_writes_numbered_lines_to_stdout(procs: list[Proc], tmp_path: Path) -> None:
    proc = live(procs, tmp_path, "v8", BOTFLEET_DEMO_FLOOD="20000", BOTFLEET_DEMO_FLOOD_EXIT="1")
    assert proc.wait() == 0
    proc.wait_line(r"^flood 20000$", stream="stdout")
    assert proc.lines["stdout"] == [f"flood {i}" for i in range(1, 20001)]


def test_live_spawned_child_dies_only_with_the_process_group(
    procs: list[Proc], tmp_path: Path
) -> None:
    proc = live(procs, tmp_path, "v8", BOTFLEET_DEMO_SPAWN_CHILD="1")
    child = int(proc.wait_line(r"\[boot\] helper process pid=(\d+)")[1])
    assert os.getpgid(child) == os.getpgid(proc.popen.pid)
    proc.popen.send_signal(signal.SIGTERM)  # the bot alone: its child is orphaned, not stopped
    assert proc.popen.wait(timeout=DEADLINE) == -signal.SIGTERM  # the child holds the pipes
    assert not _gone(child)
    os.killpg(proc.popen.pid, signal.SIGKILL)
    wait_until(lambda: _gone(child), "the helper to die with the group")


def run_job(
    procs: list[Proc],
    tmp_path: Path,
    version: str,
    kind: JobKind,
    name: str = "btc_long.json",
    env: dict[str, str] | None = None,
    **changes: Any,
) -> tuple[Proc, Path, list[ProgressUpdate]]:
    """Start a simulated job the way a worker does; returns it, its job dir and a list the
    progress parser's updates are appended to once :func:`finish` runs."""
    profile = get_profile(f"passivbot-{version}")
    job_dir = tmp_path / "job"
    job_dir.mkdir(exist_ok=True)
    _, document = write_config(tmp_path, version, name, **changes)
    config = profile.prepare_job_config(kind, document, job_dir=str(job_dir))
    config_path = job_dir / "config.json"
    config_path.write_text(json.dumps(config))
    command = profile.job_command(
        kind, config_path=str(config_path), job_dir=str(job_dir), simulated=True, settings=SETTINGS
    )
    proc = Proc(command, job_dir, {"BOTFLEET_DEMO_JOB_SECONDS": "1", **(env or {})})
    procs.append(proc)
    return proc, job_dir, []


def progress(
    version: str, kind: JobKind, document: dict[str, Any], lines: list[str]
) -> list[ProgressUpdate]:
    parser = get_profile(f"passivbot-{version}").progress_parser(kind, document)
    return [u for line in lines if (u := parser.feed(line)) is not None]


@pytest.mark.parametrize("version", ["v7", "v8"])
def test_backtest_writes_passivbots_layout_and_read_results_reads_it(
    version: str, procs: list[Proc], tmp_path: Path
) -> None:
    proc, job_dir, _ = run_job(procs, tmp_path, version, JobKind.BACKTEST)
    assert proc.wait() == 0
    updates = progress(version, JobKind.BACKTEST, {}, proc.lines["stdout"])
    assert [u.phase for u in updates] == ["backtesting combined", "analysis"]
    results = get_profile(f"passivbot-{version}").read_results(JobKind.BACKTEST, job_dir)
    assert re.fullmatch(
        r"backtests/combined/\d{4}-\d\d-\d\dT\d\d_\d\d_\d\d", results.summary["results_dir"]
    )
    assert results.summary["exchange"] == "combined"
    assert {"adg", "mdg", "gain", "drawdown_worst", "sharpe_ratio", "loss_profit_ratio"} <= set(
        results.summary
    )
    names = sorted(Path(a).name for a in results.artifacts)
    assert names == [
        "analysis.json",
        "balance_and_equity.csv.gz",
        "balance_and_equity.png",
        "config.json",
        "fills.csv",
    ]
    png = (job_dir / results.summary["results_dir"] / "balance_and_equity.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_suite_backtest_results_are_the_suite_summary(procs: list[Proc], tmp_path: Path) -> None:
    proc, job_dir, _ = run_job(procs, tmp_path, "v8", JobKind.BACKTEST, "suite_example.json")
    assert proc.wait() == 0
    results = get_profile("passivbot-v8").read_results(JobKind.BACKTEST, job_dir)
    assert set(results.summary["suite"]["scenarios"]) == {"binance_only", "bybit_mix"}
    assert results.summary["results_dir"].startswith("backtests/suite_runs/")
    assert any(a.endswith("suite_summary.json") for a in results.artifacts)


@pytest.mark.parametrize("version", ["v7", "v8"])
def test_optimize_progress_rises_and_pareto_members_are_read(
    version: str, procs: list[Proc], tmp_path: Path
) -> None:
    proc, job_dir, _ = run_job(procs, tmp_path, version, JobKind.OPTIMIZE, optimize__iters=3000)
    assert proc.wait() == 0
    lines = proc.lines["stdout"]
    assert re.match(rf"^{STAMP} MainProcess  INFO     Starting optimize\.\.\.$", lines[0])
    updates = progress(version, JobKind.OPTIMIZE, {"optimize": {"iters": 3000}}, lines)
    fractions = [u.fraction for u in updates if u.fraction is not None]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(0 < f < 1 for f in fractions), "intermediate progress is reported"
    assert any(u.phase == "starting configs" for u in updates)
    assert any("front_size" in u.detail for u in updates)
    results = get_profile(f"passivbot-{version}").read_results(JobKind.OPTIMIZE, job_dir)
    assert results.summary["results_dir"].startswith("optimize_results/")
    assert re.fullmatch(
        r"optimize_results/\d{4}-\d\d-\d\dT\d\d_\d\d_\d\d_binance_bybit_\d+days_BTC_[0-9a-f]{8}",
        results.summary["results_dir"],
    )
    pareto = results.summary["pareto"]
    assert pareto and all("adg_btc" in m["analysis"] for m in pareto)
    assert all((job_dir / m["config_path"]).is_file() for m in pareto)
    assert f"{results.summary['results_dir']}/all_results.bin" in results.artifacts


def test_optimize_on_sigint_stops_its_workers_and_keeps_results(
    procs: list[Proc], tmp_path: Path
) -> None:
    proc, job_dir, _ = run_job(
        procs,
        tmp_path,
        "v8",
        JobKind.OPTIMIZE,
        optimize__iters=10**9,
        env={"BOTFLEET_DEMO_EVALS_PER_SEC": "500"},
    )
    pids = [
        int(p)
        for p in proc.wait_line(r"Started \d+ worker processes: ([\d ]+)$", "stdout")[1].split()
    ]
    assert pids and all(os.getpgid(p) == os.getpgid(proc.popen.pid) for p in pids)
    proc.wait_line(r"Pareto update \| eval=", "stdout")
    proc.popen.send_signal(signal.SIGINT)
    assert proc.wait() == 0
    assert all(_gone(p) for p in pids)
    results = get_profile("passivbot-v8").read_results(JobKind.OPTIMIZE, job_dir)
    assert results.summary["pareto"]


def test_download_prints_progress_and_exits_0(procs: list[Proc], tmp_path: Path) -> None:
    config_path, _ = write_config(tmp_path, "v8")
    proc = Proc(
        Command(["{python}", "-m", "botfleet.demo", "download", config_path], None, {}), tmp_path
    )
    procs.append(proc)
    assert proc.wait() == 0
    updates = progress("v8", JobKind.BACKTEST, {}, proc.lines["stdout"])
    assert [u.detail["download_percent"] for u in updates][-1] == 100.0


def test_live_log_file_rotates_like_passivbots(tmp_path: Path) -> None:
    from botfleet.demo.lines import LineLog

    with open(os.devnull, "w") as sink:
        log = LineLog(sink)
        log.rotate_to(str(tmp_path / "logs" / "u.log"), max_bytes=300, backups=2)
        for i in range(40):
            log.info("[health] line %d", i)
    names = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert names == ["u.log", "u.log.1", "u.log.2"]
    assert all(p.stat().st_size <= 300 for p in (tmp_path / "logs").iterdir())
    assert (tmp_path / "logs" / "u.log").read_text().splitlines()[-1].endswith("[health] line 39")
