"""Users, login sessions and API tokens (DESIGN.md invariant 5: everything but health needs
authentication). Agents authenticate with their host's token (see :mod:`botfleet.fleet.agents`).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from botfleet.db.models import ApiToken, Host, User, utcnow
from botfleet.fleet.credentials import hash_password, hash_token, new_token, verify_password
from botfleet.fleet.errors import Conflict, Invalid, Unauthorized

__all__ = ["authenticate", "create_api_token", "create_user", "login", "logout"]


async def create_user(session: AsyncSession, username: str, password: str, *, admin: bool) -> User:
    """Raises Conflict when the name is taken, Invalid for a password under 8 characters."""
    if len(password) < 8:
        raise Invalid("password must have at least 8 characters", key="password")
    if await session.scalar(select(User).where(User.username == username)):
        raise Conflict(f"user {username!r} exists already", key="username")
    user = User(username=username, password_hash=hash_password(password), is_admin=admin)
    session.add(user)
    await session.flush()
    return user


async def login(
    session: AsyncSession, username: str, password: str, *, ttl: float
) -> tuple[str, ApiToken]:
    """A new session token (plaintext, shown once) valid for ``ttl`` seconds.

    Raises:
        Unauthorized: unknown user or wrong password (one message for both).
    """
    user = await session.scalar(select(User).where(User.username == username))
    if user is None or not verify_password(user.password_hash, password):
        raise Unauthorized("wrong user name or password")
    token = new_token()
    row = ApiToken(
        user_id=user.id,
        name="login",
        kind="session",
        token_hash=hash_token(token),
        expires_at=utcnow() + timedelta(seconds=ttl),
    )
    session.add(row)
    await session.flush()
    return token, row


async def create_api_token(session: AsyncSession, user: User, name: str) -> tuple[str, ApiToken]:
    """A long-lived API token for scripts (plaintext returned once)."""
    token = new_token()
    row = ApiToken(user_id=user.id, name=name, kind="api", token_hash=hash_token(token))
    session.add(row)
    await session.flush()
    return token, row


async def logout(session: AsyncSession, token: str) -> None:
    row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is not None:
        await session.delete(row)


async def authenticate(session: AsyncSession, token: str) -> User | Host | None:
    """The user or the host (agent) a bearer token belongs to, or None (unknown or expired)."""
    digest = hash_token(token)
    row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    if row is not None:
        if row.expires_at is not None and row.expires_at < utcnow():
            return None
        return await session.get(User, row.user_id)
    return await session.scalar(select(Host).where(Host.agent_token_hash == digest))
