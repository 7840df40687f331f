"""botfleet under test the way a user runs it: api, agent (and worker for jobs) as real
processes on a private redis-server and a SQLite database, driven over REST and SSE.

The stack set-up follows tests/integration/conftest.py (copied, not imported: the bench does
not depend on the test suite).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from botfleet.fleet.embedded_redis import EmbeddedRedis, free_port
from botfleet.fleet.scratch import prepare_scratch_database

from common import CONFIG_FILE, PYTHON, BotDef, wait_until

__all__ = ["Botfleet"]

CODE = {
    "api": "from botfleet.api.app import create_app; import uvicorn; "
           "uvicorn.run(create_app(), host='{host}', port={port}, log_level='warning')",
    "agent": "from botfleet.cli import main; main(['agent'])",  # as `botfleet agent` runs
    "worker": "from botfleet.jobs.worker import run_worker; from botfleet.settings import Settings; "
              "run_worker(Settings())",
}


def _epoch(iso: str | None) -> float | None:
    """``time.time()`` of an ISO 8601 timestamp (naive = UTC), None when absent."""
    if not iso:
        return None
    moment = datetime.fromisoformat(iso)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class Botfleet:
    """The botfleet stack. ``extra_env`` is added to every botfleet process (e.g. the
    worker's stamp hook for the jobs scenario). ``api_host``: the address the api listens on
    and agents dial (the remote scenario's hosts reach it on a bridge)."""

    name = "botfleet"

    def __init__(self, workdir: Path, log_max_bytes: int, log_backups: int, api_host: str = "127.0.0.1") -> None:
        self.api_host = api_host
        self.bulk = os.environ.get("BENCH_BOTFLEET_BULK", "1") != "0"
        self.paths_used: set[str] = set()
        self.home = workdir / "botfleet"
        self.home.mkdir(parents=True, exist_ok=True)
        self.redis = EmbeddedRedis(dir=self.home / "redis", persist=False)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.ids: dict[str, str] = {}
        self._watcher: threading.Thread | None = None
        self._watch_stop = threading.Event()
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self._states: dict[str, tuple[str, int | None]] = {}
        #: Every instance.state event seen on the fleet stream while watching:
        #: (receive time, name, new state, agent's time of the change, api's record time),
        #: times as time.time(); see :meth:`state_trace`.
        self._trace: list[tuple[float, str, str, float, float]] = []
        redis_url = self.redis.start()
        try:
            self._up(redis_url, log_max_bytes, log_backups)
        except BaseException:
            self.close()
            raise

    def _up(self, redis_url: str, log_max_bytes: int, log_backups: int) -> None:
        # The schema is made by a fresh interpreter, from the same code the api will import
        # (the checkout may change while a long bench runs).
        url = f"sqlite+aiosqlite:///{self.home / 'botfleet.db'}"
        made = subprocess.run([PYTHON, __file__, "prepare", url], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent)
        token, agent_token = json.loads(made.stdout.strip().splitlines()[-1])
        self.token = token
        self.port = free_port()
        self.url = f"http://{self.api_host}:{self.port}"
        self.env = {
            **os.environ,
            "BOTFLEET_HOME": str(self.home),
            "BOTFLEET_REDIS_URL": redis_url,
            "BOTFLEET_API_URL": self.url,
            "BOTFLEET_API_HOST": self.api_host,
            "BOTFLEET_API_PORT": str(self.port),
            "BOTFLEET_PUBLIC_URL": self.url,
            "BOTFLEET_AGENT_TOKEN": agent_token,
            "BOTFLEET_AGENT_HOST": "local",
            "BOTFLEET_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "warning"),
            "BOTFLEET_LOG_MAX_BYTES": str(log_max_bytes),
            "BOTFLEET_LOG_BACKUPS": str(log_backups),
        }
        self.http = httpx.Client(base_url=self.url, headers=self._auth(), timeout=60)
        self.start_process("api")
        self.start_process("agent")
        wait_until(self._agent_online, 60, 0.2, "the local agent online")

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    # -- botfleet's own processes --------------------------------------------------------------

    def start_process(self, name: str, extra_env: dict[str, str] | None = None) -> None:
        """Start ``api``, ``agent`` or ``worker`` (output in HOME/<name>.log)."""
        log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        env = {**self.env, **(extra_env or {})}
        if name == "agent" and os.environ.get("BENCH_AGENT_PYTHONPATH"):  # A/B another agent
            env["PYTHONPATH"] = os.environ["BENCH_AGENT_PYTHONPATH"]
        code = CODE[name].replace("{port}", str(self.port)).replace("{host}", self.api_host)
        profile_dir = os.environ.get("BENCH_PROFILE_DIR")
        if profile_dir and name in ("api", "agent"):  # where their CPU goes (cProfile, slower)
            out = Path(profile_dir, f"{name}.prof")
            code = f"import cProfile; cProfile.run({code!r}, {str(out)!r})"
        # Each in a session of its own, as `botfleet up` and systemd run them: with the kernel's
        # autogroup scheduling a session is one unit of CPU fairness, and sharing this script's
        # would pit the agent against the api and this script.
        self.procs[name] = subprocess.Popen([PYTHON, "-c", code], env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        if name == "api":
            wait_until(self._api_ready, 60, 0.1, "the api ready")

    def kill_process(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        proc.wait(30)

    def _api_ready(self) -> bool:
        if self.procs["api"].poll() is not None:
            raise RuntimeError(f"the api exited; see {self.home / 'api.log'}")
        try:
            return httpx.get(f"{self.url}/api/v1/health/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def _agent_online(self) -> bool:
        r = self.http.get("/api/v1/hosts")
        if r.status_code != 200:
            raise RuntimeError(f"GET /api/v1/hosts: {r.status_code} {r.text[:500]}")
        hosts = r.json()
        items = hosts["items"] if isinstance(hosts, dict) else hosts
        return any(h["name"] == "local" and h["status"] == "online" for h in items)

    def supervisor_pids(self) -> list[int]:
        """The agent: the process that supervises bots (api, worker, Redis reported apart)."""
        return [self.procs["agent"].pid]

    def service_pids(self) -> dict[str, int]:
        pids = {name: p.pid for name, p in self.procs.items()}
        if self.redis.process is not None:
            pids["redis"] = self.redis.process.pid
        return pids

    # -- bots ----------------------------------------------------------------------------------

    def _body(self, bot: BotDef) -> dict[str, Any]:
        supervision = {"startsecs": bot.startsecs, "backoff_initial": 0.0,
                       "autorestart": "always" if bot.autorestart else "never", "startretries": 1000}
        body: dict[str, Any] = {"name": bot.name, "profile": bot.botfleet_profile, "env": bot.env,
                                "supervision": supervision}
        if bot.botfleet_profile == "custom":
            body.update(argv=["{python}", *bot.argv[1:]], config={})
        else:  # the stand-in: botfleet renders `{python} -m botfleet.demo live CONFIG` itself
            body.update(config_text=CONFIG_FILE.read_text(), simulated=True)
        if bot.host:
            body["host"] = bot.host
        return body

    def define(self, bots: list[BotDef]) -> None:
        """Create the instances (stopped)."""
        async def run() -> None:
            async with httpx.AsyncClient(base_url=self.url, headers=self._auth(), timeout=60) as client:
                sem = asyncio.Semaphore(8)

                async def one(bot: BotDef) -> None:
                    async with sem:
                        r = await client.post("/api/v1/instances", json=self._body(bot))
                    if r.status_code != 201:
                        raise RuntimeError(f"create {bot.name}: {r.status_code} {r.text}")
                    self.ids[bot.name] = r.json()["id"]

                await asyncio.gather(*(one(b) for b in bots))

        asyncio.run(run())

    def _each(self, names: list[str], action: str) -> None:
        """``POST /instances/bulk`` (what the panel uses) when the api has it and
        ``self.bulk``, else ``POST /instances/{id}/<action>`` for all ``names`` at once (one
        request each). ``self.paths_used`` records which."""
        if self.bulk and len(names) > 1:
            r = self.http.post("/api/v1/instances/bulk", json={"action": action, "ids": [self.ids[n] for n in names]})
            if r.status_code == 200:
                bad = [x for x in r.json() if not x["ok"]]
                if bad:
                    raise RuntimeError(f"bulk {action}: {bad[0]}")
                self.paths_used.add("POST /api/v1/instances/bulk")
                return
            if r.status_code not in (404, 405):
                raise RuntimeError(f"bulk {action}: {r.status_code} {r.text[:500]}")
        self.paths_used.add("POST /api/v1/instances/{id}/" + action + " (concurrent)")

        async def run() -> None:
            limits = httpx.Limits(max_connections=len(names) + 1)
            async with httpx.AsyncClient(base_url=self.url, headers=self._auth(), timeout=60,
                                         limits=limits) as client:
                replies = await asyncio.gather(*(client.post(f"/api/v1/instances/{self.ids[n]}/{action}")
                                                 for n in names))
            bad = [r for r in replies if r.status_code != 202]
            if bad:
                raise RuntimeError(f"{action}: {bad[0].status_code} {bad[0].text}")

        asyncio.run(run())

    def start(self, names: list[str]) -> None:
        self._each(names, "start")

    def stop(self, names: list[str]) -> None:
        self._each(names, "stop")

    def restart(self, names: list[str]) -> None:
        self._each(names, "restart")

    def states(self) -> dict[str, tuple[str, int | None]]:
        """``{name: (state, pid)}``: from the fleet event stream while :meth:`watch` is on
        (as the panel sees it, no polling load on the api), else one GET of the list."""
        if self._watcher is not None:
            with self._lock:
                return dict(self._states)
        items = self.http.get("/api/v1/instances", params={"limit": 1000}).json()["items"]
        return {i["name"]: (i["state"], i["pid"]) for i in items if i["name"] in self.ids}

    def watch(self, on: bool) -> None:
        """Follow ``GET /api/v1/events`` (SSE) and keep every instance's last state."""
        if on and self._watcher is None:
            # Connect first, then read the list: a name that had an event since the connect
            # keeps it (the event is as new as the list or newer; later ones follow).
            self._states = {}
            self._connected = threading.Event()
            self._watch_stop = threading.Event()
            self._watcher = threading.Thread(target=self._follow_events, daemon=True)
            self._watcher.start()
            if not self._connected.wait(30):
                raise TimeoutError("the fleet event stream did not connect")
            items = self.http.get("/api/v1/instances", params={"limit": 1000}).json()["items"]
            with self._lock:
                for i in items:
                    if i["name"] in self.ids:
                        self._states.setdefault(i["name"], (i["state"], i["pid"]))
        elif not on and self._watcher is not None:
            self._watch_stop.set()
            self._watcher.join(30)
            self._watcher = None

    def _follow_events(self) -> None:
        names = {v: k for k, v in self.ids.items()}
        with httpx.Client(base_url=self.url, headers=self._auth(), timeout=httpx.Timeout(30, read=None)) as c:
            with c.stream("GET", "/api/v1/events") as response:
                self._connected.set()
                for line in response.iter_lines():
                    if self._watch_stop.is_set():
                        return
                    if not line.startswith("data:"):
                        continue
                    event = json.loads(line[5:])
                    name = names.get(event.get("instance_id") or "")
                    if event.get("kind") == "instance.state" and name:
                        data = event["data"]
                        received = time.time()
                        agent_time = _epoch(data.get("time")) or received
                        with self._lock:
                            self._states[name] = (data["new"], data.get("pid"))
                            self._trace.append((received, name, data["new"], agent_time,
                                                _epoch(event.get("time")) or received))

    def state_trace(self, since: float) -> list[tuple[float, str, str, float, float]]:
        """The instance.state events received on the fleet stream at or after ``since``
        (``time.time()``): ``(received, name, new state, agent time, api record time)``. The
        agent's time is when it made the change (STOPPING: right before the first signal;
        STOPPED: once the exit was reaped), the api's when it stored the event; all three
        clocks are this machine's."""
        with self._lock:
            return [t for t in self._trace if t[0] >= since]

    def clear(self) -> None:
        """Stop and delete every bench instance."""
        names = list(self.ids)
        if not names:
            return
        self.stop(names)
        wait_until(lambda: all(s in ("STOPPED", "EXITED", "FATAL") for s, _ in self.states().values()),
                   120, 0.2, "all instances stopped")
        for name in names:
            self.http.delete(f"/api/v1/instances/{self.ids[name]}")
        self.ids.clear()

    def log_files(self, name: str) -> list[Path]:
        log_dir = self.home / "agent" / "logs" / self.ids[name]
        return sorted(log_dir.glob("output.log*"))

    # -- log consumers -------------------------------------------------------------------------

    def follow(self, name: str, stop: threading.Event) -> Iterator[tuple[float, str]]:
        """(receive time, line) of the instance's log SSE (new lines only) until ``stop``."""
        url = f"/api/v1/instances/{self.ids[name]}/logs"
        with httpx.Client(base_url=self.url, headers=self._auth(), timeout=httpx.Timeout(30, read=60)) as c:
            with c.stream("GET", url, params={"tail": 0}) as response:
                for line in response.iter_lines():
                    now = time.time()
                    if line.startswith("data:"):
                        yield now, line[5:].removeprefix(" ")
                    if stop.is_set():
                        return

    def stalled_consumer(self, name: str) -> socket.socket:
        """A client that opens the log SSE and never reads (tiny receive buffer); close the
        returned socket to end it."""
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((self.api_host, self.port))
        request = (f"GET /api/v1/instances/{self.ids[name]}/logs?tail=0 HTTP/1.1\r\n"
                   f"Host: 127.0.0.1\r\nAuthorization: Bearer {self.token}\r\n"
                   "Accept: text/event-stream\r\n\r\n")
        sock.sendall(request.encode())
        return sock

    # -- jobs ----------------------------------------------------------------------------------

    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        r = self.http.post("/api/v1/jobs", json=body)
        if r.status_code != 201:
            raise RuntimeError(f"create job: {r.status_code} {r.text}")
        return r.json()

    def job(self, job_id: str) -> dict[str, Any]:
        return self.http.get(f"/api/v1/jobs/{job_id}").json()

    def config(self) -> dict[str, Any]:
        return json.loads(CONFIG_FILE.read_text())

    def close(self) -> None:
        """Stop and delete the bench's instances, then botfleet's processes and Redis."""
        if hasattr(self, "http"):
            try:
                self.clear()
            except Exception as exc:  # noqa: BLE001 - best effort, report and go on
                print(f"botfleet: clear failed: {exc!r}")
            self.http.close()
        for name in list(self.procs):
            self.kill_process(name, signal.SIGTERM)
        self.redis.stop()


if __name__ == "__main__":  # `botfleet_tool.py prepare URL`: make the schema, print the tokens
    import sys

    if sys.argv[1:2] == ["prepare"]:
        print(json.dumps(asyncio.run(prepare_scratch_database(sys.argv[2], token_name="bench"))))
