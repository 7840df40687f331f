"""Install, start, upgrade and remove botfleet's agent on a host over one SSH connection.

Layout on the host under ``base`` (the host's ``base_dir``; relative = under the SSH user's
home)::

    dist/botfleet-<version>-py3-none-any.whl   the uploaded wheel (:mod:`botfleet.remote.package`)
    dist/installed.sha256                      digest of the wheel installed in venv/
    wheelhouse/                                optional dependency wheels (offline hosts)
    venv/                                      python3 -m venv; base install only (no server extra)
    .env                                       the agent's settings, mode 0600
    home/                                      BOTFLEET_HOME: agent state (home/agent), api-keys.json
    agent.pid                                  the detached agent (when systemd --user is absent)
    agent.log                                  the agent's output (detached or systemd unit)

Every word sent to a shell is quoted (:func:`botfleet.remote.ssh.command`, invariant 4).
Steps are idempotent: an unchanged wheel is not uploaded or installed again.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import asyncssh

from botfleet.remote.package import Wheel, build_wheel
from botfleet.remote.ssh import RemoteError, command, run, script

__all__ = [
    "AgentPlan",
    "Progress",
    "agent_running",
    "install",
    "read_agent_log",
    "remote_paths",
    "start_agent",
    "stop_agent",
    "uninstall",
]

#: ``progress(step, detail)``: one call per step (``upload``, ``venv``, ``install``, ...).
Progress = Callable[[str, str], Awaitable[None]]
CRON_MARK = "# botfleet-agent:"
_SYSTEMD_SAFE = re.compile(r"^[A-Za-z0-9_./-]+$")


@dataclass(frozen=True, slots=True)
class AgentPlan:
    """What to install: ``env`` the agent's settings (BOTFLEET_* names -> values),
    ``wheelhouse`` a controller directory of wheels uploaded and used with ``--no-index``."""

    base: str
    env: dict[str, str]
    wheelhouse: Path | None = None


@dataclass(frozen=True, slots=True)
class RemotePaths:
    base: str

    @property
    def venv(self) -> str:
        return f"{self.base}/venv"

    @property
    def python(self) -> str:
        return f"{self.base}/venv/bin/python"

    @property
    def botfleet(self) -> str:
        return f"{self.base}/venv/bin/botfleet"

    @property
    def dist(self) -> str:
        return f"{self.base}/dist"

    @property
    def wheelhouse(self) -> str:
        return f"{self.base}/wheelhouse"

    @property
    def env_file(self) -> str:
        return f"{self.base}/.env"

    @property
    def home(self) -> str:
        return f"{self.base}/home"

    @property
    def pidfile(self) -> str:
        return f"{self.base}/agent.pid"

    @property
    def log(self) -> str:
        return f"{self.base}/agent.log"

    @property
    def unit(self) -> str:
        return "botfleet-agent-" + re.sub(r"[^A-Za-z0-9]+", "-", self.base).strip("-") + ".service"


def remote_paths(base: str) -> RemotePaths:
    """Paths under the absolute ``base`` on the host."""
    return RemotePaths(base.rstrip("/") or "/")


async def _noop(step: str, detail: str) -> None:
    return None


async def _exists(sftp: asyncssh.SFTPClient, path: str) -> bool:
    return bool(await sftp.exists(path))


async def _read(sftp: asyncssh.SFTPClient, path: str) -> str | None:
    try:
        async with sftp.open(path, "r") as f:
            return str(await f.read())
    except (asyncssh.SFTPError, OSError):
        return None


async def _write(sftp: asyncssh.SFTPClient, path: str, data: bytes, mode: int = 0o644) -> None:
    tmp = f"{path}.tmp"
    async with sftp.open(tmp, "wb", asyncssh.SFTPAttrs(permissions=mode)) as f:
        await f.write(data)
    await sftp.chmod(tmp, mode)
    await sftp.posix_rename(tmp, path)


def _env_text(env: dict[str, str]) -> bytes:
    lines = []
    for key, value in sorted(env.items()):
        if not re.match(r"^[A-Z_][A-Z0-9_]*$", key) or "\n" in value:
            raise ValueError(f"cannot write setting {key!r} to the agent's .env")
        # python-dotenv reads single-quoted values literally (no escapes, no ${} expansion).
        if "'" in value:
            raise ValueError(f"setting {key} contains a single quote, which .env cannot hold")
        lines.append(f"{key}='{value}'\n")
    return "".join(lines).encode()


async def resolve_base(conn: asyncssh.SSHClientConnection, base: str) -> str:
    """Create ``base`` (relative = under the login's home) and return its absolute path."""
    async with conn.start_sftp_client() as sftp:
        await sftp.makedirs(base, exist_ok=True)
        return str(await sftp.realpath(base))


async def install(
    conn: asyncssh.SSHClientConnection, plan: AgentPlan, progress: Progress = _noop,
    wheel: Wheel | None = None,
) -> str:
    """Upload botfleet, create the venv, install, write ``.env``. Returns the absolute base.

    Raises:
        RemoteError: no python3 >= 3.11 with venv on the host, or a failed step (its output).
    """
    wheel = wheel or build_wheel()
    probe = await run(conn, command(["python3", "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"]),
                      check=False)
    version = str(probe.stdout or "").strip()
    if probe.exit_status != 0 or tuple(int(x) for x in (version or "0.0").split(".")) < (3, 11):
        raise RemoteError(f"the host needs python3 >= 3.11 with the venv module (found {version or 'none'}): "
                          "install python3 and python3-venv")
    await progress("probe", f"python {version}")
    base = await resolve_base(conn, plan.base)
    p = remote_paths(base)
    async with conn.start_sftp_client() as sftp:
        for d in (p.dist, p.home):
            await sftp.makedirs(d, exist_ok=True)
        installed = (await _read(sftp, f"{p.dist}/installed.sha256") or "").strip()
        fresh = installed == wheel.sha256 and await _exists(sftp, p.botfleet)
        if fresh:
            await progress("upload", f"botfleet {wheel.version} already installed")
        else:
            await _write(sftp, f"{p.dist}/{wheel.filename}", wheel.data)
            await progress("upload", f"{wheel.filename} ({len(wheel.data)} bytes)")
        find_links: list[str] = []
        if plan.wheelhouse is not None and not fresh:
            await sftp.makedirs(p.wheelhouse, exist_ok=True)
            sent = 0
            for path in sorted(plan.wheelhouse.glob("*.whl")):
                target = f"{p.wheelhouse}/{path.name}"
                if await _exists(sftp, target) and (await sftp.stat(target)).size == path.stat().st_size:
                    continue
                await _write(sftp, target, path.read_bytes())
                sent += 1
            find_links = ["--no-index", "--find-links", "../wheelhouse"]
            await progress("wheelhouse", f"{sent} wheels uploaded")
        if not fresh:
            new_venv = not await _exists(sftp, p.python)
            if new_venv:
                await run(conn, command(["python3", "-m", "venv", p.venv]), timeout=300)
                await progress("venv", p.venv)
            pip = [p.python, "-m", "pip", "install", "--disable-pip-version-check", "-q", *find_links]
            # Relative to dist/: pip parses "; " in a requirement argument as a marker.
            target = f"./{wheel.filename}"
            steps = [command(["cd", p.dist]), command([*pip, target])]
            if not new_venv:  # same version number, other code: pip would keep the old files
                steps.append(command([*pip, "--force-reinstall", "--no-deps", target]))
            await run(conn, script(*steps, sep=" && "), timeout=600)
            await _write(sftp, f"{p.dist}/installed.sha256", wheel.sha256.encode())
            await progress("install", f"botfleet {wheel.version}")
        # BOTFLEET_HOME is relative to the agent's cwd (base), so no path of the user's choice
        # has to survive .env quoting.
        await _write(sftp, p.env_file, _env_text({**plan.env, "BOTFLEET_HOME": "home"}), 0o600)
        await progress("settings", p.env_file)
    return base


async def _systemd_user(conn: asyncssh.SSHClientConnection) -> bool:
    result = await run(conn, command(["systemctl", "--user", "show-environment"]) + " >/dev/null 2>&1",
                       check=False, timeout=20)
    return result.exit_status == 0


async def _linger(conn: asyncssh.SSHClientConnection) -> bool:
    """Turn lingering on for the SSH user (its ``systemd --user`` services then run with no
    login session open, and start at boot) and say whether it is on. It can be refused (a
    polkit rule for remote sessions): the agent then runs detached, which needs no linger."""
    await run(conn, 'loginctl enable-linger "$(id -un)"', check=False, timeout=20)
    result = await run(conn, 'loginctl show-user "$(id -un)" --property=Linger --value',
                       check=False, timeout=20)
    return str(result.stdout or "").strip() == "yes"


def _agent_argv(p: RemotePaths) -> list[str]:
    # Not the venv's console script: pip writes a /bin/sh launcher for unusual paths (spaces,
    # quotes), which a quote in the path breaks.
    return [p.python, "-m", "botfleet", "agent"]


async def _detached_pid(conn: asyncssh.SSHClientConnection, p: RemotePaths) -> int | None:
    check = ('pid=$(cat {pf} 2>/dev/null) && [ -n "$pid" ] && '
             'tr "\\0" " " < /proc/$pid/cmdline 2>/dev/null | grep -qF -- {exe} && echo "$pid"')
    result = await run(conn, check.format(pf=command([p.pidfile]), exe=command([" ".join(_agent_argv(p))])),
                       check=False)
    text = str(result.stdout or "").strip()
    return int(text) if text.isdigit() else None


async def _unit_pid(conn: asyncssh.SSHClientConnection, p: RemotePaths) -> int | None:
    """The main pid of the agent's ``systemd --user`` unit while it runs (None when it does
    not, or the host has no user manager)."""
    result = await run(conn, command(["systemctl", "--user", "show", "--property=MainPID", "--value", p.unit]),
                       check=False, timeout=20)
    text = str(result.stdout or "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


async def agent_running(conn: asyncssh.SSHClientConnection, base: str) -> int | None:
    """The pid of the agent of ``base`` when it runs (detached: its pidfile; else the main pid
    of its ``systemd --user`` unit), else None."""
    p = remote_paths(base)
    pid = await _detached_pid(conn, p)
    if pid is None and _SYSTEMD_SAFE.match(base):
        pid = await _unit_pid(conn, p)
    return pid


async def stop_agent(conn: asyncssh.SSHClientConnection, base: str, *, timeout: float = 20.0) -> bool:
    """Stop the agent of ``base`` (SIGTERM, which leaves bots running; invariant 2). Returns
    whether one was running."""
    p = remote_paths(base)
    was_unit = False
    if _SYSTEMD_SAFE.match(base) and await _systemd_user(conn):
        was_unit = await _unit_pid(conn, p) is not None
        await run(conn, command(["systemctl", "--user", "stop", p.unit]), check=False)
    pid = await _detached_pid(conn, p)
    if pid is None:
        return was_unit
    await run(conn, command(["kill", "-TERM", str(pid)]), check=False)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await _detached_pid(conn, p) is None:
            return True
        await asyncio.sleep(0.2)
    await run(conn, command(["kill", "-KILL", str(pid)]), check=False)
    return True


def _detached(p: RemotePaths) -> str:
    start = command(["cd", p.base]) + "; " + command(["setsid", "nohup", *_agent_argv(p)])
    return start + " >> " + command([p.log]) + " 2>&1 < /dev/null & echo $! > " + command([p.pidfile])


async def start_agent(conn: asyncssh.SSHClientConnection, base: str, progress: Progress = _noop) -> str:
    """(Re)start the agent of ``base``: a ``systemd --user`` service with linger where that
    works (both), else detached (``setsid nohup``, pidfile) with an ``@reboot`` crontab line
    when the host has crontab. Returns how it runs: ``systemd`` or ``detached``."""
    p = remote_paths(base)
    await stop_agent(conn, base)
    systemd = bool(_SYSTEMD_SAFE.match(base)) and await _systemd_user(conn)
    if systemd and not await _linger(conn):
        systemd = False  # without linger the user's services end with its last SSH session
        await progress("start", "systemd --user is there but lingering could not be turned on "
                                "(loginctl enable-linger): running the agent detached instead")
    if systemd:
        unit = (
            "[Unit]\nDescription=botfleet agent\n\n[Service]\n"
            f"WorkingDirectory={base}\nExecStart={p.python} -m botfleet agent\n"
            # Bots run in their own sessions but the same cgroup: stopping the agent must
            # not stop them (invariant 2).
            "KillMode=process\nRestart=always\nRestartSec=2\n"
            # The same log file as a detached agent: what read_agent_log (the api) shows.
            f"StandardOutput=append:{p.log}\nStandardError=inherit\n"
            "\n[Install]\nWantedBy=default.target\n"
        )
        async with conn.start_sftp_client() as sftp:
            await sftp.makedirs(".config/systemd/user", exist_ok=True)
            await _write(sftp, f".config/systemd/user/{p.unit}", unit.encode())
        await run(conn, script(command(["systemctl", "--user", "daemon-reload"]),
                               command(["systemctl", "--user", "enable", "--now", p.unit]), sep=" && "))
        # A host provisioned detached before (no linger then) keeps its @reboot line: drop it,
        # or a reboot starts a second agent beside the unit.
        await _drop_cron_line(conn, base)
        await progress("start", f"systemd --user unit {p.unit} (linger on)")
        return "systemd"
    if _SYSTEMD_SAFE.match(base) and await _systemd_user(conn):
        # The reverse: a unit of an earlier provisioning would start a second agent at boot.
        await run(conn, command(["systemctl", "--user", "disable", p.unit]) + " >/dev/null 2>&1", check=False)
    await run(conn, _detached(p), timeout=30)
    has_cron = (await run(conn, "command -v crontab", check=False)).exit_status == 0
    if has_cron:
        mark = CRON_MARK + base
        line = "@reboot " + _detached(p) + " " + mark
        await run(conn, "(crontab -l 2>/dev/null | grep -vF -- " + command([mark]) + "; echo "
                  + command([line]) + ") | crontab -")
    await progress("start", "detached agent (setsid nohup, pidfile)"
                   + ("; @reboot crontab entry" if has_cron else "; no crontab on this host: start it after a reboot"))
    return "detached"


async def _drop_cron_line(conn: asyncssh.SSHClientConnection, base: str) -> None:
    """Remove the ``@reboot`` crontab line of ``base``'s detached agent, if any."""
    if (await run(conn, "command -v crontab", check=False)).exit_status == 0:
        await run(conn, "(crontab -l 2>/dev/null | grep -vF -- " + command([CRON_MARK + base])
                  + ") | crontab -", check=False)


async def read_agent_log(conn: asyncssh.SSHClientConnection, base: str, max_bytes: int = 65536) -> str:
    """The last ``max_bytes`` of the agent's own log (``agent.log``, detached agents and
    ``systemd --user`` units alike)."""
    p = remote_paths(base)
    async with conn.start_sftp_client() as sftp:
        try:
            size = (await sftp.stat(p.log)).size or 0
            async with sftp.open(p.log, "rb") as f:
                await f.seek(max(0, size - max_bytes))
                data = await f.read(max_bytes)
        except (asyncssh.SFTPError, OSError):
            return ""
    return bytes(data).decode(errors="replace")


async def uninstall(conn: asyncssh.SSHClientConnection, base: str) -> None:
    """Stop the agent, remove its crontab line or unit, and delete ``base``."""
    p = remote_paths(base)
    async with conn.start_sftp_client() as sftp:
        home = str(await sftp.realpath("."))
    if base in ("", "/", home) or PurePosixPath(base).parent == PurePosixPath(base):
        raise RemoteError(f"refusing to delete {base!r}: not a botfleet directory of its own")
    await stop_agent(conn, base)
    if _SYSTEMD_SAFE.match(base) and await _systemd_user(conn):
        await run(conn, command(["systemctl", "--user", "disable", "--now", p.unit]), check=False)
        await run(conn, script(command(["rm", "-f", f".config/systemd/user/{p.unit}"]),
                               command(["systemctl", "--user", "daemon-reload"])), check=False)
    await _drop_cron_line(conn, base)
    await run(conn, command(["rm", "-rf", "--", base]))
