"""``/api/v1/users``: list, create, change and delete the users of this botfleet. Admins only,
except a user changing their own password (with the current one). Rules:
:mod:`botfleet.fleet.users`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.params import Parameter
from pydantic import BaseModel, Field
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from botfleet.api.auth import forget_everywhere
from botfleet.api.deps import page_params
from botfleet.db.models import User
from botfleet.fleet import users as service
from botfleet.fleet.credentials import hash_token
from botfleet.fleet.events import publish_events

__all__ = ["UserController"]


class UserOut(BaseModel):
    id: str
    username: str
    is_admin: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(id=user.id, username=user.username, is_admin=user.is_admin, created_at=user.created_at)


class UserPage(BaseModel):
    items: list[UserOut]
    total: int
    limit: int
    offset: int


class UserCreate(BaseModel):
    username: str = Field(description="1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.")
    password: str = Field(description="8-256 characters, not the user name.")
    is_admin: bool = False


class UserChange(BaseModel):
    password: str | None = Field(default=None, description="A new password (8-256 characters).")
    current_password: str | None = Field(default=None, description="Needed to change your own password.")
    is_admin: bool | None = Field(default=None, description="Admins only; the last admin stays one.")


class UserController(Controller):
    path = "/api/v1/users"
    tags = ["users"]

    @get("/", operation_id="listUsers")
    async def list_users(self, session: AsyncSession, user: User,
                         limit: int = Parameter(default=100, ge=1, le=1000),
                         offset: int = Parameter(default=0, ge=0)) -> UserPage:
        """Every user, by name (admins only)."""
        service.require_admin(user, "list users")
        limit, offset = page_params(limit, offset)
        rows = await service.list_users(session)
        return UserPage(items=[UserOut.of(u) for u in rows[offset:offset + limit]], total=len(rows),
                        limit=limit, offset=offset)

    @post("/", operation_id="createUser")
    async def create_user(self, data: UserCreate, session: AsyncSession, redis: Redis, user: User) -> UserOut:
        """Create a user (admins only); they log in with this name and password."""
        service.require_admin(user, "create users")
        created = await service.create_user(session, data.username, data.password, admin=data.is_admin, actor=user)
        await session.commit()
        await publish_events(redis, service.take_recorded(session))
        return UserOut.of(created)

    @get("/{user_id:str}", operation_id="getUser")
    async def get_user(self, user_id: str, session: AsyncSession, user: User) -> UserOut:
        """One user: yourself, or anyone for an admin."""
        if user_id != user.id:
            service.require_admin(user, "look at other users")
        return UserOut.of(await service.get_user(session, user_id))

    @patch("/{user_id:str}", operation_id="updateUser")
    async def update_user(self, user_id: str, data: UserChange, request: Request[Any, Any, Any],
                          session: AsyncSession, redis: Redis, user: User) -> UserOut:
        """Change a password and/or the admin flag. A new password ends the user's other login
        sessions (their API tokens keep working)."""
        changed = await service.update_user(
            session, user, user_id, password=data.password, current_password=data.current_password,
            is_admin=data.is_admin, keep_session_hash=hash_token(request.auth),
        )
        await session.commit()
        await forget_everywhere(redis, user_id=changed.id)
        await publish_events(redis, service.take_recorded(session))
        return UserOut.of(changed)

    @delete("/{user_id:str}", operation_id="deleteUser", status_code=204)
    async def delete_user(self, user_id: str, session: AsyncSession, redis: Redis, user: User) -> None:
        """Delete a user with their sessions and API tokens (admins only; not yourself, not the
        last admin)."""
        deleted = await service.delete_user(session, user, user_id)
        await session.commit()
        await forget_everywhere(redis, user_id=deleted.id)
        await publish_events(redis, service.take_recorded(session))
