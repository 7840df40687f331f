"""Instances over REST against a real api process (no agent needed for these)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSIVBOT_CONFIGS
from tests.integration.conftest import Stack

V8 = sorted((PASSIVBOT_CONFIGS / "v8").glob("*.json"))
V7 = sorted((PASSIVBOT_CONFIGS / "v7").glob("*.json"))


def _create(name: str, path: Path, profile: str, **extra: object) -> dict[str, object]:
    return {"name": name, "profile": profile, "config_text": path.read_text(), "simulated": True, **extra}


async def test_every_example_config_is_accepted_for_its_version(api: httpx.AsyncClient) -> None:
    for profile, paths in (("passivbot-v8", V8), ("passivbot-v7", V7)):
        for path in paths:
            r = await api.post("/api/v1/instances", json=_create(f"{profile[-2:]}-{path.stem}", path, profile))
            assert r.status_code == 201, (path, r.text)
    listing = (await api.get("/api/v1/instances", params={"limit": 100})).json()
    assert listing["total"] == len(V8) + len(V7)
    assert {i["state"] for i in listing["items"]} == {"STOPPED"}


async def test_requests_without_a_token_are_refused_but_health_is_open(api: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(base_url=str(api.base_url)) as anonymous:
        r = await anonymous.get("/api/v1/instances")
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")
        assert (await anonymous.get("/api/v1/health/live")).status_code == 200


async def test_login_gives_a_session_token(api: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(base_url=str(api.base_url)) as browser:
        bad = await browser.post("/api/v1/auth/login", json={"username": "admin", "password": "nope-nope"})
        assert bad.status_code == 401
        r = await browser.post("/api/v1/auth/login", json={"username": "admin", "password": "admin-password"})
        assert r.status_code == 200
        me = await browser.get("/api/v1/auth/me")  # the cookie alone authenticates
        assert me.json()["username"] == "admin"


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda d: d["live"].update(user=5), "live.user"),
        (lambda d: d.pop("bot"), "bot"),
    ],
)
async def test_invalid_config_is_rejected_naming_the_key(api: httpx.AsyncClient, mutate, key: str) -> None:
    doc = json.loads((PASSIVBOT_CONFIGS / "v8" / "btc_long.json").read_text())
    mutate(doc)
    r = await api.post("/api/v1/instances", json={"name": "bad", "profile": "passivbot-v8", "config": doc})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["key"] == key and key in body["detail"]
    assert (await api.get("/api/v1/instances")).json()["total"] == 0


async def test_malformed_json_unknown_profile_and_bad_names_are_rejected(api: httpx.AsyncClient) -> None:
    r = await api.post("/api/v1/instances", json={"name": "x", "profile": "passivbot-v8", "config_text": "{\"live\": "})
    assert r.status_code == 422 and r.json()["key"] == ""
    r = await api.post("/api/v1/instances", json=_create("x", V8[0], "passivbot-v9"))
    assert r.status_code == 422 and "passivbot-v8" in r.json()["detail"]
    for name in ["../etc", "a/b", "a b", "$(whoami)", "-rf", ""]:
        r = await api.post("/api/v1/instances", json=_create(name, V8[0], "passivbot-v8"))
        assert r.status_code == 422, name
        assert r.json()["key"] == "name"


async def test_config_versions_keep_history_and_diff(api: httpx.AsyncClient) -> None:
    path = PASSIVBOT_CONFIGS / "v8" / "btc_long.json"
    created = (await api.post("/api/v1/instances", json=_create("hist", path, "passivbot-v8"))).json()
    doc = json.loads(path.read_text())
    doc["live"]["leverage"] = 3.0
    r = await api.put(f"/api/v1/instances/{created['id']}/config", json={"config": doc, "comment": "more leverage"})
    assert r.status_code == 200 and r.json()["version"] == 2
    versions = (await api.get(f"/api/v1/instances/{created['id']}/configs")).json()
    assert [v["version"] for v in versions] == [1, 2]
    diff = (await api.get(f"/api/v1/instances/{created['id']}/configs/diff", params={"from": 1, "to": 2})).json()
    assert {"key": "live.leverage", "from": json.loads(path.read_text())["live"]["leverage"], "to": 3.0} in diff["changes"]
    assert "leverage" in diff["diff"]


async def test_duplicate_name_conflicts_and_unknown_ids_are_404(api: httpx.AsyncClient) -> None:
    assert (await api.post("/api/v1/instances", json=_create("dup", V8[0], "passivbot-v8"))).status_code == 201
    r = await api.post("/api/v1/instances", json=_create("dup", V8[0], "passivbot-v8"))
    assert r.status_code == 409 and r.json()["key"] == "name"
    assert (await api.get("/api/v1/instances/nope")).status_code == 404


async def test_custom_argv_is_kept_literally(api: httpx.AsyncClient) -> None:
    argv = ["{python}", "-c", "print(1)", "; rm -rf / $(whoami) 'x' `id` && echo pwned"]
    r = await api.post("/api/v1/instances", json={"name": "custom", "profile": "custom", "config": {"a": 1}, "argv": argv})
    assert r.status_code == 201, r.text
    assert r.json()["argv"] == argv


async def test_list_filters_and_paginates(api: httpx.AsyncClient) -> None:
    for i in range(5):
        await api.post("/api/v1/instances", json=_create(f"bot-{i}", V8[0], "passivbot-v8", labels={"group": "a" if i < 2 else "b"}))
    page = (await api.get("/api/v1/instances", params={"limit": 2, "offset": 2})).json()
    assert [i["name"] for i in page["items"]] == ["bot-2", "bot-3"] and page["total"] == 5
    assert (await api.get("/api/v1/instances", params={"label": "group=a"})).json()["total"] == 2
    assert (await api.get("/api/v1/instances", params={"q": "bot-4"})).json()["total"] == 1


async def test_a_config_without_live_user_is_stored_but_cannot_start(stack: Stack, api: httpx.AsyncClient) -> None:
    path = PASSIVBOT_CONFIGS / "v7" / "suite_example.json"  # a backtest suite config
    created = await api.post("/api/v1/instances", json=_create("suite", path, "passivbot-v7"))
    assert created.status_code == 201, created.text
    instance_id = created.json()["id"]
    r = await api.post(f"/api/v1/instances/{instance_id}/start")
    assert r.status_code == 422 and r.json()["key"] == "live.user"
    # The same from the config read again: a restarted api has not seen this version.
    stack.kill("api", signal.SIGTERM)
    stack.start("api")
    r = await api.post("/api/v1/instances/bulk", json={"action": "start", "ids": [instance_id]})
    assert r.status_code == 200 and r.json()[0]["status"] == 422 and "live.user" in r.json()[0]["detail"]
    r = await api.post(f"/api/v1/instances/{instance_id}/start")
    assert r.status_code == 422 and r.json()["key"] == "live.user"
    assert (await api.get(f"/api/v1/instances/{instance_id}")).json()["desired_state"] == "stopped"
