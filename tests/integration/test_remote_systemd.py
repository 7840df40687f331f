"""The agent as a ``systemd --user`` service with lingering, on a real systemd host: the Debian
VM of ``scripts/systemd_vm.sh`` (:mod:`tests.integration.systemd_vm`), provisioned through the
api like any VPS. The guest has no route anywhere: dependencies come from the wheelhouse, and
the agent dials the api through a qemu guest forward (``direct`` mode, so after a reboot no
SSH login of the controller's is what brings the agent back).

Checked: the unit runs with linger on and the host goes online; a bot runs; a restart through
the api, ``systemctl --user stop``/``start`` and ``kill -9`` of the agent (systemd restarts it)
leave the bot running and the new agent adopts it (same pid); a reboot brings the agent back
with no login, and it brings the bot back; re-provisioning is idempotent; uninstall removes
the unit. A user who may not turn lingering on gets the detached agent instead, with a reason.

Needs ``BOTFLEET_SYSTEMD_VM`` (set by ``scripts/systemd_vm.sh``, which builds the image); without
it the test is skipped with that instruction."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncssh
import httpx
import pytest

from botfleet.remote.provision import CRON_MARK, remote_paths
from botfleet.remote.ssh import command, run
from tests.integration.conftest import Stack, wait_for
from tests.integration.systemd_vm import GUEST_API, SystemdVM, image_dir
from tests.integration.test_fleet_lifecycle import create, until_state
from tests.integration.test_remote_hosts import events_of
from tests.integration.test_remote_provision import host_status, register, wheelhouse  # noqa: F401 - a fixture
from tests.integration.test_remote_provision import provision as provision_host

BASE = "botfleet"  # under the user's home: /home/<user>/botfleet


@pytest.fixture
def vm(stack: Stack, tmp_path: Path) -> Iterator[SystemdVM]:
    image = image_dir()
    if image is None:
        pytest.skip("BOTFLEET_SYSTEMD_VM is not set: scripts/systemd_vm.sh builds the VM image and runs this test")
    machine = SystemdVM(image, tmp_path / "vm", api_port=stack.port)
    machine.start()
    try:
        yield machine
    finally:
        machine.kill()


@pytest.fixture
async def vm_api(stack: Stack, vm: SystemdVM) -> AsyncIterator[httpx.AsyncClient]:
    """The api, which agents in the VM reach at the guest forward; hosts offline after 10 s
    of silence (the guest is emulated: slow, not silent)."""
    stack.env.update(BOTFLEET_PUBLIC_URL="http://{}:{}".format(*GUEST_API), BOTFLEET_API_PORT=str(stack.port),
                     BOTFLEET_HOST_OFFLINE_AFTER="10")
    stack.start("api")
    async with stack.client() as client:
        yield client


async def sh(conn: asyncssh.SSHClientConnection, cmd: str) -> str:
    """stdout of ``cmd`` on the VM, stripped (a non-zero exit is fine: callers compare output)."""
    return str((await run(conn, cmd, check=False, timeout=60)).stdout or "").strip()


async def main_pid(conn: asyncssh.SSHClientConnection, unit: str) -> int:
    return int(await sh(conn, command(["systemctl", "--user", "show", "--property=MainPID", "--value", unit])) or 0)


async def alive_on(conn: asyncssh.SSHClientConnection, pid: int) -> bool:
    stat = await sh(conn, command(["ps", "-o", "stat=", "-p", str(pid)]))
    return bool(stat) and not stat.startswith("Z")


async def add_host(api: httpx.AsyncClient, name: str, vm: SystemdVM, user: str) -> None:
    await register(api, name, {"name": name, "address": "127.0.0.1", "port": vm.port, "username": user,
                               "ssh_key": vm.key_text, "base_dir": BASE})


async def provision(api: httpx.AsyncClient, name: str, wheels: Path) -> dict[str, Any]:
    """As any host, with the time an emulated guest's pip install takes."""
    return await provision_host(api, name, wheels, wait=180, timeout=900)


async def until_host(api: httpx.AsyncClient, name: str, status: str, timeout: float = 120) -> None:
    async def check() -> bool:
        return await host_status(api, name) == status

    await wait_for(check, timeout, interval=0.5, what=f"host {name} {status}")


async def start_details(api: httpx.AsyncClient) -> list[str]:
    return [str(e["data"]["detail"]) for e in await events_of(api, "host.provision")  # type: ignore[index]
            if e["data"]["step"] == "start"]  # type: ignore[index]


