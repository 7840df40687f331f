"""Users of the panel and the api: who may do what, and the rules their names and passwords
follow.

- A user name is 1-64 characters: letters, digits, ``.``, ``_``, ``-``, starting with a letter
  or a digit (it shows in URLs, logs and the CLI's ``--user``).
- A password has 8 to 256 characters and is not the user name. No composition rules: NIST SP
  800-63B (5.1.1.2) asks for a minimum length of 8, no composition rules, and a check against
  obvious choices; Argon2id stores it (:mod:`botfleet.fleet.credentials`).
- Only admins list, create, change or delete users. Anyone changes their own password, giving
  the current one. The last admin is never deleted or demoted, and nobody deletes themselves
  (another admin does it), so botfleet always keeps someone who can manage it.
- Deleting a user deletes their login sessions and API tokens; changing a password ends the
  user's other login sessions (API tokens stay: scripts keep working).

Every change records an event (``user.created``, ``user.updated``, ``user.deleted``) naming the
user and who acted; never a password or a token. Events recorded here and in
:mod:`botfleet.fleet.auth` are also listed by :func:`take_recorded` so that the caller publishes
them after its commit (nothing rolled back is streamed).
"""

from __future__ import annotations

import re

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from botfleet.db.models import ApiToken, Event, User
from botfleet.fleet.credentials import hash_password, verify_password
from botfleet.fleet.errors import Conflict, FleetError, Invalid, NotFound
from botfleet.fleet.events import record_event

__all__ = [
    "Forbidden",
    "check_password",
    "check_username",
    "create_user",
    "delete_user",
    "get_user",
    "list_users",
    "note_event",
    "require_admin",
    "take_recorded",
    "update_user",
]

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PASSWORD_MIN, PASSWORD_MAX = 8, 256
#: A few passwords every guessing list starts with (NIST SP 800-63B 5.1.1.2 "commonly-used").
COMMON_PASSWORDS = frozenset({
    "password", "password1", "12345678", "123456789", "1234567890", "qwertyui", "qwerty123",
    "11111111", "00000000", "iloveyou", "letmein1", "abcdefgh", "botfleet", "passivbot",
    "administrator", "changeme",
})


class Forbidden(FleetError):
    status = 403
    title = "Forbidden"


def check_username(username: str) -> str:
    """The user name if it follows the rules above; raises Invalid (key ``username``) otherwise."""
    if not USERNAME.fullmatch(username):
        raise Invalid(
            f"user name {username!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or a digit",
            key="username",
        )
    return username


def check_password(password: str, username: str, *, key: str = "password") -> None:
    """Raises Invalid (key ``key``) for a password that breaks the policy above."""
    if len(password) < PASSWORD_MIN:
        raise Invalid(f"the password is too short: use at least {PASSWORD_MIN} characters "
                      "(a few words make a strong one)", key=key)
    if len(password) > PASSWORD_MAX:
        raise Invalid(f"the password is too long: use at most {PASSWORD_MAX} characters", key=key)
    if password.lower() == username.lower():
        raise Invalid("the password must not be the user name: choose something else", key=key)
    if password.lower() in COMMON_PASSWORDS or len(set(password)) == 1:
        raise Invalid("this password is among the first ones any attacker tries: choose another", key=key)


def require_admin(actor: User, what: str) -> None:
    """Raises Forbidden unless ``actor`` is an admin; ``what`` says what was attempted."""
    if not actor.is_admin:
        raise Forbidden(f"only an admin can {what}: ask an admin of this botfleet")


async def create_user(
    session: AsyncSession, username: str, password: str, *, admin: bool, actor: User | None = None
) -> User:
    """Create a user (flushed, not committed). ``actor`` None means the CLI or first-run set-up.

    Raises:
        Invalid: the name or the password breaks the rules above.
        Conflict: the name is taken.
    """
    check_username(username)
    check_password(password, username)
    if await session.scalar(select(User).where(User.username == username)):
        raise Conflict(f"user {username!r} exists already: choose another name", key="username")
    user = User(username=username, password_hash=hash_password(password), is_admin=admin)
    session.add(user)
    await session.flush()
    await _record(session, "user.created", user, actor, is_admin=admin)
    return user


