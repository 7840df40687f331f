"""What the api does to a host over SSH: test, provision/upgrade, uninstall, and rescue
(restart the agent, read its log, stop every bot from the agent's process records even when
the agent is dead). Each call takes the host row, reaches it through the :class:`SSHPool`,
and turns SSH failures into problems the api answers with: a changed host key is a
``409`` plus a ``host.key_mismatch`` event; anything else unreachable is a ``502``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncssh
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from botfleet.db.models import Host, Instance, utcnow
from botfleet.fleet.credentials import hash_token, new_token
from botfleet.fleet.errors import Conflict
from botfleet.fleet.hosts import HostUnreachable, emit, ssh_target
from botfleet.protocol import InstanceState
from botfleet.remote import provision as steps
from botfleet.remote.pool import SSHPool
from botfleet.remote.ssh import HostKeyMismatch, HostKeyNotAccepted, RemoteError, command, run
from botfleet.settings import Settings

__all__ = ["agent_log", "provision_host", "restart_agent", "stop_all_bots", "test_host", "uninstall_host"]

_PROBE = r"""
import json, os, shutil, subprocess, sys
base = sys.argv[1]
out = {"os": " ".join(os.uname()[i] for i in (0, 2, 4)), "python": sys.version.split()[0]}
try:
    rel = {k: v.strip('"') for k, v in (l.rstrip().split("=", 1) for l in open("/etc/os-release") if "=" in l)}
    out["os"] = rel.get("PRETTY_NAME", out["os"]) + " (" + out["os"] + ")"
except OSError:
    pass
where = base if os.path.isdir(base) else os.path.expanduser("~")
usage = shutil.disk_usage(where)
out["disk_free"], out["disk_total"] = usage.free, usage.total
mem = dict(l.split(":", 1) for l in open("/proc/meminfo"))
out["memory_available"] = int(mem["MemAvailable"].split()[0]) * 1024
out["memory_total"] = int(mem["MemTotal"].split()[0]) * 1024
try:
    out["systemd_user"] = subprocess.run(["systemctl", "--user", "show-environment"], capture_output=True,
                                         timeout=10).returncode == 0
except (OSError, subprocess.TimeoutExpired):
    out["systemd_user"] = False
py = os.path.join(base, "venv", "bin", "python")
out["agent_installed"], out["agent_version"] = False, None
if os.path.exists(py):
    r = subprocess.run([py, "-c", "import botfleet; print(botfleet.__version__)"], capture_output=True, text=True)
    out["agent_installed"], out["agent_version"] = r.returncode == 0, (r.stdout.strip() or None)
print(json.dumps(out))
"""

_STOP_ALL = r"""
import json, os, pathlib, signal, sys, time
import psutil
# The host's own botfleet reads its state documents (state.json + state.log), so the format
# is read by the code that wrote it.
from botfleet.agent.layout import StateLayout, StateStore
layout = StateLayout(pathlib.Path(sys.argv[1]))
groups = {}
for instance_id in sorted(layout.known_instance_ids()):
    try:
        rec = (StateStore(layout.instance(instance_id)).read() or {}).get("process") or {}
        p = psutil.Process(int(rec["pid"]))
        if p.status() != psutil.STATUS_ZOMBIE and abs(p.create_time() - float(rec["create_time"])) < 1:
            groups[instance_id] = int(rec["pgid"])
    except Exception:
        continue
def alive(pgid):
    for p in psutil.process_iter(["status"]):
        try:
            if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (psutil.Error, OSError):
            pass
    return False
