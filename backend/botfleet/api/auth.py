"""Authentication: ``Authorization: Bearer <token>`` (API token, login session or an agent's
host token) or the ``botfleet_session`` cookie set by login. Everything but ``/api/v1/health``,
login and the OpenAPI document needs it (invariant 5).

Each api process remembers a token's principal for :data:`AUTH_CACHE_SECONDS` (agents post
event batches many times a second; without it every batch costs a SQL lookup). Revoking a
token, logging out, and changing or deleting a user drop the entry in this process at once and
tell the other replicas over Redis pub/sub (:data:`FORGET_CHANNEL`), so a revoked token is
refused everywhere within milliseconds. Pub/sub is at most once: a replica that was not
subscribed at that moment (Redis reconnecting) clears its whole cache when it subscribes again,
and in the worst case serves a revoked token for at most AUTH_CACHE_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import structlog
from cachetools import TTLCache
from litestar import Controller, Litestar, Request, Response, delete, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from pydantic import BaseModel, Field
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from botfleet.db.models import ApiToken, User
from botfleet.fleet import auth
from botfleet.fleet.credentials import hash_token
from botfleet.fleet.errors import Unauthorized
from botfleet.fleet.events import publish_events
from botfleet.fleet.users import take_recorded
from botfleet.settings import Settings
from botfleet.tasks import background

__all__ = ["AuthController", "BearerAuth", "COOKIE", "auth_cache_lifespan", "forget_everywhere"]

log = structlog.get_logger(__name__)
COOKIE = "botfleet_session"
AUTH_CACHE_SECONDS = 10.0
FORGET_CHANNEL = "botfleet:auth:forget"
#: token digest -> principal (User or Host); keyed by digest so no plaintext token is kept.
_principals: TTLCache[str, Any] = TTLCache(maxsize=10_000, ttl=AUTH_CACHE_SECONDS)
PUBLIC = [r"^/api/v1/health", r"^/api/v1/auth/login$", r"^/schema", r"^/$", r"^/assets/", r"^/favicon"]


def _token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = connection.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return connection.cookies.get(COOKIE)


#: Counts forgets, so a lookup that raced with a revocation does not cache what it read.
_forgets = 0


def _forget_here(*, token_hash: str | None = None, user_id: str | None = None) -> None:
    global _forgets
    _forgets += 1
    if token_hash is not None:
        _principals.pop(token_hash, None)
    if user_id is not None:
        for key, principal in list(_principals.items()):
            if isinstance(principal, User) and principal.id == user_id:
                _principals.pop(key, None)


async def forget_everywhere(redis: Redis, *, token_hash: str | None = None, user_id: str | None = None) -> None:
    """Drop cached principals (one token by its SHA-256 digest, or all of a user's) in this
    process and, via Redis pub/sub, in every other api replica."""
    _forget_here(token_hash=token_hash, user_id=user_id)
    await redis.publish(FORGET_CHANNEL, json.dumps({"token_hash": token_hash, "user_id": user_id}))


async def _listen(redis: Redis) -> None:
    while True:
        try:
            async with redis.pubsub() as pubsub:
                await pubsub.subscribe(FORGET_CHANNEL)
                _principals.clear()  # whatever was revoked while we were not listening
                _forget_here()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        data = json.loads(message["data"])
                        _forget_here(token_hash=data.get("token_hash"), user_id=data.get("user_id"))
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - Redis away: entries still expire; resubscribe
            log.warning("auth cache invalidation: lost Redis pub/sub, retrying in 1 s", exc_info=True)
            await asyncio.sleep(1.0)


@contextlib.asynccontextmanager
async def auth_cache_lifespan(app: Litestar) -> AsyncIterator[None]:
    """Listen for other replicas' revocations while the app runs (needs ``app.state.redis``)."""
    async with background(_listen(app.state.redis), "auth forget listener"):
        yield


class BearerAuth(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        token = _token(connection)
        if not token:
            raise NotAuthorizedException(
                "no credentials: send 'Authorization: Bearer <token>' (POST /api/v1/auth/login gives one)"
            )
        digest = hash_token(token)
        principal = _principals.get(digest)
        if principal is None:
            forgets = _forgets
            async with connection.app.state.sessionmaker() as session:
                principal = await auth.authenticate(session, token)
                if principal is None:
                    raise NotAuthorizedException("the token is unknown, expired or revoked: log in again")
                await session.commit()  # last_used_at (already flushed by autoflush)
                session.expunge(principal)
            if forgets == _forgets:  # nothing was revoked while we looked it up
                _principals[digest] = principal
        return AuthenticationResult(user=principal, auth=token)


class Login(BaseModel):
    username: str
    password: str


class TokenOut(BaseModel):
    token: str = Field(description="The token itself: shown this once, only its SHA-256 is kept.")
    expires_at: datetime | None
    username: str
    id: str | None = Field(default=None, description="The token's id (for DELETE /api/v1/auth/tokens/{id}).")


class Me(BaseModel):
    id: str
    username: str
    is_admin: bool


class NewToken(BaseModel):
    name: str = Field(description="What uses it, e.g. 'grafana' (1-128 characters).")
    expires_in_days: int | None = Field(
        default=None, description="Days until it is refused (1-3650); left out: it never expires.")


class TokenInfo(BaseModel):
    """A token or login session, never the token itself."""

    id: str
    name: str
    kind: str = Field(description="'api' (long-lived, for scripts) or 'session' (a login, expires).")
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="Updated at most once a minute.")
    current: bool = Field(description="The token or session this request came with.")

    @classmethod
    def of(cls, row: ApiToken, current_hash: str) -> TokenInfo:
        return cls(id=row.id, name=row.name, kind=row.kind, created_at=row.created_at, expires_at=row.expires_at,
                   last_used_at=row.last_used_at, current=row.token_hash == current_hash)


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]

    @post("/login", operation_id="login", status_code=200)
    async def login(self, request: Request[Any, Any, Any], data: Login, session: AsyncSession,
                    redis: Redis, settings: Settings) -> Response[TokenOut]:
        """Log in: returns a session token and sets it as an HttpOnly cookie. After
        ``BOTFLEET_LOGIN_FAILURE_LIMIT`` failures from one address, its logins are refused
        (429 with Retry-After) for the rest of 15 minutes."""
        address = request.client.host if request.client else "unknown"
        await auth.check_login_allowed(redis, address, settings.login_failure_limit)
        try:
            token, row = await auth.login(session, data.username, data.password, ttl=settings.session_ttl)
        except Unauthorized:
            await auth.record_failed_login(redis, address)
            raise
        await session.commit()
        response = Response(TokenOut(token=token, expires_at=row.expires_at, username=data.username, id=row.id))
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=int(settings.session_ttl))
        return response

    @post("/logout", operation_id="logout", status_code=204)
    async def logout(self, request: Request[Any, Any, Any], session: AsyncSession, redis: Redis) -> Response[None]:
        await auth.logout(session, request.auth)
        await session.commit()
        await forget_everywhere(redis, token_hash=hash_token(request.auth))
        response: Response[None] = Response(None, status_code=204)
        response.delete_cookie(COOKIE)
        return response

    @get("/me", operation_id="getMe")
    async def me(self, user: User) -> Me:
        return Me(id=user.id, username=user.username, is_admin=user.is_admin)

    @get("/tokens", operation_id="listApiTokens")
    async def list_tokens(self, request: Request[Any, Any, Any], user: User, session: AsyncSession) -> list[TokenInfo]:
        """Your API tokens and open login sessions, newest first (never the tokens themselves)."""
        current = hash_token(request.auth)
        return [TokenInfo.of(row, current) for row in await auth.list_tokens(session, user)]

    @post("/tokens", operation_id="createApiToken", status_code=201)
    async def create_token(self, data: NewToken, user: User, session: AsyncSession, redis: Redis) -> TokenOut:
        """An API token for scripts, shown once; it never expires unless ``expires_in_days``."""
        token, row = await auth.create_api_token(session, user, data.name, expires_in_days=data.expires_in_days)
        await session.commit()
        await publish_events(redis, take_recorded(session))
        return TokenOut(token=token, expires_at=row.expires_at, username=user.username, id=row.id)

    @delete("/tokens/{token_id:str}", operation_id="revokeApiToken", status_code=204)
    async def revoke_token(self, token_id: str, user: User, session: AsyncSession, redis: Redis) -> None:
        """Revoke one of your tokens or sessions: it is refused from now on, on every replica."""
        row = await auth.revoke_token(session, user, token_id)
        await session.commit()
        await forget_everywhere(redis, token_hash=row.token_hash)
        await publish_events(redis, take_recorded(session))

