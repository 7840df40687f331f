"""The api side of the agent protocol (fleet/agents.py) against real Redis and SQL: a batch
is taken once per (run_id, seq) even when two uploads carry it at the same moment (an agent
resending on a new upload after a lost link while the old one is still being taken); the
host's batch lock of an api that died holding it is taken over, a live holder's outlasts its
timeout; an agent of another protocol version is told to upgrade."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from botfleet.db.models import Event, Host
from botfleet.db.session import create_engine, create_sessionmaker
from botfleet.fleet import agents, streams
from botfleet.fleet.agents import announce, take_batch
from botfleet.fleet.errors import Conflict
from botfleet.fleet.migrate import upgrade_async
from botfleet.protocol import PROTOCOL_VERSION, Announce, EventBatch, LogLines
from botfleet.settings import Settings


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a migrated database (SQLite, and PostgreSQL where configured)."""
    await upgrade_async(db_url)
    engine = create_engine(db_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, database_url=db_url)  # type: ignore[arg-type]


async def _online_host(sessions: async_sessionmaker[AsyncSession]) -> str:
    """A host ``vps1`` marked online (its batches are taken); returns its id."""
    async with sessions() as session:
        host = Host(name="vps1", status="online")
        session.add(host)
        await session.commit()
        return host.id


async def test_one_batch_on_two_uploads_at_once_is_taken_once(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, redis: Redis
) -> None:
    host_id = await _online_host(sessions)
    batches = [
        EventBatch(run_id="run-1", seq=seq, events=[LogLines(
            instance_id="i1", first_seq=seq * 10, lines=[f"line {seq}.{n}" for n in range(3)])])
        for seq in (1, 2, 3)
    ]

    async def upload() -> list[bool]:
        async with sessions() as session:
            return [await take_batch(session, redis, settings, host_id, b) for b in batches]

    first, second = await asyncio.gather(upload(), upload())
    assert sorted(first + second) == [False] * 3 + [True] * 3  # each batch taken once
    lines = [fields["line"] for _id, fields in await redis.xrange(streams.instance_logs("i1"))]
    assert lines == [f"line {seq}.{n}" for seq in (1, 2, 3) for n in range(3)]


