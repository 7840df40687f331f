"""passivbot accounts over REST against a real api process (SQLite and PostgreSQL), with
real Redis: stored encrypted, never returned, delivered only through the agent's endpoint."""

from __future__ import annotations

import json

import httpx
import redis as redis_sync
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import PASSIVBOT_CONFIGS
from tests.integration.conftest import Stack

SECRET = "s3cr3t-value-that-must-never-leak"
KEY = "AKIA-binance-key-0001"


def _config(user: str) -> dict[str, object]:
    doc = json.loads((PASSIVBOT_CONFIGS / "v8" / "btc_long.json").read_text())
    doc["live"]["user"] = user
    return doc


async def _instance(api: httpx.AsyncClient, name: str, user: str, *, simulated: bool = True) -> dict[str, object]:
    r = await api.post("/api/v1/instances", json={
        "name": name, "profile": "passivbot-v8", "config": _config(user), "simulated": simulated})
    assert r.status_code == 201, r.text
    return r.json()


async def _account(api: httpx.AsyncClient, name: str, **fields: object) -> dict[str, object]:
    body = {"name": name, "exchange": "binance", "key": KEY, "secret": SECRET, **fields}
    r = await api.post("/api/v1/accounts", json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def test_account_is_stored_encrypted_and_never_returned(api: httpx.AsyncClient, stack: Stack) -> None:
    created = await _account(api, "binance_01")
    assert created["hint"] == "…0001"
    assert created["fields"] == ["key", "secret"]
    listing = await api.get("/api/v1/accounts")
    one = await api.get("/api/v1/accounts/binance_01")
    history = await api.get("/api/v1/events/history", params={"limit": 100})
    for response in (listing, one, history):
        assert response.status_code == 200, response.text
        assert SECRET not in response.text and KEY not in response.text
    assert [a["name"] for a in listing.json()] == ["binance_01"]
    assert "account.created" in history.text
    engine = create_async_engine(stack.env["BOTFLEET_DATABASE_URL"])
    async with engine.connect() as conn:
        stored = (await conn.execute(text("SELECT secret FROM accounts"))).scalar_one()
    await engine.dispose()
    assert SECRET not in stored and KEY not in stored
    assert SECRET not in stack.log("api")


async def test_bad_accounts_are_refused_naming_the_field(api: httpx.AsyncClient) -> None:
    cases = [
        ({"exchange": "mtgox", "key": "k", "secret": "s"}, 422, "exchange"),
        ({"exchange": "bitget", "key": "k", "secret": "s"}, 422, "passphrase"),
        ({"exchange": "binance", "key": "k", "secret": "s", "passphrase": "p"}, 422, "passphrase"),
        ({"exchange": "hyperliquid", "wallet_address": "0xabc"}, 422, "private_key"),
        ({"name": "bad name; rm", "exchange": "binance", "key": "k", "secret": "s"}, 422, "name"),
    ]
    for body, status, key in cases:
        r = await api.post("/api/v1/accounts", json={"name": "acc_01", **body})
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["key"] == key, r.json()
    assert (await api.get("/api/v1/accounts")).json() == []
    await _account(api, "binance_01")
    again = await api.post("/api/v1/accounts", json={"name": "binance_01", "exchange": "binance",
                                                     "key": "k", "secret": "s"})
    assert again.status_code == 409
    assert "rotate" in again.json()["detail"]
    missing = await api.put("/api/v1/accounts/nope/keys", json={"key": "k", "secret": "s"})
    assert missing.status_code == 404


async def test_hyperliquid_and_passphrase_formats_are_accepted(api: httpx.AsyncClient, stack: Stack) -> None:
    await _instance(api, "hl", "hyperliquid_01")
    await _instance(api, "bg", "bitget_01")
    r = await api.post("/api/v1/accounts", json={"name": "hyperliquid_01", "exchange": "hyperliquid",
                                                 "wallet_address": "0xwallet-1234", "private_key": "0xpk",
                                                 "is_vault": False})
    assert r.status_code == 201, r.text
    assert r.json()["hint"] == "…1234"
    r = await api.post("/api/v1/accounts", json={"name": "bitget_01", "exchange": "bitget", "key": "kkkkkkkk",
                                                 "secret": "s", "passphrase": "p"})
    assert r.status_code == 201, r.text
    async with httpx.AsyncClient(base_url=stack.url,
                                 headers={"Authorization": f"Bearer {stack.agent_token}"}) as agent:
        accounts = (await agent.get("/api/v1/agent/credentials")).json()["accounts"]
    assert accounts == {
        "bitget_01": {"exchange": "bitget", "key": "kkkkkkkk", "secret": "s", "passphrase": "p"},
        "hyperliquid_01": {"exchange": "hyperliquid", "wallet_address": "0xwallet-1234",
                           "private_key": "0xpk", "is_vault": False},
    }


async def test_delete_is_refused_while_an_instance_uses_the_account(api: httpx.AsyncClient) -> None:
    await _account(api, "binance_01")
    instance = await _instance(api, "bot-a", "binance_01")
    assert (await api.get("/api/v1/accounts/binance_01")).json()["used_by"] == ["bot-a"]
    r = await api.delete("/api/v1/accounts/binance_01")
    assert r.status_code == 409
    assert "bot-a" in r.json()["detail"]
    assert (await api.delete(f"/api/v1/instances/{instance['id']}")).status_code == 204
    assert (await api.delete("/api/v1/accounts/binance_01")).status_code == 204
    assert (await api.get("/api/v1/accounts")).json() == []
    history = (await api.get("/api/v1/events/history", params={"limit": 100})).text
    assert "account.deleted" in history


async def test_agent_gets_only_the_accounts_its_instances_use(api: httpx.AsyncClient, stack: Stack) -> None:
    await _account(api, "binance_01")
    await _account(api, "binance_02", secret="other-secret")
    instance = await _instance(api, "bot-a", "binance_01")
    async with httpx.AsyncClient(base_url=stack.url,
                                 headers={"Authorization": f"Bearer {stack.agent_token}"}) as agent:
        r = await agent.get("/api/v1/agent/credentials")
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store"
        body = r.json()
        assert body["accounts"] == {"binance_01": {"exchange": "binance", "key": KEY, "secret": SECRET}}
        assert body["instances"] == [instance["id"]]
        # an agent token cannot read the accounts list; a user token cannot act as an agent
        assert (await agent.get("/api/v1/accounts")).status_code == 401
    assert (await api.get("/api/v1/agent/credentials")).status_code == 401


async def test_rotation_queues_a_digest_and_no_secret_for_the_host(api: httpx.AsyncClient, stack: Stack) -> None:
    await _account(api, "binance_01")
    await _instance(api, "bot-a", "binance_01")
    before = (await api.get("/api/v1/accounts/binance_01")).json()
    r = await api.put("/api/v1/accounts/binance_01/keys", json={"key": "NEW-KEY-9999", "secret": "new-secret-x"})
    assert r.status_code == 200, r.text
    after = r.json()
    assert after["hint"] == "…9999" and after["updated_at"] > before["updated_at"]
    with redis_sync.Redis.from_url(stack.env["BOTFLEET_REDIS_URL"], decode_responses=True) as client:
        keys = client.keys("botfleet:*")
        entries = [e for k in keys if client.type(k) == "stream" for e in client.xrange(k)]
    commands = [json.loads(f["data"]) for _, f in entries if "data" in f and '"credentials"' in f["data"]]
    assert len({c["version"] for c in commands}) >= 2  # one digest before, another after the rotation
    dump = json.dumps(entries)
    for secret in (SECRET, KEY, "new-secret-x", "NEW-KEY-9999"):
        assert secret not in dump
    assert "account.rotated" in (await api.get("/api/v1/events/history", params={"limit": 100})).text


async def test_start_without_an_account_says_where_to_add_it(api: httpx.AsyncClient) -> None:
    real = await _instance(api, "live-bot", "binance_01", simulated=False)
    r = await api.post(f"/api/v1/instances/{real['id']}/start")
    assert r.status_code == 422, r.text
    assert r.json()["key"] == "live.user"
    assert '"binance_01" has no entry in api-keys: add it under Settings > Accounts' in r.json()["detail"]
    bulk = (await api.post("/api/v1/instances/bulk", json={"action": "start", "ids": ["live-bot"]})).json()
    assert "Settings > Accounts" in json.dumps(bulk)
    simulated = await _instance(api, "demo-bot", "binance_01")  # the stand-in needs no keys
    assert (await api.post(f"/api/v1/instances/{simulated['id']}/start")).status_code == 202
    await _account(api, "binance_01")
    assert (await api.post(f"/api/v1/instances/{real['id']}/stop")).status_code == 202
    assert (await api.post(f"/api/v1/instances/{real['id']}/start")).status_code == 202
