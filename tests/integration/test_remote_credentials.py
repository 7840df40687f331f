"""passivbot credentials on a remote host (a real sshd on loopback, agent provisioned over SSH):
each host's api-keys.json holds only the accounts of its own instances, mode 0600."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import httpx

from tests.integration.conftest import Stack, wait_for
from tests.integration.sshd import SSHD
from tests.integration.test_fleet_lifecycle import create
from tests.integration.test_remote_provision import (  # noqa: F401 - fixtures
    NASTY,
    add_host,
    provision,
    remote_api,
    vps,
    wheelhouse,
)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _with_user(user: str) -> str:
    from tests.integration.test_fleet_lifecycle import CONFIG

    doc = json.loads(CONFIG)
    doc["live"]["user"] = user
    return json.dumps(doc)


async def test_remote_host_file_holds_only_its_accounts(
    remote_api: httpx.AsyncClient, stack: Stack, vps: SSHD, wheelhouse: Path, tmp_path: Path  # noqa: F811
) -> None:
    api = remote_api
    stack.start("agent")
    base = tmp_path / NASTY
    await add_host(api, "vps-1", vps, base)
    assert (await provision(api, "vps-1", wheelhouse))["online"] is True

    for name, secret in (("binance_local", "sec-local"), ("binance_remote", "sec-remote"),
                         ("binance_unused", "sec-unused")):
        r = await api.post("/api/v1/accounts", json={"name": name, "exchange": "binance",
                                                     "key": f"key-{name}", "secret": secret})
        assert r.status_code == 201, r.text
    await create(api, "local-bot", host="local", config_text=_with_user("binance_local"))
    remote = await create(api, "remote-bot", host="vps-1", config_text=_with_user("binance_remote"))

    remote_file = base / "home" / "agent" / "api-keys.json"
    local_file = stack.home / "agent" / "api-keys.json"
    remote_entry = {"exchange": "binance", "key": "key-binance_remote", "secret": "sec-remote"}
    await wait_for(lambda: _read(remote_file) == {"binance_remote": remote_entry}, 30,
                   what="the remote host's api-keys.json with its account only")
    assert stat.S_IMODE(remote_file.stat().st_mode) == 0o600
    await wait_for(lambda: _read(local_file) == {"binance_local": {
        "exchange": "binance", "key": "key-binance_local", "secret": "sec-local"}}, 30,
        what="the local host's api-keys.json with its account only")
    link = base / "home" / "agent" / "instances" / remote["id"] / "api-keys.json"
    assert link.is_symlink() and link.resolve() == remote_file.resolve()

    # moving the bot takes its account along; the remote host keeps none
    r = await api.post(f"/api/v1/instances/{remote['id']}/move", json={"host": "local"})
    assert r.status_code == 200, r.text
    await wait_for(lambda: _read(remote_file) == {}, 30, what="the remote file emptied after the move")
    await wait_for(lambda: set(_read(local_file) or {}) == {"binance_local", "binance_remote"}, 30,
                   what="both accounts on the local host")
