"""A real botfleet stack for integration tests: the api under uvicorn and a local agent, each
a real subprocess, on a real Redis and a real SQL database (SQLite, and PostgreSQL when
configured), with an admin token and the ``local`` host's agent token."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from botfleet.fleet.embedded_redis import free_port
from botfleet.fleet.scratch import prepare_scratch_database

prepare_database = prepare_scratch_database


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until GET ``url`` answers 200; fail at once if ``proc`` exits meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the process serving {url} exited with code {proc.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer 200 within {timeout} s")


@dataclass
class Stack:
    home: Path
    env: dict[str, str]
    port: int
    token: str
    agent_token: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    #: Address the api listens on (a test network's gateway for hosts in namespaces).
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30)

    def start(self, name: str) -> subprocess.Popen[bytes]:
        """Start ``api``, ``agent`` or ``worker`` as a real process (its output in HOME/<name>.log)."""
        code = {
            "api": "from botfleet.api.app import create_app; import uvicorn; "
                   f"uvicorn.run(create_app(), host={self.host!r}, port={self.port}, log_level='info')",
            "agent": "from botfleet.agent.main import run_agent; from botfleet.settings import AgentSettings; "
                     "run_agent(AgentSettings())",
            "worker": "from botfleet.jobs.worker import run_worker; from botfleet.settings import Settings; "
                      "run_worker(Settings())",
        }[name]
        with open(self.home / f"{name}.log", "ab") as log:  # the child keeps its own copy
            proc = subprocess.Popen([sys.executable, "-c", code], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        if name == "api":
            try:
                wait_http(f"{self.url}/api/v1/health/ready", proc=proc)
            except (RuntimeError, TimeoutError) as exc:
                raise RuntimeError(f"{exc}\n--- api log ---\n{self.log('api')[-4000:]}") from exc
        return proc

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        proc.wait(30)

    def stop_all(self) -> None:
        """SIGTERM every process, then wait for each; one still running 30 s later is killed
        (no process outlives its test) and named in the RuntimeError raised at the end, with
        its log's tail: a botfleet process must end on SIGTERM."""
        procs, self.procs = self.procs, {}
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        stuck = []
        for name, proc in procs.items():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                stuck.append(name)
        if stuck:
            tails = "\n".join(f"--- {name} log ---\n{self.log(name)[-3000:]}" for name in stuck)
            raise RuntimeError(f"{', '.join(stuck)} did not end within 30 s of SIGTERM (killed)\n{tails}")

    def log(self, name: str) -> str:
        return (self.home / f"{name}.log").read_text(errors="replace")


@pytest.fixture
def stack(home: Path, db_url: str, clean_redis: str) -> Iterator[Stack]:
    token, agent_token = asyncio.run(prepare_database(db_url))
    port = free_port()
    env = {
        **os.environ,
        "BOTFLEET_HOME": str(home),
        "BOTFLEET_DATABASE_URL": db_url,
        "BOTFLEET_REDIS_URL": clean_redis,
        "BOTFLEET_API_URL": f"http://127.0.0.1:{port}",
        "BOTFLEET_AGENT_TOKEN": agent_token,
        "BOTFLEET_AGENT_HOST": "local",
        "BOTFLEET_HEARTBEAT_INTERVAL": "1",
        "BOTFLEET_LOG_LEVEL": "warning",
    }
    s = Stack(home=home, env=env, port=port, token=token, agent_token=agent_token)
    try:
        yield s
    finally:
        s.stop_all()
        _kill_bots(home)


def _kill_bots(home: Path) -> None:
    """Tests end with no bot left behind: kill every process whose cwd or argv is under HOME."""
    import psutil

    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        try:
            text = " ".join(proc.info["cmdline"] or []) + " " + (proc.info["cwd"] or "")
            if str(home) in text and proc.pid != os.getpid():
                proc.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass


async def wait_for(predicate: Any, timeout: float = 30.0, interval: float = 0.1, what: str = "condition") -> Any:
    """Await ``predicate()`` (sync or async) until it returns a truthy value; return it."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last value: {last!r}")


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    stack.start("api")
    async with stack.client() as client:
        yield client
