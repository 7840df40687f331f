"""api-keys.json on a host, with the api and a real local agent as processes: the file holds
exactly the accounts the host's instances use, mode 0600, in the bots' working dir; rotating a
key, changing live.user or the agent coming back from offline rewrites it."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path
from typing import Any

import psutil

from botfleet.agent.credentials import Credentials
from botfleet.agent.layout import StateLayout
from botfleet.protocol import CredentialsCommand, HostCredentials
from botfleet.settings import AgentSettings
from tests.conftest import PASSIVBOT_CONFIGS
from tests.integration.conftest import Stack, wait_for
from tests.integration.test_fleet_lifecycle import until_state


def _config(user: str) -> dict[str, Any]:
    doc = json.loads((PASSIVBOT_CONFIGS / "v8" / "btc_long.json").read_text())
    doc["live"]["user"] = user
    return doc


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


async def _file_is(path: Path, expected: dict[str, Any], what: str) -> None:
    await wait_for(lambda: _read(path) == expected, 20, what=what)


async def test_host_file_holds_exactly_its_accounts_and_follows_rotation(stack: Stack) -> None:
    stack.start("api")
    stack.start("agent")
    keys = stack.home / "agent" / "api-keys.json"
    async with stack.client() as api:
        async def online() -> bool:
            return (await api.get("/api/v1/hosts/local")).json()["status"] == "online"

        await wait_for(online, 30, what="the local agent online")
        for name, exchange, secret in (("binance_01", "binance", "sec-b1"), ("bybit_01", "bybit", "sec-y1"),
                                       ("okx_01", "okx", "sec-o1")):
            body = {"name": name, "exchange": exchange, "key": f"key-{name}", "secret": secret}
            if exchange == "okx":
                body["passphrase"] = "pp"
            assert (await api.post("/api/v1/accounts", json=body)).status_code == 201
        r = await api.post("/api/v1/instances", json={
            "name": "bot-a", "profile": "passivbot-v8", "config": _config("binance_01"), "simulated": True})
        assert r.status_code == 201, r.text
        bot = r.json()

        binance = {"exchange": "binance", "key": "key-binance_01", "secret": "sec-b1"}
        link = stack.home / "agent" / "instances" / bot["id"] / "api-keys.json"
        await _file_is(link, {"binance_01": binance}, "the instance dir's api-keys.json with binance_01 only")
        assert _read(keys) == {"binance_01": binance}
        assert stat.S_IMODE(keys.stat().st_mode) == 0o600
        assert link.is_symlink() and link.resolve() == keys.resolve()

        # the bot's working dir reads it
        assert (await api.post(f"/api/v1/instances/{bot['id']}/start")).status_code == 202
        running = await until_state(api, bot["id"], "RUNNING")
        cwd = Path(psutil.Process(running["pid"]).cwd())
        assert _read(cwd / "api-keys.json") == {"binance_01": binance}

        # rotation reaches the host
        r = await api.put("/api/v1/accounts/binance_01/keys", json={"key": "key-rotated", "secret": "sec-b2"})
        assert r.status_code == 200, r.text
        rotated = {"exchange": "binance", "key": "key-rotated", "secret": "sec-b2"}
        await _file_is(keys, {"binance_01": rotated}, "rotated binance_01")
        assert stat.S_IMODE(keys.stat().st_mode) == 0o600

        # another live.user: the old account leaves the host's file
        r = await api.put(f"/api/v1/instances/{bot['id']}/config", json={"config": _config("bybit_01")})
        assert r.status_code in (200, 201), r.text
        bybit = {"exchange": "bybit", "key": "key-bybit_01", "secret": "sec-y1"}
        await _file_is(keys, {"bybit_01": bybit}, "bybit_01 only after the config change")

        # an agent that was offline during a rotation catches up when it announces again
        stack.kill("agent")
        r = await api.put("/api/v1/accounts/bybit_01/keys", json={"key": "key-y2", "secret": "sec-y2"})
        assert r.status_code == 200
        assert _read(keys) == {"bybit_01": bybit}
        stack.start("agent")
        await _file_is(keys, {"bybit_01": {"exchange": "bybit", "key": "key-y2", "secret": "sec-y2"}},
                       "bybit_01 rotated while the agent was down")

        # no instance left: no account left on the host
        assert (await api.post(f"/api/v1/instances/{bot['id']}/stop")).status_code == 202
        await until_state(api, bot["id"], "STOPPED", "EXITED")
        assert (await api.delete(f"/api/v1/instances/{bot['id']}")).status_code == 204
        await _file_is(keys, {}, "an empty api-keys.json once no instance uses an account")
        assert "sec-" not in stack.log("agent") and "sec-" not in stack.log("api")



class _CountingCredentials(Credentials):
    """The real Credentials, counting the files it writes (one per fetch)."""

    writes = 0

    def write(self, creds: HostCredentials) -> None:
        self.writes += 1
        super().write(creds)


async def test_a_burst_of_commands_costs_one_fetch_and_one_more_for_those_during_it(stack: Stack) -> None:
    stack.start("api")
    settings = AgentSettings(home=stack.home / "in-test-agent", api_url=stack.url, agent_token=stack.agent_token)
    creds = _CountingCredentials(StateLayout(settings.home / "agent"), settings)
    # 20 commands before the fetch task runs: one fetch serves them all
    for i in range(20):
        assert await creds.apply(CredentialsCommand(version=f"burst-{i}"))
    waiter = asyncio.ensure_future(creds.settled())
    await asyncio.sleep(0)  # the fetch task starts and is now in flight
    assert not waiter.done(), "a start must wait for the fetch the last command asked for"
    # commands during the fetch: it may have read the older set, so exactly one more fetch
    for i in range(5):
        assert await creds.apply(CredentialsCommand(version=f"during-{i}"))
    await asyncio.wait_for(waiter, 30)
    assert creds.writes == 2
    version = creds.version
    assert version is not None and _read(creds.path) == {}
    # the file has the api's set now: the same digest again asks for nothing
    assert not await creds.apply(CredentialsCommand(version=version))
    assert creds.writes == 2
