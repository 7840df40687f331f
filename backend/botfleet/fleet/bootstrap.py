"""First-run data of a single-machine botfleet (``botfleet up``, DESIGN.md "botfleet up").

Each run of :func:`bootstrap`:
- creates the admin user when there is no user at all (``BOTFLEET_ADMIN_USER``, password from
  ``BOTFLEET_ADMIN_PASSWORD`` or generated); a generated password is written once to
  ``HOME/admin-credentials.txt`` (mode 0600) and returned, so ``up`` can print it once;
- makes sure the host ``local`` exists and gives it a fresh agent token (only its SHA-256 is
  stored on ``hosts.agent_token_hash``; the plaintext goes to the local agent in its env);
- keeps a valid API token for the command line in ``HOME/cli.token`` (0600), creating one
  when the file is missing or its token is no longer known.

It is idempotent: a second run keeps users and the CLI token and only replaces the local
agent token (the previous agent process is gone by then).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from botfleet.db.models import ApiToken, Host, User
from botfleet.db.session import create_engine, create_sessionmaker
from botfleet.fleet.auth import create_api_token, create_user
from botfleet.fleet.credentials import hash_token, new_password, new_token
from botfleet.fleet.errors import FleetError
from botfleet.settings import Settings

__all__ = [
    "ADMIN_CREDENTIALS_FILE",
    "CLI_TOKEN_FILE",
    "LOCAL_HOST",
    "Bootstrap",
    "BootstrapError",
    "bootstrap",
    "read_cli_token",
    "write_secret_file",
]

LOCAL_HOST = "local"
CLI_TOKEN_FILE = "cli.token"
ADMIN_CREDENTIALS_FILE = "admin-credentials.txt"


class BootstrapError(RuntimeError):
    """Bootstrap could not complete; the message is one line for the user."""


@dataclass(frozen=True)
class Bootstrap:
    """What a bootstrap run produced. ``admin_password`` is set only on the run that created
    the admin user with a generated password (print it then, never again)."""

    admin_user: str
    admin_created: bool
    admin_password: str | None
    host_id: str
    agent_token: str
    cli_token: str


def write_secret_file(path: Path, content: str) -> None:
    """Write ``content`` to ``path`` with mode 0600, atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(content)
    os.replace(tmp, path)


def read_cli_token(home: Path) -> str | None:
    """The token in ``home/cli.token``, or None when the file is missing or empty."""
    try:
        return (home / CLI_TOKEN_FILE).read_text().strip() or None
    except FileNotFoundError:
        return None


async def bootstrap(settings: Settings) -> Bootstrap:
    """Run the first-run steps above against ``settings.database`` (already migrated).

    Raises:
        BootstrapError: the admin password given is refused, or no admin user exists to own
            the CLI token.
    """
    home = settings.home.resolve()
    engine = create_engine(settings.database)
    try:
        async with create_sessionmaker(engine)() as session:
            admin, password, created = await _ensure_admin(session, settings)
            host, agent_token = await _rotate_local_agent_token(session)
            cli_token = await _ensure_cli_token(session, admin, home)
            await session.commit()
            result = Bootstrap(
                admin_user=admin.username,
                admin_created=created,
                admin_password=password if created and not settings.admin_password else None,
                host_id=host.id,
                agent_token=agent_token,
                cli_token=cli_token,
            )
    finally:
        await engine.dispose()
    write_secret_file(home / CLI_TOKEN_FILE, cli_token + "\n")
    if result.admin_password:
        write_secret_file(
            home / ADMIN_CREDENTIALS_FILE,
            f"user: {result.admin_user}\npassword: {result.admin_password}\n",
        )
    return result


async def _ensure_admin(session: AsyncSession, settings: Settings) -> tuple[User, str | None, bool]:
    if await session.scalar(select(func.count()).select_from(User)):
        admin = await session.scalar(
            select(User)
            .where(User.is_admin.is_(True))
            .order_by((User.username == settings.admin_user).desc(), User.created_at)
            .limit(1)
        )
        if admin is None:
            raise BootstrapError(
                "no admin user exists: create one with `botfleet create-user NAME --admin`"
            )
        return admin, None, False
    password = settings.admin_password or new_password()
    try:
        admin = await create_user(session, settings.admin_user, password, admin=True)
    except FleetError as exc:
        raise BootstrapError(f"BOTFLEET_ADMIN_PASSWORD refused: {exc.message}") from None
    return admin, password, True


async def _rotate_local_agent_token(session: AsyncSession) -> tuple[Host, str]:
    host = await session.scalar(select(Host).where(Host.name == LOCAL_HOST))
    if host is None:
        host = Host(name=LOCAL_HOST, address=None, labels={})
        session.add(host)
    token = new_token()
    host.agent_token_hash = hash_token(token)
    await session.flush()
    return host, token


async def _ensure_cli_token(session: AsyncSession, admin: User, home: Path) -> str:
    existing = read_cli_token(home)
    if existing:
        row = await session.scalar(
            select(ApiToken).where(
                ApiToken.token_hash == hash_token(existing), ApiToken.kind == "api"
            )
        )
        if row is not None:
            return existing
    token, _ = await create_api_token(session, admin, "botfleet cli")
    return token
