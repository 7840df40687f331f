"""The scenarios of issue 2, each run against one tool (botfleet, supervisord or PM2) through
the same small interface: ``define(bots)``, ``start(names)``, ``stop(names)``, ``states()``
(``{name: (Supervisor state, pid)}``), ``clear()``, ``supervisor_pids()``,
``log_files(name)``, ``follow(name, stop)``, ``stalled_consumer(name)``.

Times are taken with ``time.time()`` in this process and in the bots' start stamps (same
clock); results are milliseconds unless a key says otherwise.
"""

from __future__ import annotations

import os
import random
import re
import select
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from common import (
    PYTHON,
    BotDef,
    ExitWatch,
    StampLog,
    bot_env,
    cpu_window,
    percentiles,
    standin_argv,
    wait_exit,
    wait_until,
)

__all__ = ["bare_start", "crash_idle", "fleet", "flood", "jobs", "log_latency"]

DOWN = ("STOPPED", "EXITED", "FATAL")
#: Seconds between defining the bots and starting them, for every tool: a start is timed
#: from a settled tool, not while it still takes in the definitions (botfleet's agent stores
#: each new instance's config as it is created).
DEFINE_SETTLE = 3.0


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _watch(tool: Any, on: bool) -> None:
    if hasattr(tool, "watch"):
        tool.watch(on)


def _kill_and_time_restart(stamps: StampLog, name: str, min_up: float) -> float:
    """SIGKILL the bot ``name`` (its latest stamped pid) once it has been up ``min_up`` s;
    return seconds from its exit (seen through a pidfd) to its successor's start stamp."""
    pid, started = stamps.wait_new(name, None, 30)
    time.sleep(max(0.0, started + min_up - time.time()))
    fd = os.pidfd_open(pid)  # before the kill: the exit is seen even if reaped at once
    try:
        os.kill(pid, signal.SIGKILL)
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.poll(10_000)
        exited = time.time()
    finally:
        os.close(fd)
    _, restarted = stamps.wait_new(name, pid, 30)
    return restarted - exited


