"""Provisioning a simulated VPS (a real sshd on loopback, its own directory) through the api:
from scratch and again (idempotent, the running bot untouched), bots on the remote host through
the same API, rescue over SSH, uninstall; and the reverse tunnel: link cut -> host offline,
instances UNKNOWN, bots running; link back -> reconciled, no bot restarted.

Dependency wheels are downloaded once per session (pip's cache) into a wheelhouse that the
provisioning uploads and installs with ``--no-index``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from botfleet.fleet.embedded_redis import free_port
from botfleet.remote.package import build_wheel
from tests.integration.conftest import Stack, wait_for
from tests.integration.sshd import SSHD
from tests.integration.test_fleet_lifecycle import create, until_state
from tests.integration.test_remote_hosts import events_of, host_body

#: A base directory whose name a shell would love to interpret (invariant 4).
NASTY = "vps dir; $(touch PWNED) 'q\" `id`"


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheelhouse")
    wheel = build_wheel()
    (out.parent / wheel.filename).write_bytes(wheel.data)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "-d", str(out),
                    str(out.parent / wheel.filename)], check=True, timeout=300)
    for stale in out.glob("botfleet-*"):
        stale.unlink()
    return out


@pytest.fixture
def vps(tmp_path: Path) -> Iterator[SSHD]:
    server = SSHD(tmp_path / "sshd").start()
    try:
        yield server
    finally:
        server.stop()
        _kill_under(tmp_path)


def _kill_under(root: Path) -> None:
    """No agent or bot of a simulated VPS outlives its test."""
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        try:
            if str(root) in " ".join(proc.info["cmdline"] or []) + " " + (proc.info["cwd"] or ""):
                proc.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass


@pytest.fixture
async def remote_api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The api, reachable by agents at its public URL, hosts offline after 3 s of silence."""
    stack.env.update(BOTFLEET_PUBLIC_URL=stack.url, BOTFLEET_API_PORT=str(stack.port),
                     BOTFLEET_HOST_OFFLINE_AFTER="3")
    stack.start("api")
    async with stack.client() as client:
        yield client