async def list_users(session: AsyncSession) -> list[User]:
    """Every user, by name (a botfleet has a handful)."""
    return list(await session.scalars(select(User).order_by(User.username)))


async def get_user(session: AsyncSession, user_id: str) -> User:
    """Raises NotFound for an unknown id."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id!r}: list them with GET /api/v1/users")
    return user


async def update_user(
    session: AsyncSession,
    actor: User,
    user_id: str,
    *,
    password: str | None = None,
    current_password: str | None = None,
    is_admin: bool | None = None,
    keep_session_hash: str | None = None,
) -> User:
    """Change a user's password and/or admin flag (flushed, not committed).

    Users change their own password with ``current_password``; admins change anyone's admin
    flag and set others' passwords without it. A new password ends the user's login sessions
    except the one whose token digest is ``keep_session_hash`` (the caller's own).

    Raises:
        Forbidden: a non-admin acting on someone else or on the admin flag.
        Invalid: a missing or wrong current password, a password breaking the policy, nothing
            to change.
        Conflict: demoting the last admin.
        NotFound: unknown user.
    """
    user = await get_user(session, user_id)
    own = user.id == actor.id
    if not own:
        require_admin(actor, "change another user")
    if password is None and is_admin is None:
        raise Invalid("nothing to change: send 'password' and/or 'is_admin'", key="password")
    if is_admin is not None and is_admin != user.is_admin:
        require_admin(actor, "change who is an admin")
        if not is_admin and await _admin_count(session) <= 1:
            raise Conflict(f"{user.username!r} is the last admin: make another user an admin first",
                           key="is_admin")
        user.is_admin = is_admin
    if password is not None:
        if own:
            if not current_password:
                raise Invalid("give your current password to set a new one", key="current_password")
            if not verify_password(user.password_hash, current_password):
                raise Invalid("the current password is wrong", key="current_password")
        check_password(password, user.username)
        user.password_hash = hash_password(password)
        ended = delete(ApiToken).where(ApiToken.user_id == user.id, ApiToken.kind == "session")
        if keep_session_hash is not None:
            ended = ended.where(ApiToken.token_hash != keep_session_hash)
        await session.execute(ended)
    await session.flush()
    await _record(session, "user.updated", user, actor, is_admin=user.is_admin,
                  password_changed=password is not None)
    return user


async def delete_user(session: AsyncSession, actor: User, user_id: str) -> User:
    """Delete a user with their sessions and API tokens (flushed, not committed); returns the
    deleted row (detached data still readable).

    Raises:
        Forbidden: the actor is not an admin.
        Conflict: deleting yourself or the last admin.
        NotFound: unknown user.
    """
    require_admin(actor, "delete users")
    user = await get_user(session, user_id)
    if user.id == actor.id:
        raise Conflict("you cannot delete your own account: another admin can", key="user_id")
    if user.is_admin and await _admin_count(session) <= 1:
        raise Conflict(f"{user.username!r} is the last admin: make another user an admin first", key="user_id")
    await session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    await session.delete(user)
    await session.flush()
    await _record(session, "user.deleted", user, actor)
    return user


async def _admin_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(User).where(User.is_admin)) or 0)


_RECORDED = "botfleet.recorded_events"


async def note_event(session: AsyncSession, kind: str, data: dict[str, object]) -> Event:
    """Record an event and remember it in the session for :func:`take_recorded`."""
    event = await record_event(session, kind=kind, data=data)
    session.info.setdefault(_RECORDED, []).append(event)
    return event


def take_recorded(session: AsyncSession) -> list[Event]:
    """The events recorded through this session since the last call, oldest first; publish
    them (:func:`botfleet.fleet.events.publish_events`) after the commit."""
    return session.info.pop(_RECORDED, [])


async def _record(session: AsyncSession, kind: str, user: User, actor: User | None, **data: object) -> Event:
    return await note_event(session, kind, {
        "user_id": user.id, "username": user.username, "by": actor.username if actor else None, **data,
    })
