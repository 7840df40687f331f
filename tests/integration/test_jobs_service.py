"""The job service without a worker: validation, queueing, cancel before start, listing,
events, reaping jobs lost from the queue. Real SQL (SQLite, PostgreSQL when configured) and
real Redis."""

from __future__ import annotations

import json

import pytest
from arq.constants import job_key_prefix

from botfleet.db import Host, Instance, JobStatus
from botfleet.db.models import ConfigVersion
from botfleet.jobs import (
    JobError,
    JobNotFound,
    JobStateError,
    cancel_job,
    job_events,
    list_jobs,
    reap_lost_jobs,
)
from botfleet.jobs.queue import queue_name
from botfleet.profiles import ConfigError, UnknownProfile
from tests.integration.test_jobs_support import (
    V8_CONFIG,
    JobsEnv,
    jobs_env,
    running_worker,
    wait_until,
)

__all__ = ["jobs_env"]  # the fixture, imported for pytest


async def test_created_job_is_queued_with_an_event_and_on_its_kind_queue(jobs_env: JobsEnv) -> None:
    job = await jobs_env.create("optimize", overrides={"optimize.iters": 50})

    assert job.status == JobStatus.QUEUED
    assert job.config["optimize"]["iters"] == 50
    assert job.overrides == {"optimize.iters": 50}
    assert await jobs_env.redis.zscore(queue_name("optimize"), job.id) is not None
    assert await jobs_env.redis.zscore(queue_name("backtest"), job.id) is None
    async with jobs_env.sessionmaker() as session:
        events = await job_events(session, job.id)
    assert [(e.kind, e.data["status"]) for e in events] == [("job.status", "queued")]
    assert [e["kind"] for e in await jobs_env.stream(job.id)] == ["job.status"]


async def test_unknown_profile_is_refused(jobs_env: JobsEnv) -> None:
    with pytest.raises(UnknownProfile, match="passivbot-v8"):
        await jobs_env.create("backtest", profile="passivbot-v9")


async def test_invalid_config_text_names_the_problem(jobs_env: JobsEnv) -> None:
    with pytest.raises(ConfigError) as caught:
        await jobs_env.create("backtest", config=None, config_text='{"bot": ')
    assert caught.value.key == ""
    assert "line" in caught.value.message


async def test_override_with_a_wrong_type_names_the_key(jobs_env: JobsEnv) -> None:
    with pytest.raises(ConfigError) as caught:
        await jobs_env.create("optimize", overrides={"optimize.iters": "many"})
    assert caught.value.key == "optimize.iters"


async def test_override_of_a_key_that_does_not_exist_names_it(jobs_env: JobsEnv) -> None:
    with pytest.raises(ConfigError) as caught:
        await jobs_env.create("backtest", overrides={"backtest.start_dat": "2024-01-01"})
    assert caught.value.key == "backtest.start_dat"


async def test_a_profile_without_jobs_is_refused(jobs_env: JobsEnv) -> None:
    with pytest.raises(JobError, match="runs no backtest or optimize jobs") as caught:
        await jobs_env.create("backtest", profile="custom")
    assert caught.value.key == "profile"


async def test_missing_section_for_the_kind_names_it(jobs_env: JobsEnv) -> None:
    config = json.loads(V8_CONFIG.read_text())
    del config["optimize"]
    with pytest.raises(ConfigError) as caught:
        await jobs_env.create("optimize", config=config)
    assert caught.value.key == "optimize"


async def test_bad_kind_and_config_sources_are_refused(jobs_env: JobsEnv) -> None:
    with pytest.raises(JobError) as caught:
        await jobs_env.create("livetrade")
    assert caught.value.key == "kind"
    with pytest.raises(JobError, match="exactly one"):
        await jobs_env.create("backtest", config_text=V8_CONFIG.read_text())
    with pytest.raises(JobError, match="exactly one"):
        await jobs_env.create("backtest", config=None)
    async with jobs_env.sessionmaker() as session:
        assert (await list_jobs(session))[1] == 0  # nothing was stored