@pytest.mark.timeout(1500)  # an emulated guest: a pip install takes minutes
# The database is not what this checks, and each run costs minutes of emulated guest.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_agent_as_systemd_user_service_on_a_real_systemd_host(
    vm_api: httpx.AsyncClient, vm: SystemdVM, wheelhouse: Path  # noqa: F811 - the fixture
) -> None:
    api = vm_api

    # -- a user who may not turn lingering on: the detached agent, and why -------------------
    await add_host(api, "nolinger", vm, "nolinger")
    fallback = await provision(api, "nolinger", wheelhouse)
    assert fallback["started_as"] == "detached" and fallback["online"] is True
    assert any("lingering could not be turned on" in d for d in await start_details(api))
    assert (await api.post("/api/v1/hosts/nolinger/uninstall", json={})).status_code == 200

    # -- the systemd path --------------------------------------------------------------------
    await add_host(api, "sd", vm, "bot")
    conn = await vm.ssh()
    # An @reboot line left by an earlier detached provisioning must go (a second agent at boot).
    await sh(conn, "echo " + command([f"@reboot true {CRON_MARK}/home/bot/{BASE}"]) + " | crontab -")
    first = await provision(api, "sd", wheelhouse)
    assert first["started_as"] == "systemd" and first["online"] is True, first
    unit = remote_paths(first["base_dir"]).unit
    assert f"systemd --user unit {unit} (linger on)" in await start_details(api)
    assert await sh(conn, command(["systemctl", "--user", "is-active", unit])) == "active"
    assert await sh(conn, "loginctl show-user bot --property=Linger --value") == "yes"
    assert CRON_MARK not in await sh(conn, "crontab -l 2>/dev/null")
    agent = await main_pid(conn, unit)
    facts = (await api.post("/api/v1/hosts/sd/test")).json()
    assert facts["systemd_user"] is True and facts["agent_running"] == agent

    bot = await create(api, "sd-bot", host="sd")
    assert (await api.post(f"/api/v1/instances/{bot['id']}/start")).status_code in (200, 202)
    running = await until_state(api, bot["id"], "RUNNING", timeout=120)
    pid = running["pid"]
    assert await alive_on(conn, pid)
    # The bot is in the unit's cgroup: KillMode=process is what keeps it alive below.
    assert unit in await sh(conn, f"cat /proc/{pid}/cgroup")

    async def same_bot() -> None:
        again = await until_state(api, bot["id"], "RUNNING", timeout=120)
        assert again["pid"] == pid and again["restart_count"] == running["restart_count"]
        assert await alive_on(conn, pid)

    async def new_agent(old: int) -> int:
        async def check() -> int | None:
            now = await main_pid(conn, unit)
            return now if now not in (0, old) else None

        return int(await wait_for(check, 60, interval=0.5, what="a new agent pid"))

    # restart through the api (stop + start of the unit): the bot is untouched and adopted
    assert (await api.post("/api/v1/hosts/sd/agent/restart")).json() == {"started_as": "systemd"}
    agent = await new_agent(agent)
    await same_bot()

    # systemctl --user stop: the agent ends, the bot does not; start: adopted again
    await sh(conn, command(["systemctl", "--user", "stop", unit]))
    assert await main_pid(conn, unit) == 0 and await alive_on(conn, pid)
    await until_host(api, "sd", "offline")
    await sh(conn, command(["systemctl", "--user", "start", unit]))
    agent = await new_agent(agent)
    await until_host(api, "sd", "online")
    await same_bot()

    # kill -9: systemd starts it again (Restart=always), the bot stays
    await sh(conn, f"kill -KILL {agent}")
    agent = await new_agent(agent)
    await same_bot()
    log = (await api.get("/api/v1/hosts/sd/agent/log")).json()["log"]
    assert "agent" in log, log

    # reboot: with linger the user manager starts at boot and so does the agent; nothing logs in
    conn.close()
    vm.shutdown()
    await until_host(api, "sd", "offline")
    vm.start()
    await until_host(api, "sd", "online", timeout=300)
    conn = await vm.ssh()
    sessions = await sh(conn, "loginctl list-sessions --no-legend")
    assert len(sessions.splitlines()) == 1, sessions  # ours, opened after the agent was back
    back = await until_state(api, bot["id"], "RUNNING", timeout=120)  # brought back after the reboot
    assert back["pid"] != pid and await alive_on(conn, back["pid"])
    pid, running = back["pid"], back

    # re-provisioning is idempotent: nothing installed again, one unit, the bot untouched
    again = await provision(api, "sd", wheelhouse)
    assert again["started_as"] == "systemd" and again["online"] is True
    uploads = [e["data"]["detail"] for e in await events_of(api, "host.provision")  # type: ignore[index]
               if e["data"]["step"] == "upload"]  # type: ignore[index]
    assert "already installed" in str(uploads[0])  # newest first
    units = await sh(conn, "systemctl --user list-unit-files --no-legend 'botfleet-agent-*'")
    assert len(units.splitlines()) == 1 and units.split()[1] == "enabled", units
    await same_bot()

    # uninstall (after the rescue stop): no unit, no agent, no directory
    assert (await api.post("/api/v1/hosts/sd/stop-all", timeout=120)).json() == {
        "stopped": [bot["id"]], "still_running": []}
    assert not await alive_on(conn, pid)
    # The rescue stopped the agent as well: started again, it reports the bot stopped.
    assert (await api.post("/api/v1/hosts/sd/agent/restart")).json() == {"started_as": "systemd"}
    await until_state(api, bot["id"], "STOPPED", "EXITED", timeout=120)
    gone = await api.post("/api/v1/hosts/sd/uninstall", json={})
    assert gone.status_code == 200, gone.text
    assert await sh(conn, f"ls ~/.config/systemd/user/{unit} 2>/dev/null") == ""
    assert await sh(conn, command(["systemctl", "--user", "is-enabled", unit])) in ("not-found", "")
    assert await sh(conn, "pgrep -u bot -f '[b]otfleet agent'") == ""
    assert await sh(conn, f"test -e ~/{BASE} && echo there") == ""
    conn.close()
    # Figures for the record (pytest -rP shows them): emulated guests are slow.
    print(f"boot to ssh {vm.boot_seconds} s; provision (s): nolinger {fallback['seconds']}, "
          f"bot {first['seconds']}, again {again['seconds']}")