left = dict(groups)
for sig, wait in ((signal.SIGINT, 10), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
    for pgid in left.values():
        try:
            os.killpg(pgid, sig)
        except OSError:
            pass
    end = time.monotonic() + wait
    while left and time.monotonic() < end:
        left = {k: g for k, g in left.items() if alive(g)}
        time.sleep(0.2)
    if not left:
        break
print(json.dumps({"stopped": sorted(set(groups) - set(left)), "still_running": sorted(left)}))
"""


@contextlib.asynccontextmanager
async def _ssh(session: AsyncSession, redis: Redis, settings: Settings, pool: SSHPool,
               host: Host) -> AsyncIterator[asyncssh.SSHClientConnection]:
    target = ssh_target(settings, host)
    try:
        async with pool.channel(host.id, target) as conn:
            yield conn
    except HostKeyNotAccepted as exc:
        raise Conflict(exc.message, key="fingerprint") from exc
    except HostKeyMismatch as exc:
        pool.drop(host.id)
        await emit(session, redis, settings, host, "host.key_mismatch",
                   {"accepted": host.host_key_fingerprint, "address": f"{host.address}:{host.port}"})
        raise Conflict(exc.message, key="fingerprint") from exc
    except RemoteError as exc:
        raise HostUnreachable(exc.message) from exc


async def _base(conn: asyncssh.SSHClientConnection, host: Host) -> str:
    return await steps.resolve_base(conn, host.base_dir)


async def test_host(session: AsyncSession, redis: Redis, settings: Settings, pool: SSHPool,
                    host: Host) -> dict[str, Any]:
    """Connect and report ``{"os", "python", "disk_free", "disk_total" (bytes),
    "memory_available", "memory_total" (bytes), "systemd_user", "agent_installed",
    "agent_version", "agent_running" (pid or None)}``. Raises Conflict (host key) or
    HostUnreachable."""
    async with _ssh(session, redis, settings, pool, host) as conn:
        async with conn.start_sftp_client() as sftp:
            base = str(await sftp.realpath(host.base_dir))
        try:
            result = await run(conn, command(["python3", "-c", _PROBE, base]), timeout=60)
        except RemoteError as exc:
            raise HostUnreachable(f"the host has no working python3: {exc.message}") from exc
        report: dict[str, Any] = json.loads(str(result.stdout))
        report["agent_running"] = await steps.agent_running(conn, base)
        report["base_dir"] = base
    return report


async def _busy(session: AsyncSession, host: Host) -> list[str]:
    rows = (await session.scalars(select(Instance).where(Instance.host_id == host.id))).all()
    idle = {InstanceState.STOPPED, InstanceState.EXITED, InstanceState.FATAL}
    return sorted(i.name for i in rows if i.desired_state == "running" or i.state not in idle)


def agent_api_url(settings: Settings, host: Host) -> str:
    """The URL the host's agent dials: the api's public URL, or the loopback end of the
    reverse tunnel (``tunnel`` mode)."""
    if host.connect_mode == "tunnel":
        return f"http://127.0.0.1:{host.tunnel_port}"
    return settings.api_public_url


async def provision_host(session: AsyncSession, redis: Redis, settings: Settings, pool: SSHPool, host: Host,
                         *, wheelhouse: Path | None = None, force: bool = False, upgrade: bool = False,
                         wait: float = 60.0) -> dict[str, Any]:
    """Install (or upgrade) and start the host's agent with a new agent token, then wait up to
    ``wait`` seconds for it to announce. Progress: ``host.provision`` events ``{step, detail}``.
    Idempotent. Returns ``{"base_dir", "started_as", "online", "agent_version", "seconds"}``.

    Raises:
        Conflict: host key not accepted or changed; ``upgrade`` while bots run without ``force``.
        HostUnreachable: SSH or a remote step failed (its output in the message).
    """
    if upgrade and not force and (busy := await _busy(session, host)):
        raise Conflict(f"host {host.name!r} runs {', '.join(busy)}: stop them first or upgrade with force "
                       "(the agent restarts; bots keep running on the old code until their next start)")
    started = asyncio.get_running_loop().time()

    async def progress(step: str, detail: str) -> None:
        await emit(session, redis, settings, host, "host.provision", {"step": step, "detail": detail})

    token = new_token()
    # The heartbeat pace is the controller's: it is what ``host_offline_after`` is set against.
    env = {"BOTFLEET_API_URL": agent_api_url(settings, host), "BOTFLEET_AGENT_TOKEN": token,
           "BOTFLEET_AGENT_HOST": host.name, "BOTFLEET_HEARTBEAT_INTERVAL": f"{settings.heartbeat_interval:g}"}
    previous_run = host.agent_run_id
    async with _ssh(session, redis, settings, pool, host) as conn:
        await progress("connect", f"{host.username}@{host.address}:{host.port}")
        try:
            base = await steps.install(conn, steps.AgentPlan(base=host.base_dir, env=env, wheelhouse=wheelhouse),
                                       progress)
            host.agent_token_hash = hash_token(token)
            await session.commit()
            how = await steps.start_agent(conn, base, progress)
        except RemoteError as exc:
            await progress("failed", exc.message)
            raise HostUnreachable(f"provisioning {host.name!r} failed: {exc.message}") from exc
    online = False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while loop.time() < deadline:
        await session.refresh(host)
        if host.agent_run_id != previous_run and host.status == "online":
            online = True
            break
        await asyncio.sleep(0.2)
    host.provisioned_at = utcnow()
    await progress("done" if online else "waiting",
                   "agent online" if online else f"agent not announced within {wait:.0f} s: read its log")
    return {"base_dir": base, "started_as": how, "online": online, "agent_version": host.agent_version,
            "seconds": round(loop.time() - started, 2)}


async def restart_agent(session: AsyncSession, redis: Redis, settings: Settings, pool: SSHPool,
                        host: Host) -> dict[str, Any]:
    """Restart the host's agent over SSH (its bots keep running). Returns ``{"started_as"}``."""
    async with _ssh(session, redis, settings, pool, host) as conn:
        base = await _base(conn, host)
        try:
            how = await steps.start_agent(conn, base)
        except RemoteError as exc:
            raise HostUnreachable(exc.message) from exc
    await emit(session, redis, settings, host, "host.rescue", {"action": "restart-agent"})
    return {"started_as": how}


async def agent_log(session: AsyncSession, redis: Redis, settings: Settings, pool: SSHPool, host: Host,
                    max_bytes: int = 65536) -> str:
    """The tail (``max_bytes``) of the host agent's own log file."""
    async with _ssh(session, redis, settings, pool, host) as conn:
        return await steps.read_agent_log(conn, await _base(conn, host), max_bytes)


async def stop_all_bots(session: AsyncSession, redis: Redis, settings: Settings, pool: SSHPool,
                        host: Host) -> dict[str, Any]:
    """Rescue: stop the agent (so it restarts nothing), then stop every bot of the host from
    the agent's recorded process groups (SIGINT 10 s, SIGTERM 5 s, SIGKILL), and set every
    instance's desired state to stopped. Returns ``{"stopped": [ids], "still_running": [ids]}``."""
    from botfleet.fleet.instances import set_desired
    from botfleet.protocol import DesiredState

    async with _ssh(session, redis, settings, pool, host) as conn:
        base = await _base(conn, host)
        try:
            await steps.stop_agent(conn, base)
            p = steps.remote_paths(base)
            result = await run(conn, command([p.python, "-c", _STOP_ALL, f"{p.home}/agent"]), timeout=60)
        except RemoteError as exc:
            raise HostUnreachable(exc.message) from exc
    report: dict[str, Any] = json.loads(str(result.stdout))
    for instance in (await session.scalars(select(Instance).where(Instance.host_id == host.id))).all():
        if instance.desired_state == "running":
            await set_desired(session, redis, settings, instance, DesiredState.STOPPED, action="rescue-stop")
    await emit(session, redis, settings, host, "host.rescue", {"action": "stop-all", **report})
    return report


async def uninstall_host(session: AsyncSession, redis: Redis, settings: Settings, pool: SSHPool, host: Host,
                         *, force: bool = False) -> dict[str, Any]:
    """Remove the agent and botfleet's directory from the host. Refuses while instances run
    or should run, unless ``force`` (then every bot is stopped first, see :func:`stop_all_bots`).

    Raises:
        Conflict: bots run and not ``force``; host key trouble.
        HostUnreachable: SSH failed.
    """
    busy = await _busy(session, host)
    if busy and not force:
        raise Conflict(f"host {host.name!r} runs or should run {', '.join(busy)}: stop them first, "
                       "or uninstall with force to stop them")
    stopped: dict[str, Any] = {}
    if busy:
        stopped = await stop_all_bots(session, redis, settings, pool, host)
    async with _ssh(session, redis, settings, pool, host) as conn:
        base = await _base(conn, host)
        try:
            await steps.uninstall(conn, base)
        except RemoteError as exc:
            raise HostUnreachable(exc.message) from exc
    host.agent_token_hash = None
    host.provisioned_at = None
    await emit(session, redis, settings, host, "host.uninstalled", {"base_dir": base})
    return {"base_dir": base, **stopped}
