"""Users and API tokens over REST against a real api process (SQLite and PostgreSQL): admins
manage users, everyone manages their own tokens and password, revoked tokens stop working."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import redis as redis_sync
from sqlalchemy import update

from botfleet.db.models import ApiToken
from botfleet.db.session import create_engine, create_sessionmaker
from tests.integration.conftest import Stack

PROBLEM = "application/problem+json"


@contextlib.asynccontextmanager
async def _login(api: httpx.AsyncClient, username: str, password: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client logged in as ``username`` by the session cookie (as the panel is)."""
    async with httpx.AsyncClient(base_url=str(api.base_url), timeout=30) as client:
        r = await client.post("/api/v1/auth/login", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        yield client


async def _user(api: httpx.AsyncClient, username: str, password: str = "correct horse", **extra: object) -> dict:
    r = await api.post("/api/v1/users", json={"username": username, "password": password, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def _problem(r: httpx.Response, status: int, key: str | None = None) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["key"] == key if key else True
    return str(body["detail"])


async def test_admin_creates_a_user_who_logs_in_and_is_listed(api: httpx.AsyncClient) -> None:
    alice = await _user(api, "alice")
    assert alice["is_admin"] is False
    listing = (await api.get("/api/v1/users")).json()
    assert [u["username"] for u in listing["items"]] == ["admin", "alice"]
    assert listing["total"] == 2
    async with _login(api, "alice", "correct horse") as client:
        me = (await client.get("/api/v1/auth/me")).json()
        assert (me["username"], me["is_admin"]) == ("alice", False)


async def test_bad_names_and_passwords_get_problems_naming_the_field(api: httpx.AsyncClient) -> None:
    for name in ("", "-dash", "has space", "x" * 65, "../etc"):
        detail = _problem(await api.post("/api/v1/users", json={"username": name, "password": "correct horse"}),
                          422, "username")
        assert "letters, digits" in detail
    cases = [("short", "at least 8"), ("bobby-tables", "must not be the user name"), ("password", "attacker"),
             ("y" * 257, "at most 256")]
    for password, words in cases:
        r = await api.post("/api/v1/users", json={"username": "bobby-tables", "password": password})
        assert words in _problem(r, 422, "password")
    await _user(api, "carol")
    assert "exists already" in _problem(await api.post("/api/v1/users", json={"username": "carol", "password": "another one"}),
                                        409, "username")
    assert _problem(await api.post("/api/v1/users", json={"username": 5}), 400)
    assert (await api.get("/api/v1/users")).json()["total"] == 2  # nothing half-made


async def test_non_admins_may_only_change_their_own_password(api: httpx.AsyncClient) -> None:
    dave = await _user(api, "dave")
    admin_id = (await api.get("/api/v1/auth/me")).json()["id"]
    async with _login(api, "dave", "correct horse") as dave_client:
        assert "only an admin" in _problem(await dave_client.get("/api/v1/users"), 403)
        _problem(await dave_client.post("/api/v1/users", json={"username": "eve", "password": "correct horse"}), 403)
        _problem(await dave_client.patch(f"/api/v1/users/{dave['id']}", json={"is_admin": True}), 403)
        _problem(await dave_client.patch(f"/api/v1/users/{admin_id}", json={"password": "taken over!"}), 403)
        _problem(await dave_client.delete(f"/api/v1/users/{admin_id}"), 403)
        me = f"/api/v1/users/{dave['id']}"
        assert "current password" in _problem(await dave_client.patch(me, json={"password": "new secret!"}),
                                              422, "current_password")
        wrong = {"password": "new secret!", "current_password": "not it at all"}
        assert "wrong" in _problem(await dave_client.patch(me, json=wrong), 422, "current_password")
        ok = {"password": "new secret!", "current_password": "correct horse"}
        assert (await dave_client.patch(me, json=ok)).status_code == 200
        assert (await dave_client.get("/api/v1/auth/me")).status_code == 200  # this session stays
    async with httpx.AsyncClient(base_url=str(api.base_url)) as anonymous:
        old = await anonymous.post("/api/v1/auth/login", json={"username": "dave", "password": "correct horse"})
        assert old.status_code == 401
    async with _login(api, "dave", "new secret!"):
        pass


async def test_password_change_ends_the_users_other_sessions(api: httpx.AsyncClient) -> None:
    frank = await _user(api, "frank")
    async with _login(api, "frank", "correct horse") as laptop, \
            _login(api, "frank", "correct horse") as phone:
        assert (await phone.get("/api/v1/auth/me")).status_code == 200  # cached in the api now
        change = {"password": "brand new one", "current_password": "correct horse"}
        assert (await laptop.patch(f"/api/v1/users/{frank['id']}", json=change)).status_code == 200
        assert (await phone.get("/api/v1/auth/me")).status_code == 401
        assert (await laptop.get("/api/v1/auth/me")).status_code == 200


async def test_the_last_admin_and_yourself_cannot_be_deleted_or_demoted(api: httpx.AsyncClient) -> None:
    me = (await api.get("/api/v1/auth/me")).json()
    assert "own account" in _problem(await api.delete(f"/api/v1/users/{me['id']}"), 409)
    assert "last admin" in _problem(await api.patch(f"/api/v1/users/{me['id']}", json={"is_admin": False}),
                                    409, "is_admin")
    grace = await _user(api, "grace", is_admin=True)
    async with _login(api, "grace", "correct horse") as grace_client:
        assert (await grace_client.patch(f"/api/v1/users/{me['id']}", json={"is_admin": False})).status_code == 200
        assert "last admin" in _problem(await grace_client.patch(f"/api/v1/users/{grace['id']}",
                                                                 json={"is_admin": False}), 409)
    assert (await api.get("/api/v1/users")).status_code == 403  # demotion took effect at once
    _problem(await api.delete("/api/v1/users/no-such-id"), 403)


async def test_deleting_a_user_ends_their_sessions_and_tokens(api: httpx.AsyncClient) -> None:
    heidi = await _user(api, "heidi")
    async with _login(api, "heidi", "correct horse") as browser:
        token = (await browser.post("/api/v1/auth/tokens", json={"name": "cron"})).json()["token"]
        script = httpx.AsyncClient(base_url=str(api.base_url), headers={"Authorization": f"Bearer {token}"})
        async with script:
            assert (await script.get("/api/v1/instances")).status_code == 200
            assert (await api.delete(f"/api/v1/users/{heidi['id']}")).status_code == 204
            assert (await script.get("/api/v1/instances")).status_code == 401
            assert (await browser.get("/api/v1/auth/me")).status_code == 401
    _problem(await api.delete(f"/api/v1/users/{heidi['id']}"), 404)


async def test_tokens_are_listed_without_secrets_and_revoked_ones_are_refused(api: httpx.AsyncClient) -> None:
    created = await api.post("/api/v1/auth/tokens", json={"name": "grafana"})
    assert created.status_code == 201
    token, token_id = created.json()["token"], created.json()["id"]
    async with httpx.AsyncClient(base_url=str(api.base_url), headers={"Authorization": f"Bearer {token}"}) as script:
        assert (await script.get("/api/v1/instances")).status_code == 200  # now cached by the api
        listing = (await api.get("/api/v1/auth/tokens")).json()
        assert token not in json.dumps(listing)
        by_name = {t["name"]: t for t in listing}
        assert by_name["grafana"]["kind"] == "api" and by_name["grafana"]["current"] is False
        assert by_name["grafana"]["last_used_at"] is not None
        assert by_name["tests"]["current"] is True  # the admin's token this client sends
        assert (await api.delete(f"/api/v1/auth/tokens/{token_id}")).status_code == 204
        r = await script.get("/api/v1/instances")
        assert r.status_code == 401 and "revoked" in r.json()["detail"]
    _problem(await api.delete(f"/api/v1/auth/tokens/{token_id}"), 404, "token_id")
    assert "name" in _problem(await api.post("/api/v1/auth/tokens", json={"name": "  "}), 422, "name")


async def test_one_users_tokens_are_invisible_to_another(api: httpx.AsyncClient) -> None:
    await _user(api, "ivan")
    admin_token_id = (await api.get("/api/v1/auth/tokens")).json()[0]["id"]
    async with _login(api, "ivan", "correct horse") as ivan:
        names = [t["name"] for t in (await ivan.get("/api/v1/auth/tokens")).json()]
        assert names == ["login"]
        _problem(await ivan.delete(f"/api/v1/auth/tokens/{admin_token_id}"), 404)
    assert (await api.get("/api/v1/auth/me")).status_code == 200


async def test_revocation_reaches_another_replica_at_once(stack: Stack, api: httpx.AsyncClient) -> None:
    """Two api processes on one database and Redis: a token cached by the second replica is
    refused there right after the first one revokes it (pub/sub), not 10 s later."""
    created = (await api.post("/api/v1/auth/tokens", json={"name": "two replicas"})).json()
    second = Stack(home=stack.home, env=dict(stack.env), port=_free_port(), token=stack.token,
                   agent_token=stack.agent_token)
    second.start("api")
    try:
        headers = {"Authorization": f"Bearer {created['token']}"}
        async with httpx.AsyncClient(base_url=second.url, headers=headers) as script:
            assert (await script.get("/api/v1/auth/me")).status_code == 200
            assert (await api.delete(f"/api/v1/auth/tokens/{created['id']}")).status_code == 204
            assert (await script.get("/api/v1/auth/me")).status_code == 401
    finally:
        second.stop_all()


async def test_user_and_token_changes_are_events_without_secrets(stack: Stack, api: httpx.AsyncClient) -> None:
    jim = await _user(api, "jim", password="jim's secret")
    token = (await api.post("/api/v1/auth/tokens", json={"name": "ci"})).json()
    await api.delete(f"/api/v1/auth/tokens/{token['id']}")
    await api.delete(f"/api/v1/users/{jim['id']}")
    with redis_sync.Redis.from_url(stack.env["BOTFLEET_REDIS_URL"], decode_responses=True) as r:
        entries = [json.loads(fields["data"]) for _, fields in r.xrange("botfleet:events")]
    kinds = [e["kind"] for e in entries if e["kind"].startswith(("user.", "token."))]
    assert kinds == ["user.created", "token.created", "token.revoked", "user.deleted"]
    text = json.dumps(entries)
    assert "jim's secret" not in text and token["token"] not in text
    assert entries[-1]["data"]["by"] == "admin"


def _free_port() -> int:
    from botfleet.fleet.embedded_redis import free_port

    return free_port()


async def test_repeated_failed_logins_from_one_address_are_refused_for_a_while(stack: Stack) -> None:
    stack.env["BOTFLEET_LOGIN_FAILURE_LIMIT"] = "3"
    stack.start("api")
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as anonymous:
        for _ in range(3):
            r = await anonymous.post("/api/v1/auth/login", json={"username": "admin", "password": "guess-guess"})
            _problem(r, 401)
        # Now even the right password is refused from this address, with how long to wait.
        r = await anonymous.post("/api/v1/auth/login", json={"username": "admin", "password": "admin-password"})
        detail = _problem(r, 429)
        wait = int(r.headers["Retry-After"])
        assert 0 < wait <= 15 * 60
        assert "3 failed logins from 127.0.0.1" in detail and f"{wait} s" in detail
        # Existing sessions and tokens are not affected.
        async with stack.client() as admin:
            assert (await admin.get("/api/v1/auth/me")).status_code == 200
        # The window ends: logins work again.
        with redis_sync.Redis.from_url(stack.env["BOTFLEET_REDIS_URL"]) as redis:
            redis.delete("botfleet:login-failures:127.0.0.1")
        r = await anonymous.post("/api/v1/auth/login", json={"username": "admin", "password": "admin-password"})
        assert r.status_code == 200, r.text


async def test_a_token_made_to_expire_is_refused_after_its_last_day(stack: Stack, api: httpx.AsyncClient) -> None:
    created = await api.post("/api/v1/auth/tokens", json={"name": "ci", "expires_in_days": 30})
    assert created.status_code == 201, created.text
    out = created.json()
    expires = datetime.fromisoformat(out["expires_at"])
    assert timedelta(days=29, hours=23) < expires - datetime.now(UTC) <= timedelta(days=30)
    listed = {t["name"]: t for t in (await api.get("/api/v1/auth/tokens")).json()}
    assert listed["ci"]["expires_at"] is not None
    for days in (0, 3651, -1):
        detail = _problem(await api.post("/api/v1/auth/tokens", json={"name": "x", "expires_in_days": days}),
                          422, "expires_in_days")
        assert "1-3650 days" in detail
    # Its last day passes (the clock moved on: the row says so).
    engine = create_engine(stack.env["BOTFLEET_DATABASE_URL"])
    try:
        async with create_sessionmaker(engine)() as session:
            await session.execute(update(ApiToken).where(ApiToken.id == out["id"])
                                  .values(expires_at=datetime.now(UTC) - timedelta(minutes=1)))
            await session.commit()
    finally:
        await engine.dispose()
    async with httpx.AsyncClient(base_url=stack.url, headers={"Authorization": f"Bearer {out['token']}"}) as script:
        r = await script.get("/api/v1/instances")
        assert r.status_code == 401 and "expired" in r.json()["detail"]
