"""Jobs over REST: an api and a worker as real processes running the passivbot stand-in."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import httpx
import psutil

from tests.conftest import PASSIVBOT_CONFIGS
from tests.integration.conftest import Stack, wait_for
from tests.integration.test_fleet_lifecycle import read_sse

CONFIG = json.loads((PASSIVBOT_CONFIGS / "v8" / "btc_long.json").read_text())


async def until_job(api: httpx.AsyncClient, job_id: str, *statuses: str, timeout: float = 60) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        job = (await api.get(f"/api/v1/jobs/{job_id}")).json()
        return job if job["status"] in statuses else None

    return await wait_for(check, timeout, what=f"job {job_id} in {statuses}")


async def test_backtest_of_an_instance_config_stores_results_and_artifacts(stack: Stack, api: httpx.AsyncClient) -> None:
    stack.env["BOTFLEET_DEMO_JOB_SECONDS"] = "1"
    stack.start("worker")
    bot = (await api.post("/api/v1/instances", json={"name": "bt", "profile": "passivbot-v8", "config": CONFIG,
                                                     "simulated": True})).json()
    r = await api.post("/api/v1/jobs", json={"kind": "backtest", "instance_id": bot["id"],
                                             "overrides": {"backtest.start_date": "2024-01-01"}})
    assert r.status_code == 201, r.text
    job = await until_job(api, r.json()["id"], "succeeded", "failed")
    assert job["status"] == "succeeded", job["reason"]
    assert job["config"]["backtest"]["start_date"] == "2024-01-01"
    results = (await api.get(f"/api/v1/jobs/{job['id']}/results")).json()["result"]
    analysis = next(a for a in results["artifacts"] if a.endswith("analysis.json"))
    got = await api.get(f"/api/v1/jobs/{job['id']}/artifacts/{analysis}")
    assert got.status_code == 200
    assert "adg" in json.dumps(got.json()) and "adg" in json.dumps(results["summary"])
    refused = await api.get(f"/api/v1/jobs/{job['id']}/artifacts/..%2F..%2Fbotfleet.db")
    assert refused.status_code in (400, 404, 422)
    listing = (await api.get("/api/v1/jobs", params={"instance_id": bot["id"]})).json()
    assert listing["total"] == 1


async def test_optimize_progress_streams_and_cancel_leaves_no_process(stack: Stack, api: httpx.AsyncClient) -> None:
    stack.env["BOTFLEET_DEMO_JOB_SECONDS"] = "120"
    stack.start("worker")
    r = await api.post("/api/v1/jobs", json={"kind": "optimize", "profile": "passivbot-v8", "config": CONFIG,
                                             "simulated": True, "overrides": {"optimize.iters": 5000}})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    events = await read_sse(api, f"/api/v1/jobs/{job_id}/events", 6, timeout=60)
    kinds = [json.loads(d)["kind"] for _, d in events]
    assert kinds[0] == "job.status" and "job.progress" in kinds
    running = await until_job(api, job_id, "running")
    await wait_for(lambda: _progressed(api, job_id), 60, what="progress above 0")
    pid = running["pid"]
    assert pid and psutil.pid_exists(pid)
    group = [p for p in psutil.process_iter() if _pgid(p) == pid]
    assert len(group) >= 2  # the optimizer and its pool workers
    assert (await api.post(f"/api/v1/jobs/{job_id}/cancel")).status_code == 202
    done = await until_job(api, job_id, "cancelled", "failed")
    assert done["status"] == "cancelled" and done["reason"]
    await wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in group
                                   if _alive(p)), 20, what="the job's process group gone")
    again = await api.post(f"/api/v1/jobs/{job_id}/cancel")
    assert again.status_code == 409


async def _progressed(api: httpx.AsyncClient, job_id: str) -> bool:
    return (await api.get(f"/api/v1/jobs/{job_id}")).json()["progress"] > 0


def _pgid(p: psutil.Process) -> int | None:
    try:
        return os.getpgid(p.pid)
    except (ProcessLookupError, psutil.Error):
        return None


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running()
    except psutil.Error:
        return False


async def test_bad_job_requests_get_problem_details(stack: Stack, api: httpx.AsyncClient) -> None:
    r = await api.post("/api/v1/jobs", json={"kind": "optimize", "profile": "passivbot-v8", "config": CONFIG,
                                             "overrides": {"optimize.no_such_key": 1}})
    assert r.status_code == 422 and r.json()["key"] == "optimize.no_such_key"
    r = await api.post("/api/v1/jobs", json={"kind": "optimize", "profile": "custom", "config": {"a": 1}})
    assert r.status_code == 422 and r.json()["key"] == "profile"
    r = await api.post("/api/v1/jobs", json={"kind": "dance", "profile": "passivbot-v8", "config": CONFIG})
    assert r.status_code == 400
    assert (await api.get("/api/v1/jobs/nope")).status_code == 404


async def test_real_v8_command_runs_with_shared_data_caches(stack: Stack, api: httpx.AsyncClient) -> None:
    """A non-simulated job runs BOTFLEET_PASSIVBOT_V8_COMMAND (here a wrapper around the
    stand-in, as a user's `passivbot` console script would be) with caches/ shared by all jobs."""
    wrapper = stack.home / "bin" / "passivbot"
    wrapper.parent.mkdir()
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -m botfleet.demo \"$@\"\n")
    wrapper.chmod(0o755)
    stack.env.update(BOTFLEET_PASSIVBOT_V8_COMMAND=str(wrapper), BOTFLEET_DEMO_JOB_SECONDS="1")
    stack.start("worker")
    ids = []
    for _ in range(2):
        r = await api.post("/api/v1/jobs", json={"kind": "backtest", "profile": "passivbot-v8", "config": CONFIG})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    for job_id in ids:
        job = await until_job(api, job_id, "succeeded", "failed")
        assert job["status"] == "succeeded", job["reason"]
        caches = stack.home / "jobs" / job_id / "caches"
        assert caches.is_symlink() and caches.resolve() == (stack.home / "passivbot" / "caches").resolve()