async def register(api: httpx.AsyncClient, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """Create host ``name`` from ``body``, scan its key and accept it; returns the scan."""
    r = await api.post("/api/v1/hosts", json=body)
    assert r.status_code == 201, r.text
    scan = (await api.post(f"/api/v1/hosts/{name}/scan")).json()
    assert (await api.post(f"/api/v1/hosts/{name}/accept", json=scan)).status_code == 200
    return dict(scan)


async def add_host(api: httpx.AsyncClient, name: str, server: SSHD, base: Path, **extra: Any) -> None:
    await register(api, name, host_body(name, server, base, **extra))


async def provision(api: httpx.AsyncClient, name: str, wheelhouse: Path, *, wait: float = 90,
                    timeout: float = 600) -> dict[str, Any]:
    """Provision host ``name`` from ``wheelhouse``, waiting up to ``wait`` s for its agent to
    dial in (the api's own wait); returns the api's answer."""
    r = await api.post(f"/api/v1/hosts/{name}/provision", json={"wheelhouse": str(wheelhouse), "wait": wait},
                       timeout=timeout)
    assert r.status_code == 200, r.text
    return r.json()


async def host_status(api: httpx.AsyncClient, name: str) -> str:
    return str((await api.get(f"/api/v1/hosts/{name}")).json()["status"])


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_provision_twice_run_a_bot_rescue_and_uninstall(
    remote_api: httpx.AsyncClient, vps: SSHD, wheelhouse: Path, tmp_path: Path
) -> None:
    api = remote_api
    base = tmp_path / NASTY
    await add_host(api, "vps-1", vps, base)

    first = await provision(api, "vps-1", wheelhouse)
    assert first["online"] is True and first["started_as"] in ("detached", "systemd")
    assert Path(first["base_dir"]) == base and (base / "venv" / "bin" / "botfleet").exists()
    assert (base / ".env").stat().st_mode & 0o777 == 0o600
    assert not list(Path.home().glob("PWNED")) and not list(tmp_path.rglob("PWNED"))
    steps = [e["data"]["step"] for e in await events_of(api, "host.provision")]  # type: ignore[index]
    assert {"upload", "install", "settings", "start", "done"} <= set(steps)
    facts = (await api.post("/api/v1/hosts/vps-1/test")).json()
    assert facts["agent_installed"] is True and facts["agent_running"]

    bot = await create(api, "remote-bot", host="vps-1")
    assert (await api.post(f"/api/v1/instances/{bot['id']}/start")).status_code in (200, 202)
    running = await until_state(api, bot["id"], "RUNNING", timeout=60)
    pid = running["pid"]
    assert alive(pid) and str(base) in (psutil.Process(pid).cwd())

    again = await provision(api, "vps-1", wheelhouse)  # idempotent: nothing re-installed
    assert again["online"] is True
    same = await until_state(api, bot["id"], "RUNNING", timeout=60)
    assert same["pid"] == pid and same["restart_count"] == running["restart_count"] and alive(pid)

    log = (await api.get("/api/v1/hosts/vps-1/agent/log")).json()["log"]
    assert "agent" in log

    refused = await api.post("/api/v1/hosts/vps-1/uninstall", json={})
    assert refused.status_code == 409 and "remote-bot" in refused.json()["detail"]
    rescue = (await api.post("/api/v1/hosts/vps-1/stop-all", timeout=120)).json()
    assert rescue == {"stopped": [bot["id"]], "still_running": []}
    await wait_for(lambda: not alive(pid), 30, what="the bot stopped by the rescue")
    assert (await api.get(f"/api/v1/instances/{bot['id']}")).json()["desired_state"] == "stopped"

    restarted = (await api.post("/api/v1/hosts/vps-1/agent/restart")).json()
    assert restarted["started_as"] in ("detached", "systemd")
    await until_state(api, bot["id"], "STOPPED", "EXITED", timeout=60)
    gone = await api.post("/api/v1/hosts/vps-1/uninstall", json={})
    assert gone.status_code == 200, gone.text
    assert not base.exists()


async def test_tunnel_link_cut_marks_offline_and_back_reconciles_without_restart(
    remote_api: httpx.AsyncClient, vps: SSHD, wheelhouse: Path, tmp_path: Path
) -> None:
    api = remote_api
    await add_host(api, "vps-t", vps, tmp_path / "tunnelled", connect_mode="tunnel", tunnel_port=free_port())
    assert (await provision(api, "vps-t", wheelhouse))["online"] is True
    bot = await create(api, "tunnel-bot", host="vps-t")
    await api.post(f"/api/v1/instances/{bot['id']}/start")
    before = await until_state(api, bot["id"], "RUNNING", timeout=60)

    vps.stop()  # the link is cut; the agent and the bot on the "VPS" keep running

    async def host_status() -> str:
        return str((await api.get("/api/v1/hosts/vps-t")).json()["status"])

    await wait_for(lambda: _is(host_status(), "offline"), 60, what="host offline")
    assert (await api.get(f"/api/v1/instances/{bot['id']}")).json()["state"] == "UNKNOWN"
    assert alive(before["pid"])

    vps.start()
    await wait_for(lambda: _is(host_status(), "online"), 60, what="host online again")
    after = await until_state(api, bot["id"], "RUNNING", timeout=60)
    assert after["pid"] == before["pid"] and after["restart_count"] == before["restart_count"]
    await api.post(f"/api/v1/instances/{bot['id']}/stop")
    await until_state(api, bot["id"], "STOPPED", "EXITED", timeout=60)


async def _is(value: Any, expected: str) -> bool:
    return (await value) == expected


async def test_move_between_hosts_never_overlaps_and_bulk_reports_each(
    stack: Stack, remote_api: httpx.AsyncClient, vps: SSHD, wheelhouse: Path, tmp_path: Path
) -> None:
    api = remote_api
    stack.start("agent")  # the local host
    await add_host(api, "vps-m", vps, tmp_path / "moved")
    assert (await provision(api, "vps-m", wheelhouse))["online"] is True
    bot = await create(api, "mover")
    await api.post(f"/api/v1/instances/{bot['id']}/start")
    old = await until_state(api, bot["id"], "RUNNING", timeout=60)

    lost = await api.post(f"/api/v1/instances/{bot['id']}/move", json={"host": "vps-m", "force": True})
    assert lost.status_code == 409 and "only for a lost host" in lost.json()["detail"]
    r = await api.post(f"/api/v1/instances/{bot['id']}/move", json={"host": "vps-m"}, timeout=120)
    assert r.status_code == 200, r.text
    assert not alive(old["pid"])  # confirmed stop on the old host before the move
    new = await until_state(api, bot["id"], "RUNNING", timeout=60)
    assert new["pid"] != old["pid"] and str(tmp_path / "moved") in psutil.Process(new["pid"]).cwd()
    history = (await api.get(f"/api/v1/instances/{bot['id']}/events", params={"limit": 200})).json()
    items = history["items"] if isinstance(history, dict) else history
    states = [(e["id"], e["data"].get("new"), e["data"].get("pid")) for e in items if e["kind"] == "instance.state"]
    old_stop = max(i for i, s, p in states if p == old["pid"] and s in ("STOPPING", "STOPPED", "EXITED")
                   or (s in ("STOPPED", "EXITED") and p is None))
    new_start = min(i for i, s, p in states if p == new["pid"])
    assert old_stop < new_start

    results = (await api.post("/api/v1/instances/bulk",
                              json={"action": "restart", "ids": [bot["id"], "no-such-bot"]})).json()
    assert results[0]["ok"] is True and results[1] == {
        "id": "no-such-bot", "ok": False, "generation": None, "status": 404, "detail": "no instance 'no-such-bot'"}
    await wait_for(lambda: not alive(new["pid"]), 60, what="the restarted bot's old process gone")
    stopped = (await api.post("/api/v1/instances/bulk", json={"action": "stop", "ids": [bot["id"]]})).json()
    assert stopped[0]["ok"] is True
    await until_state(api, bot["id"], "STOPPED", "EXITED", timeout=60)
