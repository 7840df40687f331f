"""The whole path: api + local agent as real processes, instances of the passivbot stand-in
started, watched (states, logs over SSE) and stopped through the REST API."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from typing import Any

import httpx
import psutil

from tests.conftest import PASSIVBOT_CONFIGS
from tests.integration.conftest import Stack, wait_for

CONFIG = (PASSIVBOT_CONFIGS / "v8" / "btc_long.json").read_text()


async def create(api: httpx.AsyncClient, name: str, **extra: Any) -> dict[str, Any]:
    body = {"name": name, "profile": "passivbot-v8", "config_text": CONFIG, "simulated": True, **extra}
    r = await api.post("/api/v1/instances", json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def state_of(api: httpx.AsyncClient, instance_id: str) -> dict[str, Any]:
    return (await api.get(f"/api/v1/instances/{instance_id}")).json()


async def until_state(api: httpx.AsyncClient, instance_id: str, *states: str, timeout: float = 30) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        row = await state_of(api, instance_id)
        return row if row["state"] in states else None

    return await wait_for(check, timeout, what=f"{instance_id} in {states}")


async def read_sse(client: httpx.AsyncClient, url: str, count: int, headers: dict[str, str] | None = None,
                   timeout: float = 30, until: Any = None) -> list[tuple[str, str]]:
    """The first ``count`` (id, data) events of an SSE stream, or those up to the first whose
    data makes ``until(data)`` true."""
    got: list[tuple[str, str]] = []

    async def run() -> None:
        async with client.stream("GET", url, headers=headers or {}) as response:
            assert response.status_code == 200, await response.aread()
            event_id, data = "", []
            async for line in response.aiter_lines():
                if line.startswith("id:"):
                    event_id = line[3:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].removeprefix(" "))
                elif line == "" and data:
                    got.append((event_id, "\n".join(data)))
                    data = []
                    if len(got) >= count or (until is not None and until(got[-1][1])):
                        return

    await asyncio.wait_for(run(), timeout)
    return got


async def test_start_watch_logs_and_stop_a_bot(stack: Stack, api: httpx.AsyncClient) -> None:
    stack.start("agent")
    bot = await create(api, "btc-long", env={"BOTFLEET_DEMO_LINES_PER_SEC": "20"})
    assert (await api.post(f"/api/v1/instances/{bot['id']}/start")).status_code == 202
    running = await until_state(api, bot["id"], "RUNNING")
    assert psutil.pid_exists(running["pid"])
    assert running["uptime"] is not None

    lines = await read_sse(api, f"/api/v1/instances/{bot['id']}/logs?tail=0", 5)
    assert all(data[:4].isdigit() and "Z " in data for _, data in lines)  # UTC timestamp prefix

    await api.post(f"/api/v1/instances/{bot['id']}/stop")
    stopped = await until_state(api, bot["id"], "STOPPED")
    assert stopped["pid"] is None
    assert not psutil.pid_exists(running["pid"]) or psutil.Process(running["pid"]).status() == psutil.STATUS_ZOMBIE
    # The stand-in logs a [shutdown] line on SIGINT: the stop began with SIGINT.
    page = (await api.get(f"/api/v1/instances/{bot['id']}/logs/range", params={"limit": 5000})).json()
    assert any("[shutdown]" in item["line"] for item in page["items"])
    kinds = [(e["data"].get("old"), e["data"].get("new")) for e in
             reversed((await api.get(f"/api/v1/instances/{bot['id']}/events")).json()) if e["kind"] == "instance.state"]
    assert ("STOPPING", "STOPPED") in kinds and ("STARTING", "RUNNING") in kinds
    assert (await api.delete(f"/api/v1/instances/{bot['id']}")).status_code == 204


async def test_log_stream_resumes_without_gap_or_duplicate(stack: Stack, api: httpx.AsyncClient) -> None:
    stack.start("agent")
    bot = await create(api, "chatty", env={"BOTFLEET_DEMO_LINES_PER_SEC": "50"})
    await api.post(f"/api/v1/instances/{bot['id']}/start")
    await until_state(api, bot["id"], "RUNNING")
    url = f"/api/v1/instances/{bot['id']}/logs?tail=0"
    first = await read_sse(api, url, 20)
    await asyncio.sleep(1.0)  # lines keep coming while nobody listens
    second = await read_sse(api, url, 40, headers={"Last-Event-ID": first[-1][0]})
    # The range read is the ground truth: the two reads together are exactly a run of it.
    truth = (await api.get(f"/api/v1/instances/{bot['id']}/logs/range", params={"limit": 5000})).json()["items"]
    ids = [item["id"] for item in truth]
    start = ids.index(first[0][0])
    assert [i for i, _ in first + second] == ids[start : start + 60]
    assert [d for _, d in first + second] == [item["line"] for item in truth[start : start + 60]]


async def test_batched_log_stream_resumes_without_gap_or_duplicate(stack: Stack, api: httpx.AsyncClient) -> None:
    """``?batch=true`` (the panel's log viewer): ``event: logs`` carries ``[[id, line], ...]``
    and its SSE id is the last line's, so a reconnect with that Last-Event-ID goes on right
    after the batch. A fast bot makes batches of many lines; a read cut off between batches
    and resumed later is exactly a run of the stream."""
    stack.start("agent")
    bot = await create(api, "chatty-batched", env={"BOTFLEET_DEMO_LINES_PER_SEC": "400"})
    await api.post(f"/api/v1/instances/{bot['id']}/start")
    await until_state(api, bot["id"], "RUNNING")

    async def fifty_lines() -> bool:
        page = (await api.get(f"/api/v1/instances/{bot['id']}/logs/range", params={"limit": 50})).json()
        return len(page["items"]) == 50

    await wait_for(fifty_lines, 30, what="50 log lines")
    url = f"/api/v1/instances/{bot['id']}/logs?tail=50&batch=true"
    first_events = await read_sse(api, url, 4)
    await asyncio.sleep(1.0)  # lines keep coming while nobody listens
    second_events = await read_sse(api, url, 4, headers={"Last-Event-ID": first_events[-1][0]})
    pairs: list[list[str]] = []
    for event_id, data in first_events + second_events:
        batch = json.loads(data)
        assert batch and batch[-1][0] == event_id  # the batch's id is its last line's
        pairs += batch
    assert len(json.loads(first_events[0][1])) == 50  # the tail comes as one event
    assert max(len(json.loads(d)) for _, d in first_events[1:] + second_events) > 1  # lines do gather
    truth = (await api.get(f"/api/v1/instances/{bot['id']}/logs/range", params={"limit": 5000})).json()["items"]
    ids = [item["id"] for item in truth]
    start = ids.index(pairs[0][0])
    assert [i for i, _ in pairs] == ids[start : start + len(pairs)]
    assert [line for _, line in pairs] == [item["line"] for item in truth[start : start + len(pairs)]]


async def test_crash_is_restarted_and_a_crash_loop_ends_fatal(stack: Stack, api: httpx.AsyncClient) -> None:
    stack.start("agent")
    bot = await create(api, "flaky", supervision={"startsecs": 0.5, "startretries": 2, "backoff_initial": 0.1})
    await api.post(f"/api/v1/instances/{bot['id']}/start")
    first = await until_state(api, bot["id"], "RUNNING")
    os.kill(first["pid"], signal.SIGKILL)

    async def restarted() -> dict[str, Any] | None:
        row = await state_of(api, bot["id"])
        return row if row["state"] == "RUNNING" and row["pid"] != first["pid"] else None

    second = await wait_for(restarted, 30, what="a new process after kill -9")
    assert second["restart_count"] >= 1

    looping = await create(api, "crashloop", env={"BOTFLEET_DEMO_CRASH_AFTER": "0"},
                           supervision={"startsecs": 1, "startretries": 2, "backoff_initial": 0.1})
    await api.post(f"/api/v1/instances/{looping['id']}/start")
    fatal = await until_state(api, looping["id"], "FATAL", timeout=60)
    assert fatal["exit_code"] not in (None, 0)
    events = (await api.get("/api/v1/events/history", params={"instance_id": looping["id"], "kind": "instance.state"})).json()
    assert sum(1 for e in events if e["data"]["new"] == "BACKOFF") >= 2


async def test_agent_killed_bots_keep_running_and_are_adopted(stack: Stack, api: httpx.AsyncClient) -> None:
    stack.start("agent")
    bots = [await create(api, f"keep-{i}") for i in range(3)]
    for bot in bots:
        await api.post(f"/api/v1/instances/{bot['id']}/start")
    before = {b["id"]: (await until_state(api, b["id"], "RUNNING"))["pid"] for b in bots}
    stack.kill("agent", signal.SIGKILL)
    await asyncio.sleep(1.0)
    assert all(psutil.pid_exists(pid) for pid in before.values())
    stack.start("agent")
    await asyncio.sleep(3.0)  # time for a wrong restart to show
    for bot in bots:
        row = await until_state(api, bot["id"], "RUNNING")
        assert row["pid"] == before[bot["id"]]
        assert row["restart_count"] == 0


async def test_restarting_api_worker_and_redis_touches_no_bot(stack: Stack, api: httpx.AsyncClient) -> None:
    stack.start("agent")
    stack.start("worker")
    bot = await create(api, "steady")
    await api.post(f"/api/v1/instances/{bot['id']}/start")
    pid = (await until_state(api, bot["id"], "RUNNING"))["pid"]
    stack.kill("api", signal.SIGKILL)
    stack.kill("worker", signal.SIGKILL)
    await asyncio.sleep(1.0)
    assert psutil.pid_exists(pid)
    stack.start("worker")
    stack.start("api")
    await asyncio.sleep(2.0)
    row = await until_state(api, bot["id"], "RUNNING")
    assert row["pid"] == pid and psutil.pid_exists(pid)
    # Commands still reach the agent after the api came back.
    await api.post(f"/api/v1/instances/{bot['id']}/stop")
    await until_state(api, bot["id"], "STOPPED")


async def test_fleet_event_stream_shows_state_changes(stack: Stack, api: httpx.AsyncClient) -> None:
    stack.start("agent")
    bot = await create(api, "evented")
    reader = asyncio.create_task(read_sse(api, "/api/v1/events", 100, until=lambda d: '"new": "STOPPED"' in d))
    await asyncio.sleep(0.5)
    await api.post(f"/api/v1/instances/{bot['id']}/start")
    await until_state(api, bot["id"], "RUNNING")
    await api.post(f"/api/v1/instances/{bot['id']}/stop")
    events = [json.loads(d) for _, d in await reader]
    mine = [e for e in events if e["instance_id"] == bot["id"]]
    assert mine[0]["kind"] == "instance.command" and mine[0]["data"]["action"] == "start"
    transitions = [(e["data"]["old"], e["data"]["new"]) for e in mine if e["kind"] == "instance.state"]
    assert transitions[:2] == [("STOPPED", "STARTING"), ("STARTING", "RUNNING")]


async def test_sse_streams_end_cleanly_when_the_api_shuts_down(stack: Stack, api: httpx.AsyncClient) -> None:
    bot = await create(api, "listened")
    ended = asyncio.Event()

    async def listen(url: str) -> None:
        async with api.stream("GET", url) as response:
            assert response.status_code == 200
            async for _ in response.aiter_lines():
                pass
        ended.set()

    tasks = [asyncio.create_task(listen(url)) for url in
             ("/api/v1/events", f"/api/v1/instances/{bot['id']}/logs")]
    await asyncio.sleep(1.0)
    proc = stack.procs.pop("api")
    proc.send_signal(signal.SIGTERM)
    await asyncio.wait_for(asyncio.gather(*tasks), 20)  # both streams closed by the server
    # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly.
    assert await asyncio.to_thread(proc.wait, 20) in (0, -signal.SIGTERM)
    assert ended.is_set()
    log = stack.log("api")
    assert "Application shutdown complete" in log and "without completing response" not in log


async def command_entries(redis: Any, key: str) -> list[dict[str, Any]]:
    """Every command on the host's command stream ``key``, decoded, oldest first."""
    return [json.loads(fields["data"]) for _, fields in await redis.xrange(key)]


async def _has_sync(entries: Any, after: int) -> bool:
    return any(c["kind"] == "sync" for c in (await entries)[after:])


async def test_a_bulk_start_and_stop_reach_the_agent_as_one_command_each_and_stop_every_bot(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    # The starts and the stops of several instances on one host go as one SyncCommand each:
    # the agent prepares the starts, and signals the stops, in one pass. The configs went to
    # the agent when the instances were created: the starts and stops name them by digest.
    from redis.asyncio import Redis

    from botfleet.fleet import streams

    stack.start("agent")
    redis = Redis.from_url(stack.env["BOTFLEET_REDIS_URL"], decode_responses=True)
    key = streams.agent_commands((await api.get("/api/v1/hosts/local")).json()["id"])

    async def queued_by(request: Any) -> list[dict[str, Any]]:
        before = len(await command_entries(redis, key))
        await request
        entries = (await command_entries(redis, key))[before:]
        return [c for c in entries if c["kind"] != "credentials"]  # api-keys.json goes first

    async def bulk(action: str) -> None:
        results = (await api.post("/api/v1/instances/bulk", json={"action": action, "ids": ids})).json()
        assert all(r["ok"] for r in results), results

    try:
        await wait_for(lambda: _has_sync(command_entries(redis, key), 0), 30, what="the agent's announce")
        created = [(await queued_by(create(api, f"bulk-{i}")))[0] for i in range(3)]
        ids = [c["instance_id"] for c in created]
        starts = await queued_by(bulk("start"))
        pids = [(await until_state(api, i, "RUNNING"))["pid"] for i in ids]
        queued = await queued_by(bulk("stop"))
    finally:
        await redis.aclose()
    digests = {c["instance_id"]: c["files_digest"] for c in created}
    assert all(c["desired"] == "stopped" and "config.json" in c["spec"]["files"] for c in created)
    assert [c["kind"] for c in starts] == ["sync"]
    assert sorted(c["instance_id"] for c in starts[0]["instances"]) == sorted(ids)
    for command in starts[0]["instances"]:
        assert command["desired"] == "running" and command["spec"]["files"] == {}, command
        assert command["files_digest"] == digests[command["instance_id"]]
    assert [c["kind"] for c in queued] == ["sync"]
    assert sorted(c["instance_id"] for c in queued[0]["instances"]) == sorted(ids)
    for command in queued[0]["instances"]:
        assert command["desired"] == "stopped" and command["spec"]["files"] == {}, command
        assert command["files_digest"] == digests[command["instance_id"]]
    for instance_id, pid in zip(ids, pids, strict=True):
        row = await until_state(api, instance_id, "STOPPED")
        assert "sent SIGINT" in row["state_reason"], row
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        config = next(stack.home.rglob(f"instances/{instance_id}/config.json"))
        assert json.loads(config.read_text()) == json.loads(CONFIG)


async def test_a_start_brings_the_config_when_the_api_has_no_record_of_sending_it(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    # The api's record of the files each agent holds (a Redis hash) is gone, as when Redis
    # lost its data: the start reads the config again and carries it, under the same digest.
    from redis.asyncio import Redis

    from botfleet.fleet import streams

    stack.start("agent")
    redis = Redis.from_url(stack.env["BOTFLEET_REDIS_URL"], decode_responses=True)
    host_id = (await api.get("/api/v1/hosts/local")).json()["id"]
    key = streams.agent_commands(host_id)

    try:
        await wait_for(lambda: _has_sync(command_entries(redis, key), 0), 30, what="the agent's announce")
        before = len(await command_entries(redis, key))
        bot = await create(api, "resent")
        [created] = [c for c in (await command_entries(redis, key))[before:] if c["kind"] != "credentials"]
        await redis.delete(streams.agent_files(host_id))
        before = len(await command_entries(redis, key))
        r = await api.post(f"/api/v1/instances/{bot['id']}/start")
        assert r.status_code == 202, r.text
        await until_state(api, bot["id"], "RUNNING")
        [start] = [c for c in (await command_entries(redis, key))[before:] if c["kind"] != "credentials"]
        assert await redis.hget(streams.agent_files(host_id), bot["id"]) == created["files_digest"]
    finally:
        await redis.aclose()
    assert start["files_digest"] == created["files_digest"]
    assert json.loads(start["spec"]["files"]["config.json"]) == json.loads(CONFIG)
    await api.post(f"/api/v1/instances/{bot['id']}/stop")
    await until_state(api, bot["id"], "STOPPED")


async def test_an_agent_that_lost_a_config_asks_for_it_and_starts_with_it(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    # A start names the config by digest (the agent got it at creation). Here the agent's copy
    # is gone (its files deleted while it was down): it starts nothing, announces again, and
    # the api's sync brings the config; the bot starts with it.
    stack.start("agent")
    bot = await create(api, "lost-config")
    held = await wait_for(lambda: list(stack.home.rglob(f"instances/{bot['id']}/.botfleet/files.*.json")),
                          10, what="the agent to store the config")
    stack.kill("agent", signal.SIGKILL)
    for path in held:
        path.unlink()
    from redis.asyncio import Redis

    from botfleet.fleet import streams

    redis = Redis.from_url(stack.env["BOTFLEET_REDIS_URL"], decode_responses=True)
    key = streams.agent_commands(bot["host_id"])

    try:
        restarted = len(await command_entries(redis, key))
        stack.start("agent")
        await wait_for(lambda: _has_sync(command_entries(redis, key), restarted), 30, what="the new agent's announce")
        before = len(await command_entries(redis, key))
        r = await api.post(f"/api/v1/instances/{bot['id']}/start")
        assert r.status_code == 202, r.text
        await until_state(api, bot["id"], "RUNNING")
        after = (await command_entries(redis, key))[before:]
    finally:
        await redis.aclose()
    config = next(stack.home.rglob(f"instances/{bot['id']}/config.json"))
    assert json.loads(config.read_text()) == json.loads(CONFIG)
    kinds = [c["kind"] for c in after if c["kind"] != "credentials"]
    assert kinds == ["apply", "sync"], kinds  # the start by digest; the announce's answer
    start, sync = (c for c in after if c["kind"] != "credentials")
    assert start["spec"]["files"] == {} and start["files_digest"]
    [again] = [c for c in sync["instances"] if c["instance_id"] == bot["id"]]
    assert again["generation"] == start["generation"] and again["spec"]["files"], again
