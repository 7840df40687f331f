"""Authentication: ``Authorization: Bearer <token>`` (API token, login session or an agent's
host token) or the ``botfleet_session`` cookie set by login. Everything but ``/api/v1/health``,
login and the OpenAPI document needs it (invariant 5)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cachetools import TTLCache

from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from botfleet.db.models import User
from botfleet.fleet import auth
from botfleet.settings import Settings

__all__ = ["AuthController", "BearerAuth", "COOKIE"]

COOKIE = "botfleet_session"
#: Seconds a token's principal is remembered by one api process. Agents post event batches
#: many times a second; without it every batch costs a SQL lookup. A revoked token or a
#: logout elsewhere takes effect on this replica within this time.
AUTH_CACHE_SECONDS = 10.0
_principals: TTLCache[str, Any] = TTLCache(maxsize=10_000, ttl=AUTH_CACHE_SECONDS)
PUBLIC = [r"^/api/v1/health", r"^/api/v1/auth/login$", r"^/schema", r"^/$", r"^/assets/", r"^/favicon"]


def _token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = connection.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return connection.cookies.get(COOKIE)


class BearerAuth(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        token = _token(connection)
        if not token:
            raise NotAuthorizedException(
                "no credentials: send 'Authorization: Bearer <token>' (POST /api/v1/auth/login gives one)"
            )
        principal = _principals.get(token)
        if principal is None:
            async with connection.app.state.sessionmaker() as session:
                principal = await auth.authenticate(session, token)
                if principal is None:
                    raise NotAuthorizedException("the token is unknown or expired: log in again")
                session.expunge(principal)
            _principals[token] = principal
        return AuthenticationResult(user=principal, auth=token)


class Login(BaseModel):
    username: str
    password: str


class TokenOut(BaseModel):
    token: str
    expires_at: datetime | None
    username: str


class Me(BaseModel):
    id: str
    username: str
    is_admin: bool


class NewToken(BaseModel):
    name: str


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]

    @post("/login", operation_id="login", status_code=200)
    async def login(self, data: Login, session: AsyncSession, settings: Settings) -> Response[TokenOut]:
        """Log in: returns a session token and sets it as an HttpOnly cookie."""
        token, row = await auth.login(session, data.username, data.password, ttl=settings.session_ttl)
        await session.commit()
        response = Response(TokenOut(token=token, expires_at=row.expires_at, username=data.username))
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=int(settings.session_ttl))
        return response

    @post("/logout", operation_id="logout", status_code=204)
    async def logout(self, request: Request[Any, Any, Any], session: AsyncSession) -> Response[None]:
        await auth.logout(session, request.auth)
        await session.commit()
        _principals.pop(request.auth, None)
        response: Response[None] = Response(None, status_code=204)
        response.delete_cookie(COOKIE)
        return response

    @get("/me", operation_id="getMe")
    async def me(self, user: User) -> Me:
        return Me(id=user.id, username=user.username, is_admin=user.is_admin)

    @post("/tokens", operation_id="createApiToken", status_code=201)
    async def create_token(self, data: NewToken, user: User, session: AsyncSession) -> TokenOut:
        """A long-lived API token for scripts; shown once."""
        token, _row = await auth.create_api_token(session, user, data.name)
        await session.commit()
        return TokenOut(token=token, expires_at=None, username=user.username)


