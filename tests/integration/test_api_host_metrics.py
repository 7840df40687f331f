"""Host metrics history (``GET /api/v1/hosts/{id}/metrics``) fed by a real agent's heartbeats,
on SQLite and PostgreSQL (the ``db_url`` fixture), with a real Redis."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx

from tests.integration.conftest import Stack, wait_for


async def _points(api: httpx.AsyncClient, host: str, **params: object) -> list[dict[str, object]]:
    r = await api.get(f"/api/v1/hosts/{host}/metrics", params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def test_agent_heartbeats_build_a_metrics_history_read_after_a_time(stack: Stack, api: httpx.AsyncClient) -> None:
    stack.start("agent")  # heartbeat every second (the stack's BOTFLEET_HEARTBEAT_INTERVAL)
    points = await wait_for(lambda: _ge(api, 3), timeout=30, what="three metrics samples")
    first = points[0]
    assert 0 <= first["cpu_percent"] <= 100
    assert 0 < first["memory_used"] <= first["memory_total"]
    assert 0 < first["disk_used"] <= first["disk_total"]
    assert first["load1"] >= 0 and first["load15"] >= 0
    times = [datetime.fromisoformat(p["time"]) for p in points]
    assert times == sorted(times)

    later = await _points(api, "local", since=points[1]["time"])
    assert [p["time"] for p in later][: len(points) - 2] == [p["time"] for p in points[2:]]
    future = (times[-1] + timedelta(hours=1)).isoformat()
    assert await _points(api, "local", since=future) == []


async def test_a_long_history_is_averaged_down_to_max_points(stack: Stack, api: httpx.AsyncClient) -> None:
    stack.start("agent")
    points = await wait_for(lambda: _ge(api, 4), timeout=30, what="four metrics samples")
    thinned = await _points(api, "local", max_points=2)
    assert len(thinned) == 2
    # buckets are consecutive and cover every sample: the last one ends with the newest sample
    assert thinned[0]["time"] < thinned[1]["time"]
    assert thinned[1]["time"] >= points[-1]["time"]
    assert 0 <= thinned[0]["cpu_percent"] <= 100
    assert isinstance(thinned[0]["memory_total"], int)


async def test_metrics_of_an_unknown_host_or_a_bad_time_are_refused(api: httpx.AsyncClient) -> None:
    missing = await api.get("/api/v1/hosts/no-such-host/metrics")
    assert missing.status_code == 404
    assert "no-such-host" in missing.json()["detail"]
    bad = await api.get("/api/v1/hosts/local/metrics", params={"since": "yesterday"})
    assert bad.status_code == 400
    assert "since" in bad.text


async def _ge(api: httpx.AsyncClient, n: int) -> list[dict[str, object]] | None:
    points = await _points(api, "local")
    return points if len(points) >= n else None
