"""The api side of the agent protocol (fleet/agents.py) against real Redis and SQL: a batch
is taken once per (run_id, seq) even when two uploads carry it at the same moment (an agent
resending on a new upload after a lost link while the old one is still being taken); an
agent of another protocol version is told to upgrade."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from botfleet.db.models import Host
from botfleet.db.session import create_engine, create_sessionmaker
from botfleet.fleet import streams
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


async def test_one_batch_on_two_uploads_at_once_is_taken_once(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, redis: Redis
) -> None:
    async with sessions() as session:
        host = Host(name="vps1", status="online")
        session.add(host)
        await session.commit()
        host_id = host.id
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
