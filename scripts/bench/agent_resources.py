"""The agent's own resource targets (issue 2), measured on a real stack.

    .venv/bin/python scripts/bench/agent_resources.py [--bots 100] [--window 60]
        [--agent-python /tmp/agent-venv/bin/python] [--follow 20] [--crashes 20]
        [--redis-url redis://127.0.0.1:6379/11] [--json FILE]
        [--agent-env PYTHONPATH=/other/checkout/backend]   # A/B against another version
        [--attach 'py-spy record --pid {pid} --format raw -d 30 -o prof.txt']  # profile instead

What runs: the api (uvicorn, this interpreter's venv) on a free port with a fresh SQLite
database and the given Redis database (flushed), and ``botfleet agent`` under
``--agent-python`` (default: this interpreter; a base-only venv shows what a VPS runs). The
bots are ``--bots`` simulated passivbot-v8 instances (the stand-in, btc_long.json) printing
1 line/s (``BOTFLEET_DEMO_LINES_PER_SEC=1``, no extra log file), started through the REST api.

What is measured, after all are RUNNING and a settle time:

- ``agent``: CPU (user+system of the agent process only, over ``--window`` s, % of one
  core) and RSS (max of samples every second, MiB); the api's alongside, for scale; event
  batches the api took per second (from its dedup hash in Redis).
- ``line_to_sse``: ``--follow`` instances' log SSE are followed during the window; latency =
  receive time - the UTC timestamp the agent put on the line as it read it from the pipe;
  ``write_to_sse``: receive time - the bot's own stamp taken at its write (``w=`` in front of
  each line, stamp/sitecustomize.py with ``BENCH_WRITE_STAMP=1``), which also counts the
  time a line waits in the pipe before the agent reads it.
- ``crash``: afterwards ``--crashes`` bots are SIGKILLed one at a time (backoff 0), time from
  the exit (pidfd) to the new process's start stamp (``stamp/sitecustomize.py``, taken a few ms
  into interpreter start-up, as in the other scenarios).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis
from common import CONFIG_FILE, StampLog, bot_env, machine_facts, percentiles, wait_until

from botfleet.fleet.embedded_redis import free_port
from botfleet.fleet.scratch import prepare_scratch_database

__all__ = ["main"]

API = ("from botfleet.api.app import create_app; import uvicorn; "
       "uvicorn.run(create_app(), host='127.0.0.1', port={port}, log_level='warning')")
AGENT = "from botfleet.cli import main; main(['agent'])"  # as `botfleet agent` runs (botfleet up too)


class Stack:
    """api + agent as processes; instances through REST."""

    def __init__(self, home: Path, redis_url: str, agent_python: str,
                 agent_env: dict[str, str]) -> None:
        self.home = home
        redis.Redis.from_url(redis_url).flushdb()
        token, agent_token = asyncio.run(prepare_scratch_database(f"sqlite+aiosqlite:///{home / 'botfleet.db'}", token_name="bench"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.env = {**os.environ, "BOTFLEET_HOME": str(home), "BOTFLEET_REDIS_URL": redis_url,
                    "BOTFLEET_DATABASE_URL": f"sqlite+aiosqlite:///{home / 'botfleet.db'}",
                    "BOTFLEET_API_URL": self.url, "BOTFLEET_AGENT_TOKEN": agent_token,
                    "BOTFLEET_AGENT_HOST": "local", "BOTFLEET_LOG_LEVEL": "warning"}
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)  # a real host caches bytecode
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.http = httpx.Client(base_url=self.url, headers=self.headers, timeout=60)
        self._spawn("api", sys.executable, API.replace("{port}", str(self.port)))
        wait_until(self._api_ready, 60, 0.1, "the api ready")
        self._spawn("agent", agent_python, AGENT, agent_env)
        wait_until(self._agent_online, 60, 0.2, "the agent online")

    def _spawn(self, name: str, python: str, code: str, extra: dict[str, str] | None = None) -> None:
        log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        self.procs[name] = subprocess.Popen([python, "-c", code], env={**self.env, **(extra or {})},
                                            stdout=log, stderr=subprocess.STDOUT)

    def _api_ready(self) -> bool:
        if self.procs["api"].poll() is not None:
            raise RuntimeError(f"the api exited; see {self.home / 'api.log'}")
        try:
            return httpx.get(f"{self.url}/api/v1/health/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def _agent_online(self) -> bool:
        if self.procs["agent"].poll() is not None:
            raise RuntimeError(f"the agent exited; see {self.home / 'agent.log'}")
        hosts = self.http.get("/api/v1/hosts").json()
        items = hosts["items"] if isinstance(hosts, dict) else hosts
        return any(h["name"] == "local" and h["status"] == "online" for h in items)

    def create(self, names: list[str], stamps: Path) -> dict[str, str]:
        """Create one stand-in per name and start them all; returns ``{name: instance id}``."""
        ids = {}
        for name in names:
            body = {"name": name, "profile": "passivbot-v8", "config_text": CONFIG_FILE.read_text(),
                    "simulated": True,
                    "env": bot_env(stamps, name, BOTFLEET_DEMO_LINES_PER_SEC="1",
                                   BENCH_WRITE_STAMP="1"),
                    "supervision": {"startsecs": 1.0, "backoff_initial": 0.0, "startretries": 1000}}
            r = self.http.post("/api/v1/instances", json=body)
            r.raise_for_status()
            ids[name] = r.json()["id"]
        # as the panel and the fleet scenario start them: one bulk request
        self.http.post("/api/v1/instances/bulk",
                       json={"action": "start", "ids": list(ids.values())}).raise_for_status()
        return ids

    def states(self) -> dict[str, tuple[str, int | None]]:
        items = self.http.get("/api/v1/instances", params={"limit": 1000}).json()["items"]
        return {i["name"]: (i["state"], i["pid"]) for i in items}

    def close(self) -> None:
        for name in ("agent", "api"):
            proc = self.procs.pop(name)
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        self.http.close()
        for proc in psutil.process_iter(["cwd"]):  # the bots (the agent leaves them running)
            try:
                if str(self.home) in (proc.info["cwd"] or ""):
                    proc.kill()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass


def _follow(url: str, headers: dict[str, str], ids: list[str], stop: threading.Event,
            got: list[float], written: list[float]) -> None:
    """Follow the log SSE of ``ids`` until ``stop``; append receive - line timestamp (s) to
    ``got`` and receive - the bot's own write stamp (``w=``, stamp/sitecustomize.py) to
    ``written``."""
    async def one(client: httpx.AsyncClient, instance_id: str) -> None:
        async with client.stream("GET", f"/api/v1/instances/{instance_id}/logs",
                                 params={"tail": 0}) as response:
            async for line in response.aiter_lines():
                now = time.time()
                if line.startswith("data:") and not stop.is_set():
                    stamp, _, rest = line[5:].strip().partition(" ")
                    got.append(now - datetime.fromisoformat(stamp).timestamp())
                    if rest.startswith("w="):
                        written.append(now - float(rest[2:].split(" ", 1)[0]))

    async def run() -> None:
        timeout = httpx.Timeout(30, read=60)
        limits = httpx.Limits(max_connections=len(ids) + 1)
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout,
                                     limits=limits) as client:
            tasks = [asyncio.create_task(one(client, i)) for i in ids]
            while not stop.is_set():
                await asyncio.sleep(0.2)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(run())


def _batches(url: str) -> int:
    """Event batches the api has taken from the agent (sum of the last seq per agent run)."""
    r = redis.Redis.from_url(url, decode_responses=True)
    return sum(int(v) for key in r.scan_iter("botfleet:agent:*:batches")
               for v in r.hgetall(key).values())


def _usage(pids: dict[str, int], seconds: float) -> dict[str, Any]:
    """CPU (% of one core, the process itself) and max RSS (MiB) over ``seconds``."""
    procs = {n: psutil.Process(p) for n, p in pids.items()}
    before = {n: p.cpu_times() for n, p in procs.items()}
    rss = dict.fromkeys(procs, 0)
    start = time.monotonic()
    while (left := seconds - (time.monotonic() - start)) > 0:
        for n, p in procs.items():
            rss[n] = max(rss[n], p.memory_info().rss)
        time.sleep(min(1.0, left))
    elapsed = time.monotonic() - start
    out: dict[str, Any] = {"window_s": round(elapsed, 1)}
    for n, p in procs.items():
        a, b = p.cpu_times(), before[n]
        used = (a.user + a.system) - (b.user + b.system)
        out[n] = {"cpu_percent": round(100 * used / elapsed, 2),
                  "rss_mib": round(rss[n] / 2**20, 1)}
    return out


def _crash(stack: Stack, stamps: StampLog, name: str) -> float:
    """SIGKILL bot ``name`` once RUNNING; seconds from its exit to its successor's stamp."""
    _, pid = wait_until(lambda: (s := stack.states()[name])[0] == "RUNNING" and s, 60, 0.05,
                            f"{name} RUNNING")
    assert pid is not None
    fd = os.pidfd_open(pid)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bots", type=int, default=100)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument("--follow", type=int, default=20)
    parser.add_argument("--crashes", type=int, default=20)
    parser.add_argument("--agent-python", default=sys.executable)
    parser.add_argument("--agent-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment of the agent (e.g. PYTHONPATH=<other checkout>/backend)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--attach", metavar="CMD", default=None,
                        help="instead of the CPU/RSS window run CMD ({pid} = the agent's pid), "
                             "e.g. 'py-spy record --pid {pid} --format raw -d 30 -o prof.txt'")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="agent-resources-") as tmp:
        home = Path(tmp)
        agent_env = dict(item.split("=", 1) for item in args.agent_env)
        stack = Stack(home, args.redis_url, args.agent_python, agent_env)
        try:
            stamps_path = home / "stamps.txt"
            stamps = StampLog(stamps_path)
            names = [f"bot{i:03d}" for i in range(args.bots)]
            ids = stack.create(names, stamps_path)
            wait_until(lambda: all(s == "RUNNING" for s, _ in stack.states().values()), 180, 0.5,
                       "all RUNNING")
            time.sleep(args.settle)
            stop, latencies, written = threading.Event(), [], []
            follower = threading.Thread(
                target=_follow, args=(stack.url, stack.headers,
                                      [ids[n] for n in names[: args.follow]], stop, latencies,
                                      written),
                daemon=True)
            follower.start()
            pids = {"agent": stack.procs["agent"].pid, "api": stack.procs["api"].pid}
            load_before, batches = os.getloadavg(), _batches(args.redis_url)
            try:
                if args.attach:
                    subprocess.run(args.attach.replace("{pid}", str(pids["agent"])),
                                   shell=True, check=True)
                usage = _usage(pids, 0 if args.attach else args.window)
            finally:
                stop.set()
                follower.join(30)
            if usage["window_s"]:
                usage["batches_per_s"] = round((_batches(args.redis_url) - batches)
                                               / usage["window_s"], 1)
            usage["loadavg_before_after"] = [load_before, os.getloadavg()]
            crashes = [_crash(stack, stamps, names[i % len(names)]) for i in range(args.crashes)]
        finally:
            stack.close()
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine_facts(),
        "agent_python": args.agent_python,
        "agent_env": args.agent_env,
        "bots": args.bots,
        "usage": usage,
        "line_to_sse_ms": percentiles(latencies),
        "write_to_sse_ms": percentiles(written),
        "crash_restart_ms": percentiles(crashes),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
