"""Shared fixtures: a real Redis, real SQL databases, a throwaway BOTFLEET_HOME.

- Redis: ``BOTFLEET_TEST_REDIS_URL`` (set by scripts/test.sh), else an embedded redis-server
  started here for the session. Each test starts from an empty database (FLUSHDB).
- SQL: SQLite in the test's tmp dir, and PostgreSQL as well when ``BOTFLEET_TEST_POSTGRES_URL``
  names a server (a fresh database per test session) for tests that use ``db_url``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis as redis_sync
from redis.asyncio import Redis

from botfleet.fleet.embedded_redis import EmbeddedRedis

DATA = Path(__file__).parent / "data"
PASSIVBOT_CONFIGS = DATA / "passivbot"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("BOTFLEET_TEST_REDIS_URL")
    if url:
        yield url
        return
    server = EmbeddedRedis(dir=tmp_path_factory.mktemp("redis"), persist=False)
    yield server.start()
    server.stop()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
def clean_redis(redis_url: str) -> str:
    """For sync tests: an empty Redis database; returns its URL."""
    with redis_sync.Redis.from_url(redis_url) as client:
        client.flushdb()
    return redis_url


def _params() -> list[str]:
    return ["sqlite", "postgres"] if os.environ.get("BOTFLEET_TEST_POSTGRES_URL") else ["sqlite"]


@pytest.fixture(params=_params())
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL (async driver), SQLite and, where configured, PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'botfleet.db'}"
        return
    yield from _postgres_database(os.environ["BOTFLEET_TEST_POSTGRES_URL"])


def _postgres_database(base: str) -> Iterator[str]:
    """Create ``botfleet_test_<random>`` on the server in ``base`` and drop it afterwards."""
    import asyncio

    import asyncpg

    name = f"botfleet_test_{uuid.uuid4().hex[:12]}"
    admin = base.replace("postgresql+asyncpg://", "postgresql://")

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    root, _, _ = base.rpartition("/")
    try:
        yield f"{root}/{name}"
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A throwaway BOTFLEET_HOME."""
    path = tmp_path / "home"
    path.mkdir()
    return path
