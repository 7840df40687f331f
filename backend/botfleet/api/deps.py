"""Dependencies handed to controllers: the settings, a DB session per request, Redis, and the
authenticated principal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import Provide
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from botfleet.db.models import Host, User
from botfleet.fleet.errors import Unauthorized
from botfleet.settings import Settings

__all__ = ["Page", "dependencies", "page_params"]


async def provide_session(state: State) -> AsyncIterator[AsyncSession]:
    async with state.sessionmaker() as session:
        yield session


def provide_redis(state: State) -> Redis:
    return state.redis


def provide_settings(state: State) -> Settings:
    return state.settings


def provide_user(request: Request[Any, Any, Any]) -> User:
    if not isinstance(request.user, User):
        raise Unauthorized("this call needs a user's token, not an agent's")
    return request.user


def provide_host(request: Request[Any, Any, Any]) -> Host:
    if not isinstance(request.user, Host):
        raise Unauthorized("this call is for agents: use the host's agent token")
    return request.user


dependencies = {
    "session": Provide(provide_session),
    "redis": Provide(provide_redis, sync_to_thread=False),
    "settings": Provide(provide_settings, sync_to_thread=False),
    "user": Provide(provide_user, sync_to_thread=False),
    "agent_host": Provide(provide_host, sync_to_thread=False),
}


Page = dict[str, Any]


def page_params(limit: int, offset: int) -> tuple[int, int]:
    return max(1, min(limit, 1000)), max(0, offset)
