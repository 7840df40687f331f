"""The `botfleet` command: help, usage errors, first-run bootstrap, users and tokens, the
README's settings table, and the refusals of `botfleet up` (port taken, HOME in use)."""

from __future__ import annotations

import fcntl
import os
import socket
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from sqlalchemy import func, select

from botfleet.db.models import ApiToken, Host, User
from botfleet.db.session import create_engine, create_sessionmaker
from botfleet.fleet.bootstrap import BootstrapError, bootstrap
from botfleet.fleet.credentials import hash_token, verify_password
from botfleet.fleet.embedded_redis import free_port
from botfleet.fleet.migrate import upgrade_async
from botfleet.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SUBCOMMANDS = ["up", "api", "worker", "agent", "migrate", "demo", "create-user", "token"]


def botfleet(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
             stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "botfleet", *args], env=env, cwd=cwd, input=stdin,
        capture_output=True, text=True, timeout=120,
    )


def home_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTFLEET_")}
    return {**env, "BOTFLEET_HOME": str(home), **extra}


def test_help_lists_every_subcommand() -> None:
    done = botfleet("--help")
    assert done.returncode == 0
    for name in SUBCOMMANDS:
        assert name in done.stdout


@pytest.mark.parametrize(
    "args", [[name, "--help"] for name in SUBCOMMANDS] + [["token", "create", "--help"]]
)
def test_each_subcommand_has_help(args: list[str]) -> None:
    done = botfleet(*args)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: botfleet {' '.join(args[:-1])}")


@pytest.mark.parametrize("args", [[], ["fly"], ["up", "--port", "eighty"], ["token"]])
def test_bad_usage_exits_2(args: list[str]) -> None:
    done = botfleet(*args)
    assert done.returncode == 2
    assert "usage: botfleet" in done.stderr


def test_invalid_setting_is_one_line_and_exit_1(tmp_path: Path) -> None:
    done = botfleet("migrate", env=home_env(tmp_path, BOTFLEET_API_PORT="eighty"))
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("botfleet: invalid settings: BOTFLEET_API_PORT:")


def settings_for(home: Path, db_url: str, **values: object) -> Settings:
    return Settings(home=home, database_url=db_url, **values)  # type: ignore[arg-type]


async def count(db_url: str, model: type) -> int:
    engine = create_engine(db_url)
    try:
        async with create_sessionmaker(engine)() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        await engine.dispose()


async def local_host(db_url: str) -> Host:
    engine = create_engine(db_url)
    try:
        async with create_sessionmaker(engine)() as session:
            host = await session.scalar(select(Host).where(Host.name == "local"))
            assert host is not None
            return host
    finally:
        await engine.dispose()


async def admin_row(db_url: str) -> User:
    engine = create_engine(db_url)
    try:
        async with create_sessionmaker(engine)() as session:
            user = await session.scalar(select(User))
            assert user is not None
            return user
    finally:
        await engine.dispose()


async def test_bootstrap_first_run_creates_admin_host_and_tokens(home: Path, db_url: str) -> None:
    await upgrade_async(db_url)
    first = await bootstrap(settings_for(home, db_url))
    assert first.admin_created and first.admin_user == "admin"
    assert first.admin_password and len(first.admin_password) >= 12
    assert verify_password((await admin_row(db_url)).password_hash, first.admin_password)
    credentials = home / "admin-credentials.txt"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert first.admin_password in credentials.read_text()
    assert stat.S_IMODE((home / "cli.token").stat().st_mode) == 0o600
    assert (home / "cli.token").read_text().strip() == first.cli_token
    assert (await local_host(db_url)).agent_token_hash == hash_token(first.agent_token)


async def test_bootstrap_again_keeps_admin_and_cli_token_and_rotates_agent_token(
    home: Path, db_url: str
) -> None:
    await upgrade_async(db_url)
    first = await bootstrap(settings_for(home, db_url))
    second = await bootstrap(settings_for(home, db_url))
    assert not second.admin_created and second.admin_password is None
    assert second.cli_token == first.cli_token
    assert second.agent_token != first.agent_token
    assert (await local_host(db_url)).agent_token_hash == hash_token(second.agent_token)
    assert await count(db_url, User) == 1
    assert await count(db_url, Host) == 1
    assert await count(db_url, ApiToken) == 1
    assert verify_password((await admin_row(db_url)).password_hash, first.admin_password or "")


async def test_bootstrap_replaces_a_lost_cli_token(home: Path, db_url: str) -> None:
    await upgrade_async(db_url)
    first = await bootstrap(settings_for(home, db_url))
    (home / "cli.token").unlink()
    second = await bootstrap(settings_for(home, db_url))
    assert second.cli_token != first.cli_token
    assert (home / "cli.token").read_text().strip() == second.cli_token