async def test_job_from_an_instance_uses_its_current_config(jobs_env: JobsEnv) -> None:
    document = json.loads(V8_CONFIG.read_text())
    async with jobs_env.sessionmaker() as session:
        host = Host(name="local")
        session.add(host)
        await session.flush()
        instance = Instance(name="btc", host_id=host.id, profile="passivbot-v8", config_version=2)
        session.add(instance)
        await session.flush()
        for version, days in ((1, "2021-01-01"), (2, "2022-02-02")):
            doc = json.loads(json.dumps(document))
            doc["backtest"]["start_date"] = days
            session.add(ConfigVersion(instance_id=instance.id, version=version, document=doc,
                                      source=json.dumps(doc)))  # fmt: skip
        await session.commit()

    job = await jobs_env.create("backtest", profile=None, config=None, instance=instance,
                                overrides={"backtest.end_date": "2023-01-01"})  # fmt: skip

    assert job.profile == "passivbot-v8"
    assert job.instance_id == instance.id
    assert job.config["backtest"]["start_date"] == "2022-02-02"
    assert job.config["backtest"]["end_date"] == "2023-01-01"


async def test_cancel_while_queued_cancels_at_once_and_the_job_never_runs(
    jobs_env: JobsEnv,
) -> None:
    job = await jobs_env.create("backtest")
    async with jobs_env.sessionmaker() as session:
        cancelled = await cancel_job(session, jobs_env.redis, job.id)
    assert cancelled.status == JobStatus.CANCELLED
    assert cancelled.reason == "cancelled before start"

    async with running_worker(jobs_env.settings):
        # The worker takes the arq job and skips it: the queue drains, arq forgets it.
        async def drained() -> bool:
            return not await jobs_env.redis.exists(job_key_prefix + job.id)

        await wait_until(drained, what="the worker to take the cancelled job off the queue")

    after = await jobs_env.job(job.id)
    assert after.status == JobStatus.CANCELLED
    assert after.started_at is None and after.pid is None and after.attempt == 0
    assert not (jobs_env.settings.job_root / job.id).exists()
    async with jobs_env.sessionmaker() as session:
        with pytest.raises(JobStateError, match="already finished"):
            await cancel_job(session, jobs_env.redis, job.id)
        with pytest.raises(JobNotFound):
            await cancel_job(session, jobs_env.redis, "no-such-job")


async def test_list_filters_and_paginates_newest_first(jobs_env: JobsEnv) -> None:
    first = await jobs_env.create("backtest")
    second = await jobs_env.create("optimize")
    third = await jobs_env.create("backtest")
    async with jobs_env.sessionmaker() as session:
        await cancel_job(session, jobs_env.redis, third.id)
        rows, total = await list_jobs(session, limit=2)
        assert total == 3 and [j.id for j in rows] == [third.id, second.id]
        rows, total = await list_jobs(session, limit=2, offset=2)
        assert [j.id for j in rows] == [first.id]
        rows, total = await list_jobs(session, kind="backtest", status="queued")
        assert total == 1 and [j.id for j in rows] == [first.id]


async def test_a_queued_job_that_redis_lost_is_failed_by_the_reaper(jobs_env: JobsEnv) -> None:
    settings = jobs_env.settings.model_copy(update={"job_heartbeat_timeout": 0.2})
    kept = await jobs_env.create("backtest")
    lost = await jobs_env.create("backtest")
    await jobs_env.redis.delete(job_key_prefix + lost.id)  # as if Redis had lost it

    async def reaped() -> list[str]:
        async with jobs_env.sessionmaker() as session:
            return await reap_lost_jobs(session, jobs_env.redis, settings)

    assert await wait_until(reaped, what="the reaper to fail the lost job") == [lost.id]
    assert (await jobs_env.job(lost.id)).status == JobStatus.FAILED
    assert "lost from the queue" in (await jobs_env.job(lost.id)).reason
    assert (await jobs_env.job(kept.id)).status == JobStatus.QUEUED