def bare_start(workdir: Path, n: int) -> dict[str, Any]:
    """The floor: a Popen loop starting ``n`` stand-ins (same argv and env as the tools),
    time until the loop returned and until every process has its start stamp."""
    stamps_path = workdir / "bare" / "stamps.txt"
    stamps = StampLog(stamps_path)
    (workdir / "bare").mkdir(exist_ok=True)
    procs = []
    t0 = time.time()
    for i in range(n):
        name = f"bare{i:03d}"
        procs.append(subprocess.Popen(standin_argv(), env={**os.environ, **bot_env(stamps_path, name)},
                                      cwd=workdir / "bare", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    looped = time.time() - t0
    wait_until(lambda: stamps.poll() is not None and len(stamps.by_name) >= n, 60, 0.01, "bare stamps")
    last = max(t for v in stamps.by_name.values() for _, t in v)
    time.sleep(2.0)  # booted (a SIGINT during interpreter start-up can be lost)
    for p in procs:
        p.send_signal(signal.SIGINT)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return {"popen_loop_ms": round(looped * 1000, 1), "all_stamped_ms": round((last - t0) * 1000, 1)}


def _cpu_seconds(tool: Any) -> dict[str, float]:
    """User+system CPU seconds used so far by the tool's own processes (the supervisor and,
    for botfleet, its api and Redis), by name."""
    pids = {"supervisor": tool.supervisor_pids()[0]}
    if hasattr(tool, "service_pids"):
        pids.update({k: v for k, v in tool.service_pids().items() if k != "agent"})
    out = {}
    for name, pid in pids.items():
        try:
            t = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        out[name] = t.user + t.system
    return out


def _cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU milliseconds each process used between two :func:`_cpu_seconds`."""
    return {n: round((after[n] - before[n]) * 1000) for n in before if n in after}


def fleet(tool: Any, workdir: Path, n: int, idle_window: float, crash_samples: int) -> dict[str, Any]:
    """100 stand-ins: start all -> all RUNNING; agent CPU/RSS over ``idle_window`` s while
    they print 1 line/s (skipped when 0); crash latency with the others running; stop all ->
    gone and STOPPED. ``start_cpu_ms``/``stop_cpu_ms``: CPU the tool's own processes used
    from the request until all RUNNING / all STOPPED (where a tool's time goes: the bots
    compete with it for the cores)."""
    stamps_path = workdir / tool.name / "stamps-fleet.txt"
    stamps = StampLog(stamps_path)
    bots = [BotDef(f"bot{i:03d}", standin_argv(), bot_env(stamps_path, f"bot{i:03d}"), startsecs=1.0)
            for i in range(n)]
    names = [b.name for b in bots]
    tool.define(bots)
    time.sleep(DEFINE_SETTLE)
    out: dict[str, Any] = {}
    _watch(tool, True)
    cpu0 = _cpu_seconds(tool)
    t0 = time.time()
    tool.start(names)
    out["start_command_ms"] = round((time.time() - t0) * 1000, 1)
    wait_until(lambda: all(tool.states().get(nm, ("?",))[0] == "RUNNING" for nm in names), 120, 0.05,
               "all RUNNING")
    out["start_all_running_ms"] = round((_reported(tool, t0, names, ("RUNNING",)) - t0) * 1000, 1)
    out["start_cpu_ms"] = _cpu_used(cpu0, _cpu_seconds(tool))
    wait_until(lambda: stamps.poll() is not None and len(stamps.by_name) >= n, 60, 0.05, "all stamps")
    out["start_all_stamped_ms"] = round((max(v[0][1] for v in stamps.by_name.values()) - t0) * 1000, 1)
    out["start_split"] = _start_split(tool, t0, {nm: v[0][1] for nm, v in stamps.by_name.items()})
    _watch(tool, False)

    time.sleep(5.0)  # settle: boot lines written, first heartbeat sent
    pids = {"supervisor": tool.supervisor_pids()[0]}
    if hasattr(tool, "service_pids"):
        pids.update({k: v for k, v in tool.service_pids().items() if k != "agent"})
    if idle_window > 0:
        out["idle"] = cpu_window(pids, idle_window)

    samples = [_kill_and_time_restart(stamps, names[i % n], 0.0) for i in range(crash_samples)]
    out["crash_loaded"] = percentiles(samples)

    _watch(tool, True)
    time.sleep(2.0)  # restarted bots past startsecs
    wait_until(lambda: all(tool.states().get(nm, ("?",))[0] == "RUNNING" for nm in names), 60, 0.05,
               "all RUNNING again")
    running = {nm: pid for nm, (_, pid) in tool.states().items() if nm in names and pid}
    exits = ExitWatch(list(running.values()))
    cpu0 = _cpu_seconds(tool)
    bench_cpu0 = time.process_time()
    t0 = time.time()
    tool.stop(names)
    out["stop_command_ms"] = round((time.time() - t0) * 1000, 1)
    wait_until(lambda: not any(_alive(p) for p in running.values()), 60, 0.01, "all bot processes gone")
    gone = time.time()
    wait_until(lambda: all(tool.states().get(nm, ("?",))[0] in DOWN for nm in names), 60, 0.05,
               "all reported STOPPED")
    reported = _reported(tool, t0, names, DOWN)
    out["stop_cpu_ms"] = _cpu_used(cpu0, _cpu_seconds(tool))
    out["stop_bench_cpu_ms"] = round((time.process_time() - bench_cpu0) * 1000)
    exited = exits.wait(60)
    _watch(tool, False)
    out["stop_processes_gone_ms"] = round((gone - t0) * 1000, 1)
    out["stop_all_stopped_ms"] = round((max(gone, reported) - t0) * 1000, 1)
    out["stop_split"] = _stop_split(tool, t0, {nm: exited[pid] for nm, pid in running.items()})
    if hasattr(tool, "paths_used"):
        out["requests"] = sorted(tool.paths_used)
    tool.clear()
    return out


def _reported(tool: Any, t0: float, names: list[str], states: tuple[str, ...]) -> float:
    """When the last of ``names`` was reported in one of ``states``: for a tool that pushes
    its state changes (botfleet's fleet SSE, :meth:`Botfleet.state_trace`), the receive time
    of the last one's event; for the others, now (the wait loop's poll saw it, every 50 ms,
    as their own clients poll). Without it botfleet's figures carried up to 50 ms of this
    script's polling (43 ms in the 04:57 stop: last STOPPED received at 524 ms, seen at 567)."""
    now = time.time()
    if not hasattr(tool, "state_trace"):
        return now
    first: dict[str, float] = {}
    for received, name, new, _agent, _api in tool.state_trace(t0):
        if name in names and new in states:
            first.setdefault(name, received)
    return max(first.values()) if len(first) == len(names) else now


def _start_split(tool: Any, t0: float, stamped: dict[str, float]) -> dict[str, Any]:
    """Where a start's time went, ms after the start request (``t0``): each bot's start stamp
    (``stamped``), and for botfleet from its fleet stream the agent's STARTING (right after
    the spawn) and RUNNING (``startsecs`` later) times and the api's record and this process's
    receive time of the RUNNING events (first/last). Upper bounds, as in :func:`_stop_split`."""
    def span(times: list[float]) -> dict[str, float]:
        times = sorted(times)
        return {"first": round((times[0] - t0) * 1000, 1), "last": round((times[-1] - t0) * 1000, 1)}

    out: dict[str, Any] = {"stamps": span(list(stamped.values()))}
    if not hasattr(tool, "state_trace"):
        return out
    trace = [t for t in tool.state_trace(t0) if t[1] in stamped]
    starting = [agent for _, _, new, agent, _ in trace if new == "STARTING"]
    running = [(received, agent, api) for received, _, new, agent, api in trace if new == "RUNNING"]
    if starting:
        out["starting_agent"] = span(starting)
    if running:
        for key, index in (("running_agent", 1), ("running_api", 2), ("running_received", 0)):
            out[key] = span([r[index] for r in running])
    return out


def _stop_split(tool: Any, t0: float, exited: dict[str, float]) -> dict[str, Any]:
    """Where a stop's time went, ms after the stop request (``t0``): each bot's exit (pidfd,
    ``exits``), and for botfleet from its fleet stream (:meth:`Botfleet.state_trace`) the
    agent's STOPPING (just before the first signal) and STOPPED (exit reaped) times, the
    api's record time and this process's receive time of the STOPPED events; ``lag`` gives
    per-bot differences along that path (p50/max). Every time is taken by a process that
    competes with the exiting bots for the cores (the watch thread, the agent, the api, this
    stream's reader): under that load each is when the process got to run, an upper bound."""
    def ms(t: float) -> float:
        return round((t - t0) * 1000, 1)

    ends = sorted(exited.values())
    out: dict[str, Any] = {"exits": {"first": ms(ends[0]), "p50": ms(ends[len(ends) // 2]), "last": ms(ends[-1])}}
    if not hasattr(tool, "state_trace"):
        return out
    trace = tool.state_trace(t0)
    stopping = {nm: agent for _, nm, new, agent, _ in trace if new == "STOPPING" and nm in exited}
    stopped = {nm: (received, agent, api) for received, nm, new, agent, api in trace
               if new == "STOPPED" and nm in exited}
    if not stopping or not stopped:
        return out
    out["stopping_agent"] = {"first": ms(min(stopping.values())), "last": ms(max(stopping.values()))}
    for key, index in (("stopped_agent", 1), ("stopped_api", 2), ("stopped_received", 0)):
        times = sorted(v[index] for v in stopped.values())
        out[key] = {"first": ms(times[0]), "p50": ms(times[len(times) // 2]), "last": ms(times[-1])}

    def lag(pairs: list[float]) -> dict[str, float]:
        pairs = sorted(pairs)
        return {"p50": round(pairs[len(pairs) // 2] * 1000, 1), "max": round(pairs[-1] * 1000, 1)}

    both = [nm for nm in stopped if nm in stopping]
    out["lag"] = {
        "stopping_to_exit": lag([exited[nm] - stopping[nm] for nm in both]),
        "exit_to_stopped_agent": lag([stopped[nm][1] - exited[nm] for nm in stopped]),
        "agent_to_api": lag([stopped[nm][2] - stopped[nm][1] for nm in stopped]),
        "api_to_received": lag([stopped[nm][0] - stopped[nm][2] for nm in stopped]),
    }
    return out


def crash_idle(tool: Any, workdir: Path, samples: int) -> dict[str, Any]:
    """One bot and nothing else: kill -9 it ``samples`` times (each time once the tool
    reports it RUNNING and it has run 0.5-1.5 s, random so that the kill falls anywhere
    in a polling supervisor's cycle) and time exit -> next start stamp
    (startsecs=0, backoff 0)."""
    stamps_path = workdir / tool.name / "stamps-crash.txt"
    stamps = StampLog(stamps_path)
    bot = BotDef("crashy", standin_argv(), bot_env(stamps_path, "crashy"), startsecs=0.0)
    tool.define([bot])
    tool.start([bot.name])
    got = []
    for _ in range(samples):
        pid, _ = stamps.wait_new(bot.name, None, 30)
        # Kill a bot the tool reports RUNNING (a kill while STARTING is a failed start,
        # which Supervisor answers with its growing backoff).
        wait_until(lambda p=pid: tool.states().get(bot.name) == ("RUNNING", p), 30, 0.05, "RUNNING")
        got.append(_kill_and_time_restart(stamps, bot.name, 0.5 + random.uniform(0, 1)))
    tool.clear()
    return percentiles(got)


_TICK = re.compile(r"tick (\d+) (\d+\.\d+)")


def log_latency(tool: Any, workdir: Path, samples: int, rate: float) -> dict[str, Any]:
    """A ticker bot prints ``tick n time.time()`` ``rate`` times a second; a log follower of
    the tool (botfleet: the api's SSE; supervisord: ``supervisorctl tail -f``; PM2:
    ``pm2 logs --raw``) receives them; latency = receive time - embedded time."""
    stamps_path = workdir / tool.name / "stamps-ticker.txt"
    stamps = StampLog(stamps_path)
    argv = [PYTHON, str(Path(__file__).with_name("ticker.py"))]
    bot = BotDef("ticker", argv, bot_env(stamps_path, "ticker", BENCH_TICK_RATE=str(rate)),
                 startsecs=0.0, botfleet_profile="custom")
    tool.define([bot])
    tool.start([bot.name])
    stamps.wait_new(bot.name, None, 30)
    time.sleep(1.0)
    stop = threading.Event()
    got: list[float] = []
    since = time.time() + 0.5  # lines written before the follower was connected do not count

    def read() -> None:
        for received, line in tool.follow(bot.name, stop):
            m = _TICK.search(line)
            if m and float(m.group(2)) >= since:
                got.append(received - float(m.group(2)))
                if len(got) >= samples:
                    stop.set()
                    return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(samples / rate + 60)
    stop.set()
    tool.clear()
    result = percentiles(got)
    if len(got) < samples:
        result["note"] = f"only {len(got)} of {samples} lines arrived"
    return result


def _count_flood(files: list[Path], n: int) -> dict[str, int]:
    """Flood lines found in ``files`` (current and rotated): total, distinct, missing."""
    seen = bytearray(n + 1)
    total = 0
    for path in files:
        data = path.read_bytes()
        for m in re.finditer(rb"flood (\d+)\n", data):
            i = int(m.group(1))
            total += 1
            if 0 < i <= n:
                seen[i] = 1
    distinct = sum(seen)
    return {"lines_found": total, "distinct": distinct, "missing": n - distinct}


def _settle(files_of: Any, quiet: float = 1.0) -> float:
    """Poll the summed size of the log files until it has not grown for ``quiet`` s; return
    when it last grew."""
    size, changed = -1, time.time()
    while time.time() - changed < quiet:
        now = sum(p.stat().st_size for p in files_of() if p.exists())
        if now != size:
            size, changed = now, time.time()
        time.sleep(0.01)
    return changed


def flood(tool: Any | None, workdir: Path, n: int, variant: str, run: int = 0) -> dict[str, Any]:
    """One stand-in writes ``n`` lines ``flood <i>`` as fast as it can and exits. Rates in
    lines/s from its start stamp: ``bot_rate`` to its exit (was the bot slowed?),
    ``landed_rate`` to the last byte in its log files; and whether every line 1..n is there.
    ``variant``: ``plain``, ``stalled`` (a log consumer that never reads), ``api-down``
    (botfleet's api killed as the bot starts). ``tool=None``: the bot alone, stdout to a file.
    ``run`` numbers repeats: each has its own bot name, log files and stamp file."""
    label = tool.name if tool else "bare"
    name = f"flood-{variant}-{run}"
    stamps_path = workdir / label / f"stamps-{name}.txt"
    stamps = StampLog(stamps_path)
    env = bot_env(stamps_path, name, BOTFLEET_DEMO_FLOOD=str(n), BOTFLEET_DEMO_FLOOD_EXIT="1",
                  BOTFLEET_DEMO_LINES_PER_SEC="0")
    bot = BotDef(name, standin_argv(), env, startsecs=0.0, autorestart=False)
    consumer = None
    if tool is None:
        out_file = workdir / "bare" / f"{name}.log"
        out_file.parent.mkdir(parents=True, exist_ok=True)
        with out_file.open("wb") as fh:
            subprocess.Popen(bot.argv, env={**os.environ, **env}, stdout=fh, stderr=fh, cwd=out_file.parent)
        files_of = lambda: [out_file]  # noqa: E731
    else:
        tool.define([bot])
        if variant == "stalled":
            consumer = tool.stalled_consumer(name)
        files_of = lambda: tool.log_files(name)  # noqa: E731
        tool.start([name])
    pid, started = stamps.wait_new(name, None, 60)
    if variant == "api-down":
        tool.kill_process("api")
    exited = wait_exit(pid, 300) or time.time()
    landed = _settle(files_of)
    result: dict[str, Any] = {
        "lines": n,
        "bot_rate": round(n / (exited - started)),
        "landed_rate": round(n / (landed - started)),
        **_count_flood(files_of(), n),
    }
    if consumer is not None:
        consumer.close()
    if variant == "api-down":
        tool.start_process("api")
    if tool is not None:
        tool.clear()
    return result


def jobs(tool: Any, workdir: Path, samples: int) -> dict[str, Any]:
    """botfleet only: POST /api/v1/jobs (backtest of the stand-in, 0.3 s long) -> the job's
    process start stamp, and -> the job's ``started_at``; one job at a time on an idle
    worker."""
    stamps_path = workdir / tool.name / "stamps-jobs.txt"
    stamps = StampLog(stamps_path)
    tool.start_process("worker", {"PYTHONPATH": str(Path(__file__).with_name("stamp")),
                                  "BENCH_STAMP_FILE": str(stamps_path), "BOTFLEET_DEMO_JOB_SECONDS": "0.3"})
    body = {"kind": "backtest", "profile": "passivbot-v8", "config": tool.config(), "simulated": True}
    first = tool.create_job(body)  # warm-up: worker connected, imports done
    wait_until(lambda: tool.job(first["id"])["status"] in ("succeeded", "failed"), 120, 0.1, "warm-up job")
    to_stamp, to_started, statuses = [], [], []
    for _ in range(samples):
        t0 = time.time()
        job = tool.create_job(body)
        _, t = stamps.wait_new(job["id"], None, 60)
        to_stamp.append(t - t0)
        done = wait_until(lambda: (j := tool.job(job["id"]))["status"] in ("succeeded", "failed", "cancelled")
                          and j, 120, 0.05, "job done")
        statuses.append(done["status"])
        from datetime import datetime

        to_started.append(datetime.fromisoformat(done["started_at"]).timestamp() - t0)
    tool.kill_process("worker", signal.SIGTERM)
    return {"to_process_start": percentiles(to_stamp), "to_started_at": percentiles(to_started),
            "succeeded": statuses.count("succeeded"), "samples": samples}