async def test_a_batch_lock_left_by_a_dead_api_is_taken_over_and_a_live_one_is_kept(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, redis: Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(agents, "TAKE_LOCK_TIMEOUT", 1.0)
    host_id = await _online_host(sessions)
    # An api SIGKILLed while taking a batch: its lock stays, never released nor renewed.
    dead = redis.lock(streams.agent_take_lock(host_id), timeout=agents.TAKE_LOCK_TIMEOUT)
    assert await dead.acquire(blocking=False)
    batch = EventBatch(run_id="run-1", seq=1, events=[LogLines(instance_id="i1", first_seq=0, lines=["after"])])
    async with sessions() as session:
        assert await take_batch(session, redis, settings, host_id, batch)
    assert [f["line"] for _id, f in await redis.xrange(streams.instance_logs("i1"))] == ["after"]
    # A live holder keeps its lock for as long as it works, past the timeout.
    live = redis.lock(streams.agent_take_lock(host_id), timeout=agents.TAKE_LOCK_TIMEOUT)
    assert await live.acquire(blocking=False)
    renewing = asyncio.create_task(agents._keep_lock(live))
    await asyncio.sleep(3 * agents.TAKE_LOCK_TIMEOUT)
    assert await live.owned()
    renewing.cancel()
    await live.release()


async def test_an_agent_of_another_protocol_version_is_told_to_upgrade(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, redis: Redis
) -> None:
    async with sessions() as session:
        host = Host(name="vps1", status="unknown")
        session.add(host)
        await session.commit()
        old = Announce(host="vps1", agent_version="0.0.9", run_id="r1", instances=[], instances_dir="/srv/x",
                       protocol_version=PROTOCOL_VERSION - 1)
        with pytest.raises(Conflict, match=r"upgrade the agent \(POST /api/v1/hosts/vps1/upgrade"):
            await announce(session, redis, settings, host, old)
        await session.refresh(host)
        assert host.status == "unknown" and host.agent_version is None  # nothing taken


async def test_a_batch_of_state_changes_is_stored_and_streamed_in_its_order(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, redis: Redis
) -> None:
    # Many changes in one batch (a stop of many bots) are stored in one flush: each instance
    # row ends in its last state, and the fleet stream has an event per change, in order,
    # with ascending ids.
    from datetime import UTC, datetime

    from botfleet.db.models import Instance
    from botfleet.protocol import InstanceState, StateChange

    async with sessions() as session:
        host = Host(name="vps1", status="online")
        session.add(host)
        await session.flush()
        rows = [Instance(name=f"bot{i}", host_id=host.id, profile="custom", state="RUNNING", pid=100 + i)
                for i in range(3)]
        session.add_all(rows)
        await session.commit()
        host_id, ids = host.id, [r.id for r in rows]

    def change(instance_id: str, old: InstanceState, new: InstanceState) -> StateChange:
        return StateChange(instance_id=instance_id, generation=2, old=old, new=new, time=datetime.now(UTC),
                           pid=None if new == InstanceState.STOPPED else 1, exit_code=0, reason="stop requested")

    S = InstanceState
    changes = [change(i, S.RUNNING, S.STOPPING) for i in ids] + [change(i, S.STOPPING, S.STOPPED) for i in ids]
    before = len(await redis.xrange(streams.EVENTS))
    async with sessions() as session:
        assert await take_batch(session, redis, settings, host_id, EventBatch(run_id="r", seq=1, events=changes))
    published = [json.loads(fields["data"]) for _, fields in (await redis.xrange(streams.EVENTS))[before:]]
    assert [(e["instance_id"], e["data"]["new"]) for e in published] == [(c.instance_id, c.new) for c in changes]
    assert [e["id"] for e in published] == sorted(e["id"] for e in published)
    async with sessions() as session:
        stored = (await session.scalars(select(Instance).where(Instance.id.in_(ids)))).all()
        assert {(r.state, r.pid) for r in stored} == {("STOPPED", None)}
        # One INSERT for all six (Event._sentinel): each id is still its own event's row.
        rows = {e.id: e for e in (await session.scalars(
            select(Event).where(Event.id.in_([e["id"] for e in published])))).all()}
        assert [(rows[e["id"]].instance_id, rows[e["id"]].data["new"]) for e in published] == \
            [(c.instance_id, c.new) for c in changes]


async def test_lines_one_read_brings_are_taken_together_each_once_and_in_order(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, redis: Redis
) -> None:
    # An api that fell behind reads several batches at once: they are taken together, a
    # resend among them (seq 1, taken before) is skipped, the reply acknowledges the highest.
    host_id = await _online_host(sessions)

    def line(seq: int) -> bytes:
        batch = EventBatch(run_id="run-1", seq=seq, events=[LogLines(
            instance_id="i1", first_seq=seq * 10, lines=[f"line {seq}.{n}" for n in range(2)])])
        return batch.model_dump_json().encode() + b"\n"

    async with sessions() as session:
        assert await take_batch(session, redis, settings, host_id, EventBatch.model_validate_json(line(1)))

    async def body() -> AsyncIterator[bytes]:
        yield line(1) + line(2) + line(3)[:10]  # three lines, the third unfinished
        yield line(3)[10:] + line(4)

    async with sessions() as session:
        reply = await agents.take_upload(session, redis, settings, host_id, body())
    assert (reply.accepted, reply.last_seq) == (3, 4)
    lines = [fields["line"] for _id, fields in await redis.xrange(streams.instance_logs("i1"))]
    assert lines == [f"line {seq}.{n}" for seq in (1, 2, 3, 4) for n in range(2)]


async def test_a_bad_line_among_others_keeps_those_before_it_and_drops_those_after(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, redis: Redis
) -> None:
    from botfleet.fleet.errors import Invalid

    host_id = await _online_host(sessions)
    good = [EventBatch(run_id="run-1", seq=seq, events=[LogLines(instance_id="i1", first_seq=seq, lines=[f"l{seq}"])])
            .model_dump_json().encode() for seq in (1, 2)]

    async def body() -> AsyncIterator[bytes]:
        yield good[0] + b'\n{"run_id": "run-1"}\n' + good[1] + b"\n"

    async with sessions() as session:
        with pytest.raises(Invalid, match="line 2 of the event upload is not an EventBatch"):
            await agents.take_upload(session, redis, settings, host_id, body())
    assert [f["line"] for _id, f in await redis.xrange(streams.instance_logs("i1"))] == ["l1"]
    assert await redis.hget(streams.agent_batches(host_id), "run-1") == "1"
