"""passivbot accounts: the central, encrypted store of ``api-keys.json`` entries and their
delivery to hosts (the business logic behind ``/api/v1/accounts`` and
``GET /api/v1/agent/credentials``).

An account is one top-level entry of passivbot's ``api-keys.json`` (format:
../shared/passivbot/api-keys.json.example, passivbot v7.12.0 / v8.1.0), named by the
``live.user`` of the configs that trade with it. Its secret fields are stored as one Fernet
token (:func:`botfleet.fleet.credentials.load_fernet`) and never returned by the API.

Delivery (DESIGN.md invariant 5: no secret in Redis or in events): whenever the set of
accounts a host needs may have changed, :func:`notify_hosts` queues a
:class:`~botfleet.protocol.CredentialsCommand` carrying only a digest; the agent then fetches
:func:`host_credentials` over its authenticated link and writes ``api-keys.json`` (0600).
A host gets only the accounts named by the current configs of its instances.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.fernet import InvalidToken
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from botfleet.db.models import Account, ConfigVersion, Host, Instance
from botfleet.fleet import streams
from botfleet.fleet.credentials import load_fernet
from botfleet.fleet.errors import Conflict, FleetError, Invalid, NotFound
from botfleet.fleet.events import publish_event, record_event
from botfleet.profiles import ConfigError, get_profile
from botfleet.protocol import CredentialsCommand, HostCredentials
from botfleet.settings import Settings

__all__ = [
    "EXCHANGES",
    "SECRET_FIELDS",
    "AccountKeys",
    "AccountView",
    "account_of",
    "create_account",
    "delete_account",
    "get_account",
    "host_credentials",
    "hosts_using",
    "list_accounts",
    "missing_accounts",
    "notify_hosts",
    "rotate_account",
]

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Fields of an api-keys.json entry besides ``exchange`` (api-keys.json.example; passivbot
#: v7 ``procedures.load_user_info`` reads exactly these).
SECRET_FIELDS = ("key", "secret", "passphrase", "wallet_address", "private_key", "is_vault")
_KEY_SECRET = (("key", "secret"), ())
_WITH_PASSPHRASE = (("key", "secret", "passphrase"), ())
_WALLET = (("wallet_address", "private_key"), ())
#: exchange -> (required fields, optional fields), from api-keys.json.example.
EXCHANGES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "binance": _KEY_SECRET,
    "bybit": _KEY_SECRET,
    "bitunix": _KEY_SECRET,
    "gateio": _KEY_SECRET,
    "defx": _KEY_SECRET,
    "bitget": _WITH_PASSPHRASE,
    "okx": _WITH_PASSPHRASE,
    "kucoin": _WITH_PASSPHRASE,
    "weex": _WITH_PASSPHRASE,
    "hyperliquid": (("wallet_address", "private_key"), ("is_vault",)),
    "paradex": _WALLET,
}


@dataclass
class AccountKeys:
    """The secret part of an account as a user gives it (create or rotate)."""

    key: str | None = None
    secret: str | None = None
    passphrase: str | None = None
    wallet_address: str | None = None
    private_key: str | None = None
    is_vault: bool | None = None


@dataclass
class AccountView:
    """What the API shows of an account: never a secret. ``hint`` is the last 4 characters
    of the key (or wallet address); ``fields`` the names of the stored fields; ``used_by``
    the names of the instances whose current config names it."""

    id: str
    name: str
    exchange: str
    hint: str
    fields: list[str]
    used_by: list[str]
    created_at: datetime
    updated_at: datetime


def _entry(exchange: str, keys: AccountKeys) -> dict[str, str | bool]:
    """The api-keys.json entry for ``exchange``. Raises Invalid naming the field."""
    if exchange not in EXCHANGES:
        raise Invalid(f"exchange {exchange!r} has no api-keys.json format known to botfleet: use one of "
                      f"{', '.join(sorted(EXCHANGES))}", key="exchange")
    required, optional = EXCHANGES[exchange]
    given = {f: getattr(keys, f) for f in SECRET_FIELDS if getattr(keys, f) not in (None, "")}
    for name in required:
        value = given.get(name)
        if not isinstance(value, str) or not value.strip():
            raise Invalid(f"{exchange} needs {', '.join(required)}: {name} is missing", key=name)
    for name in given:
        if name not in required and name not in optional:
            raise Invalid(f"{exchange} accounts take {', '.join(required + optional)}, not {name}: leave it out",
                          key=name)
    entry: dict[str, str | bool] = {"exchange": exchange}
    for name, value in given.items():
        entry[name] = value.strip() if isinstance(value, str) else bool(value)
    return entry


def _encrypt(settings: Settings, entry: dict[str, str | bool]) -> str:
    return load_fernet(settings.secret_key, settings.home).encrypt(json.dumps(entry).encode()).decode()


def _decrypt(settings: Settings, account: Account) -> dict[str, str | bool]:
    try:
        data = load_fernet(settings.secret_key, settings.home).decrypt(account.secret.encode())
    except InvalidToken as exc:
        raise FleetError(f"account {account.name!r} cannot be decrypted with this BOTFLEET_SECRET_KEY "
                         "(was the key changed?): rotate its keys to store them again") from exc
    return json.loads(data)


def _hint(entry: dict[str, str | bool]) -> str:
    value = entry.get("key") or entry.get("wallet_address") or ""
    return f"…{value[-4:]}" if isinstance(value, str) and len(value) >= 8 else "…"


def account_of(document: dict[str, Any]) -> str | None:
    """The passivbot account a config names (``live.user``, v7 and v8 alike), or None; stored
    as ``ConfigVersion.account``."""
    live = document.get("live")
    user = live.get("user") if isinstance(live, dict) else None
    return user if isinstance(user, str) and user else None


async def _instance_users(session: AsyncSession, host_ids: list[str] | None = None) -> list[tuple[Any, str]]:
    """(instance, live.user of its current config) for every instance (on ``host_ids``)
    whose profile reads api-keys.json and whose config names an account. The instance is a
    row of the columns needed here (id, name, host_id, profile, simulated, argv), not an
    entity: this runs at every create and start, over every instance of a host."""
    query = select(Instance.id, Instance.name, Instance.host_id, Instance.profile, Instance.simulated,
                   Instance.argv, ConfigVersion.account).join(
        ConfigVersion,
        (ConfigVersion.instance_id == Instance.id) & (ConfigVersion.version == Instance.config_version),
    ).where(ConfigVersion.account.is_not(None), Instance.profile != "custom")
    if host_ids is not None:
        query = query.where(Instance.host_id.in_(host_ids))
    return [(row, row.account) for row in (await session.execute(query)).all()]


async def _view(session: AsyncSession, settings: Settings, account: Account,
                users: list[tuple[Instance, str]] | None = None) -> AccountView:
    if users is None:
        users = await _instance_users(session)
    try:
        entry = _decrypt(settings, account)
    except FleetError:  # listed all the same, so it can be rotated or deleted
        entry = {"exchange": account.exchange, "key": "undecryptable: rotate its keys"}
    return AccountView(
        id=account.id, name=account.name, exchange=account.exchange, hint=_hint(entry),
        fields=[f for f in SECRET_FIELDS if f in entry],
        used_by=sorted(i.name for i, user in users if user == account.name),
        created_at=account.created_at, updated_at=account.updated_at,
    )


async def _account(session: AsyncSession, name_or_id: str) -> Account:
    account = await session.scalar(
        select(Account).where((Account.id == name_or_id) | (Account.name == name_or_id))
    )
    if account is None:
        raise NotFound(f"no account {name_or_id!r}: add it under Settings > Accounts")
    return account


async def list_accounts(session: AsyncSession, settings: Settings) -> list[AccountView]:
    """Every account by name."""
    users = await _instance_users(session)
    rows = (await session.scalars(select(Account).order_by(Account.name))).all()
    return [await _view(session, settings, a, users) for a in rows]


async def get_account(session: AsyncSession, settings: Settings, name_or_id: str) -> AccountView:
    """One account. Raises NotFound."""
    return await _view(session, settings, await _account(session, name_or_id))


async def hosts_using(session: AsyncSession, name: str) -> list[str]:
    """Ids of the hosts with an instance whose current config names account ``name``."""
    return sorted({i.host_id for i, user in await _instance_users(session) if user == name})


async def create_account(session: AsyncSession, redis: Redis, settings: Settings,
                         name: str, exchange: str, keys: AccountKeys) -> AccountView:
    """Store a new account (encrypted) and deliver it to hosts whose instances already name it.

    Raises:
        Invalid: bad name, unknown exchange, missing or foreign fields (``key`` names which).
        Conflict: the name is taken.
    """
    if not NAME.match(name):
        raise Invalid(f"account name {name!r}: use letters, digits, '.', '_' or '-' (max 64), "
                      "as in live.user, e.g. binance_01", key="name")
    entry = _entry(exchange, keys)
    if await session.scalar(select(Account.id).where(Account.name == name)):
        raise Conflict(f"an account named {name!r} exists already: rotate its keys instead", key="name")
    account = Account(name=name, exchange=exchange, secret=_encrypt(settings, entry))
    session.add(account)
    await session.flush()
    return await _changed(session, redis, settings, account, "account.created")


async def rotate_account(session: AsyncSession, redis: Redis, settings: Settings,
                         name_or_id: str, keys: AccountKeys) -> AccountView:
    """Replace an account's secret fields (same exchange) and update the hosts that use it.
    Running bots read api-keys.json at start: restart them to use the new keys.

    Raises: NotFound; Invalid as for :func:`create_account`.
    """
    account = await _account(session, name_or_id)
    account.secret = _encrypt(settings, _entry(account.exchange, keys))
    return await _changed(session, redis, settings, account, "account.rotated")


async def _changed(session: AsyncSession, redis: Redis, settings: Settings, account: Account,
                   kind: str) -> AccountView:
    event = await record_event(session, kind=kind, data={"name": account.name, "exchange": account.exchange})
    await session.commit()
    await session.refresh(account)
    await publish_event(redis, event, maxlen=settings.events_stream_maxlen)
    await notify_hosts(session, redis, settings, await hosts_using(session, account.name))
    return await _view(session, settings, account)


async def delete_account(session: AsyncSession, redis: Redis, settings: Settings, name_or_id: str) -> None:
    """Delete an account no instance uses.

    Raises:
        NotFound: no such account.
        Conflict: instances name it in their config (listed in the message).
    """
    account = await _account(session, name_or_id)
    users = sorted(i.name for i, user in await _instance_users(session) if user == account.name)
    if users:
        raise Conflict(f"account {account.name!r} is used by instance(s) {', '.join(users)}: change their "
                       "config.live.user or delete them first", key="name")
    event = await record_event(session, kind="account.deleted",
                               data={"name": account.name, "exchange": account.exchange})
    await session.delete(account)
    await session.commit()
    await publish_event(redis, event, maxlen=settings.events_stream_maxlen)


async def missing_accounts(session: AsyncSession, instances: list[Instance],
                           accounts: dict[str, str | None]) -> dict[str, ConfigError]:
    """Before a start, by instance id: why it cannot run for want of an account. Every
    non-simulated passivbot instance's ``live.user`` must name a stored account (the
    stand-in trades nowhere and reads no keys). ``accounts``: by instance id, the account
    its current config names (``ConfigVersion.account``). Empty when all have theirs."""
    wanted: dict[str, list[str]] = {}
    for instance in instances:
        if instance.simulated or instance.profile == "custom":
            continue
        user = accounts.get(instance.id)
        if user:
            wanted.setdefault(user, []).append(instance.id)
    if not wanted:
        return {}
    have = set((await session.scalars(select(Account.name).where(Account.name.in_(list(wanted))))).all())
    return {
        instance_id: ConfigError(
            "live.user", f'"{user}" has no entry in api-keys: add it under Settings > Accounts')
        for user, ids in wanted.items() if user not in have for instance_id in ids
    }


def _cwd(instance: Any, settings: Settings) -> str | None:
    """The bot's working dir as its spec gives it (None: the instance dir). ``instance``: an
    Instance or a row with its profile, simulated and argv."""
    try:
        command = get_profile(instance.profile).live_command(
            config_path="config.json", simulated=instance.simulated, settings=settings, argv=instance.argv)
    except (ValueError, LookupError):
        return None
    return command.cwd


async def _host_set(session: AsyncSession, settings: Settings, host_id: str
                    ) -> tuple[list[Account], list[str], list[str]]:
    users = await _instance_users(session, [host_id])
    names = sorted({user for _, user in users})
    accounts = list((await session.scalars(
        select(Account).where(Account.name.in_(names)).order_by(Account.name))).all()) if names else []
    instances, dirs = [], set()
    cwds: dict[tuple[str, bool, str], str | None] = {}  # most instances share a profile and argv
    for instance, _ in users:
        key = (instance.profile, instance.simulated, json.dumps(instance.argv))
        if key not in cwds:
            cwds[key] = _cwd(instance, settings)
        cwd = cwds[key]
        if cwd is None:
            instances.append(instance.id)
        elif "{" not in cwd:  # a placeholder dir is botfleet's own stand-in: it reads no keys
            dirs.add(cwd)
    return accounts, sorted(instances), sorted(dirs)


def _version(accounts: list[Account], instances: list[str], dirs: list[str]) -> str:
    """Digest of a host's credential set, from ciphertexts (no secret is needed or leaked)."""
    doc = {"accounts": [[a.name, hashlib.sha256(a.secret.encode()).hexdigest()] for a in accounts],
           "instances": instances, "dirs": dirs}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


async def host_credentials(session: AsyncSession, settings: Settings, host: Host) -> HostCredentials:
    """The api-keys.json content for ``host``: only the accounts its instances name."""
    accounts, instances, dirs = await _host_set(session, settings, host.id)
    return HostCredentials(
        version=_version(accounts, instances, dirs),
        accounts={a.name: _decrypt(settings, a) for a in accounts},
        instances=instances, dirs=dirs,
    )


async def notify_hosts(session: AsyncSession, redis: Redis, settings: Settings, host_ids: list[str]) -> None:
    """Queue a :class:`CredentialsCommand` (a digest, no secret) for each host in ``host_ids``.
    Call it after committing a change that may alter what a host needs (an account stored,
    rotated or deleted; an instance created, moved, deleted, reconfigured or started; an
    announce). The agent fetches only when the digest differs from its file's."""
    for host_id in sorted(set(host_ids)):
        command = CredentialsCommand(version=_version(*await _host_set(session, settings, host_id)))
        await redis.xadd(streams.agent_commands(host_id), {"data": command.model_dump_json()},
                         maxlen=10_000, approximate=True)
