"""The migration scripts build exactly the schema of botfleet.db.models, on SQLite and
PostgreSQL, and `botfleet migrate` runs them from any working directory."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

from botfleet.db.models import Base, ConfigVersion, Host, Instance
from botfleet.db.session import create_engine, create_sessionmaker
from botfleet.fleet.migrate import (
    MigrationError,
    current_revision,
    downgrade_async,
    head_revision,
    upgrade_async,
)


async def _schema_diff(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:

            def diff(sync_conn):  # type: ignore[no-untyped-def]
                context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                return compare_metadata(context, Base.metadata)

            return await conn.run_sync(diff)
    finally:
        await engine.dispose()


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_upgrade_head_builds_the_schema_of_the_models(db_url: str) -> None:
    assert await current_revision(db_url) is None
    assert await upgrade_async(db_url) == head_revision()
    assert await _schema_diff(db_url) == []
    assert set(Base.metadata.tables) <= await _tables(db_url)


async def test_upgrade_twice_is_a_no_op(db_url: str) -> None:
    await upgrade_async(db_url)
    assert await upgrade_async(db_url) == head_revision()
    assert await _schema_diff(db_url) == []


async def test_downgrade_to_base_and_back(db_url: str) -> None:
    await upgrade_async(db_url)
    assert await downgrade_async(db_url, "base") is None
    assert await _tables(db_url) <= {"alembic_version"}
    assert await upgrade_async(db_url) == head_revision()
    assert await _schema_diff(db_url) == []


async def test_unreachable_database_is_one_clear_error() -> None:
    with pytest.raises(MigrationError, match=r"^database is not reachable: postgresql\+asyncpg://"):
        await upgrade_async("postgresql+asyncpg://postgres:secret@127.0.0.1:1/botfleet")


async def test_error_messages_hide_the_password() -> None:
    with pytest.raises(MigrationError) as caught:
        await upgrade_async("postgresql+asyncpg://postgres:hunter2@127.0.0.1:1/botfleet")
    assert "hunter2" not in str(caught.value)


def _botfleet(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "botfleet", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )


def test_botfleet_migrate_from_another_directory_creates_the_schema(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    home = tmp_path / "home"
    env = {**os.environ, "BOTFLEET_HOME": str(home)}
    env.pop("BOTFLEET_DATABASE_URL", None)
    done = _botfleet("migrate", cwd=elsewhere, env=env)
    assert done.returncode == 0, done.stderr
    assert head_revision() in done.stdout
    with sqlite3.connect(home / "botfleet.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        (revision,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
    assert set(Base.metadata.tables) <= tables
    assert revision == head_revision()


def test_botfleet_migrate_to_a_revision_and_unreachable_database(tmp_path: Path) -> None:
    env = {**os.environ, "BOTFLEET_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"}
    done = _botfleet("migrate", "--revision", "0001", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "is at revision 0001" in done.stdout
    env["BOTFLEET_DATABASE_URL"] = "postgresql+asyncpg://postgres@127.0.0.1:1/botfleet"
    done = _botfleet("migrate", cwd=tmp_path, env=env)
    assert done.returncode == 1
    assert done.stderr.startswith("botfleet: database is not reachable:")
    assert "Traceback" not in done.stderr


async def test_upgrade_to_0002_fills_in_the_account_each_config_names(db_url: str) -> None:
    await upgrade_async(db_url)
    engine = create_engine(db_url)
    try:
        async with create_sessionmaker(engine)() as session:
            host = Host(name="vps1")
            session.add(host)
            await session.flush()
            instance = Instance(name="bot", host_id=host.id, profile="passivbot-v8", simulated=False,
                                labels={}, env={}, supervision={}, state="STOPPED")
            session.add(instance)
            await session.flush()
            for version, document in enumerate([{"live": {"user": "binance_01"}}, {"live": {}}, {}], 1):
                session.add(ConfigVersion(instance_id=instance.id, version=version, document=document,
                                          source="{}", account=None))
            await session.commit()
        await downgrade_async(db_url, "0001")
        assert await upgrade_async(db_url) == head_revision()
        async with create_sessionmaker(engine)() as session:
            rows = (await session.execute(select(ConfigVersion.version, ConfigVersion.account)
                                          .order_by(ConfigVersion.version))).all()
        assert [tuple(r) for r in rows] == [(1, "binance_01"), (2, None), (3, None)]
    finally:
        await engine.dispose()