async def test_bootstrap_with_a_given_password_prints_and_stores_none(
    home: Path, db_url: str
) -> None:
    await upgrade_async(db_url)
    result = await bootstrap(
        settings_for(home, db_url, admin_user="ops", admin_password="correct horse battery")
    )
    assert result.admin_created and result.admin_user == "ops" and result.admin_password is None
    assert not (home / "admin-credentials.txt").exists()
    assert verify_password((await admin_row(db_url)).password_hash, "correct horse battery")


async def test_bootstrap_refuses_a_short_admin_password(home: Path, db_url: str) -> None:
    await upgrade_async(db_url)
    with pytest.raises(BootstrapError, match="BOTFLEET_ADMIN_PASSWORD refused"):
        await bootstrap(settings_for(home, db_url, admin_password="short"))
    assert await count(db_url, User) == 0


def test_create_user_and_token_create(tmp_path: Path) -> None:
    env = home_env(tmp_path)
    assert botfleet("migrate", env=env).returncode == 0
    done = botfleet("create-user", "alice", "--admin", "--password-stdin", env=env,
                    stdin="a long password\n")
    assert done.returncode == 0, done.stderr
    assert "user alice created (admin)" in done.stdout
    done = botfleet("token", "create", "grafana", "--user", "alice", env=env)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    with sqlite3.connect(tmp_path / "botfleet.db") as db:
        (is_admin,) = db.execute("SELECT is_admin FROM users WHERE username='alice'").fetchone()
        rows = db.execute("SELECT name, kind FROM api_tokens WHERE token_hash=?",
                          (hash_token(token),)).fetchall()
    assert is_admin == 1
    assert rows == [("grafana", "api")]


def test_create_user_twice_and_unknown_token_owner_are_clear_errors(tmp_path: Path) -> None:
    env = home_env(tmp_path)
    assert botfleet("migrate", env=env).returncode == 0
    args = ("create-user", "bob", "--password-stdin")
    assert botfleet(*args, env=env, stdin="a long password\n").returncode == 0
    done = botfleet(*args, env=env, stdin="a long password\n")
    assert (done.returncode, done.stderr) == (1, "botfleet: user 'bob' exists already: choose another name\n")
    done = botfleet("token", "create", "x", "--user", "nobody", env=env)
    assert done.returncode == 1
    assert done.stderr.startswith("botfleet: no user 'nobody'")


def test_commands_on_an_unmigrated_database_say_to_migrate(tmp_path: Path) -> None:
    done = botfleet("token", "create", "x", env=home_env(tmp_path))
    assert done.returncode == 1
    assert "run `botfleet migrate` first" in done.stderr
    assert "Traceback" not in done.stderr


def test_demo_without_a_token_says_how_to_get_one(tmp_path: Path) -> None:
    done = botfleet("demo", env=home_env(tmp_path))
    assert done.returncode == 1
    assert done.stderr.startswith("botfleet: no API token: pass --token")


def test_demo_against_no_api_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        done = botfleet("demo", "--url", f"http://127.0.0.1:{port}", "--token", "t",
                        env=home_env(tmp_path))
    assert done.returncode == 1
    expected = f"botfleet: botfleet api is not reachable at http://127.0.0.1:{port}"
    assert done.stderr.startswith(expected)


def test_up_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        done = botfleet("up", "--port", str(port), env=home_env(tmp_path / "home"))
    assert done.returncode == 1
    assert done.stderr.endswith(
        f"botfleet: port {port} is in use: set BOTFLEET_API_PORT or pass --port\n"
    )
    assert not (tmp_path / "home" / "botfleet.db").exists()


def test_up_refuses_a_home_that_another_up_uses(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with open(home / "up.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = botfleet("up", "--port", str(free_port()), env=home_env(home))
    assert done.returncode == 1
    assert f"another `botfleet up` runs with BOTFLEET_HOME={home.resolve()}" in done.stderr
    assert not (home / "botfleet.db").exists()


def test_readme_settings_table_is_current() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "settings_table.py"), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_up_with_an_unreachable_database_says_so_and_stops_its_redis(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = home_env(home, BOTFLEET_DATABASE_URL="postgresql+asyncpg://postgres:pw@127.0.0.1:1/x")
    done = botfleet("up", "--port", str(free_port()), env=env)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith(
        "botfleet: database is not reachable: postgresql+asyncpg://postgres:***@127.0.0.1:1/x"
    )
    leftovers = [p for p in psutil.process_iter(["cmdline"])
                 if str(home) in " ".join(p.info["cmdline"] or [])]
    assert leftovers == []
    assert not (home / "redis.url").exists()


def test_up_with_an_unreachable_redis_says_so(tmp_path: Path) -> None:
    port = free_port()
    env = home_env(tmp_path, BOTFLEET_REDIS_URL=f"redis://127.0.0.1:{port}/0")
    done = botfleet("up", "--port", str(free_port()), env=env)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith(
        f"botfleet: redis is not reachable at 127.0.0.1:{port}/0 (BOTFLEET_REDIS_URL)"
    )
