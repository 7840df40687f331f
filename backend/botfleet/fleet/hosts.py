"""Hosts: create, update, delete, and pin their SSH host keys (the logic behind
``/api/v1/hosts``). ``local`` always exists and cannot be deleted.

SSH private keys and passphrases are stored as Fernet tokens (:func:`load_fernet`) and never
returned. A host's server key is pinned only by :func:`accept_host_key`, which re-scans the
server and stores the key only when it has the fingerprint the user confirmed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import asyncssh
from redis.asyncio import Redis
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from botfleet.db.models import Host, Instance
from botfleet.fleet.credentials import load_fernet
from botfleet.fleet.errors import Conflict, FleetError, Invalid, NotFound
from botfleet.fleet.events import publish_event, record_event
from botfleet.remote.ssh import RemoteError, SSHTarget, scan
from botfleet.settings import Settings

__all__ = [
    "CONNECT_MODES",
    "HostDraft",
    "HostUnreachable",
    "accept_host_key",
    "create_host",
    "delete_host",
    "emit",
    "get_host",
    "scan_host",
    "ssh_target",
    "update_host",
]

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
CONNECT_MODES = ("direct", "tunnel")


class HostUnreachable(FleetError):
    """An SSH operation on a host failed (unreachable, refused, a remote step failed)."""

    status = 502
    title = "Host unreachable"


@dataclass
class HostDraft:
    """A VPS as the user describes it. ``ssh_key`` is a private key's text (stored encrypted)
    or ``ssh_key_path`` a key file on the controller; ``ssh_passphrase`` unlocks either."""

    name: str
    address: str
    username: str = "root"
    port: int = 22
    labels: dict[str, str] = field(default_factory=dict)
    ssh_key: str | None = None
    ssh_key_path: str | None = None
    ssh_passphrase: str | None = None
    connect_mode: str = "direct"
    tunnel_port: int = 18750
    base_dir: str = "botfleet"


def _check(name: str, address: str, port: int, username: str, mode: str, tunnel_port: int, base_dir: str) -> None:
    if not NAME.match(name):
        raise Invalid(f"name {name!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', "
                      "starting with a letter or digit", key="name")
    if not address or any(c.isspace() for c in address) or address.startswith("-"):
        raise Invalid(f"address {address!r} is not a host name or IP address", key="address")
    if not 1 <= port <= 65535:
        raise Invalid(f"port {port} is outside 1-65535", key="port")
    if not username or username.startswith("-") or any(c.isspace() for c in username):
        raise Invalid(f"user {username!r} is not a login name", key="username")
    if mode not in CONNECT_MODES:
        raise Invalid(f"connect_mode {mode!r}: use 'direct' (the agent reaches the api's public URL) "
                      "or 'tunnel' (reverse SSH tunnel)", key="connect_mode")
    if not 1024 <= tunnel_port <= 65535:
        raise Invalid(f"tunnel_port {tunnel_port} is outside 1024-65535", key="tunnel_port")
    path = PurePosixPath(base_dir)
    if not base_dir or ".." in path.parts or str(path) in ("/", ".") or "\0" in base_dir or "\n" in base_dir:
        raise Invalid(f"base_dir {base_dir!r} must be a directory of its own (no '..', not / or the home)",
                      key="base_dir")


def _encrypt(settings: Settings, text: str | None) -> str | None:
    if not text:
        return None
    return load_fernet(settings.secret_key, settings.home).encrypt(text.encode()).decode()


def _decrypt(settings: Settings, token: str | None) -> str | None:
    if not token:
        return None
    return load_fernet(settings.secret_key, settings.home).decrypt(token.encode()).decode()


def _check_key(text: str | None, passphrase: str | None) -> None:
    if not text:
        return
    try:
        asyncssh.import_private_key(text, passphrase)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise Invalid(f"ssh_key is not a private key this passphrase opens: {exc}", key="ssh_key") from exc


async def get_host(session: AsyncSession, name_or_id: str) -> Host:
    """Raises NotFound."""
    host = await session.scalar(select(Host).where(or_(Host.id == name_or_id, Host.name == name_or_id)))
    if host is None:
        raise NotFound(f"no host {name_or_id!r}")
    return host


async def emit(session: AsyncSession, redis: Redis, settings: Settings, host: Host, kind: str,
               data: dict[str, Any]) -> None:
    """Record, commit and publish one host event (``host.*``)."""
    event = await record_event(session, kind=kind, host_id=host.id, data={"host": host.name, **data})
    await session.commit()
    await publish_event(redis, event, maxlen=settings.events_stream_maxlen)


async def create_host(session: AsyncSession, redis: Redis, settings: Settings, draft: HostDraft) -> Host:
    """Add a VPS (status ``new`` until provisioned).

    Raises:
        Invalid: bad name, address, port, user, mode, base_dir or key.
        Conflict: the name is taken.
    """
    _check(draft.name, draft.address, draft.port, draft.username, draft.connect_mode, draft.tunnel_port,
           draft.base_dir)
    if not draft.ssh_key and not draft.ssh_key_path:
        raise Invalid("give an SSH private key (ssh_key) or a key file on the controller (ssh_key_path)",
                      key="ssh_key")
    _check_key(draft.ssh_key, draft.ssh_passphrase)
    if await session.scalar(select(Host.id).where(Host.name == draft.name)):
        raise Conflict(f"a host named {draft.name!r} exists already: pick another name", key="name")
    host = Host(
        name=draft.name, address=draft.address, port=draft.port, username=draft.username,
        labels=dict(draft.labels), status="new", connect_mode=draft.connect_mode,
        tunnel_port=draft.tunnel_port, base_dir=draft.base_dir, ssh_key_path=draft.ssh_key_path,
        ssh_key_encrypted=_encrypt(settings, draft.ssh_key),
        ssh_passphrase_encrypted=_encrypt(settings, draft.ssh_passphrase),
    )
    session.add(host)
    await session.flush()
    await emit(session, redis, settings, host, "host.created", {"address": host.address})
    return host


#: Fields :func:`update_host` takes.
UPDATABLE = ("address", "port", "username", "labels", "ssh_key", "ssh_key_path", "ssh_passphrase",
             "connect_mode", "tunnel_port", "base_dir")


async def update_host(session: AsyncSession, redis: Redis, settings: Settings, host: Host,
                      changes: dict[str, Any]) -> Host:
    """Change a VPS. A new address or port forgets the pinned host key (scan and accept
    again). Raises Invalid (bad value, or ``local``'s SSH fields)."""
    unknown = set(changes) - set(UPDATABLE)
    if unknown:
        raise Invalid(f"cannot change {sorted(unknown)}; allowed: {', '.join(UPDATABLE)}", key=min(unknown))
    if host.name == "local" and set(changes) - {"labels"}:
        raise Invalid("the local host has no SSH settings; only its labels can change", key="name")
    new = {k: changes.get(k, getattr(host, k, None)) for k in
           ("address", "port", "username", "connect_mode", "tunnel_port", "base_dir")}
    _check(host.name, new["address"] or "", new["port"], new["username"] or "", new["connect_mode"],
           new["tunnel_port"], new["base_dir"])
    if "ssh_key" in changes or "ssh_passphrase" in changes:
        key = changes.get("ssh_key") or _decrypt(settings, host.ssh_key_encrypted)
        passphrase = changes.get("ssh_passphrase", _decrypt(settings, host.ssh_passphrase_encrypted))
        _check_key(key, passphrase)
        host.ssh_key_encrypted = _encrypt(settings, key)
        host.ssh_passphrase_encrypted = _encrypt(settings, passphrase)
    if ("address" in changes and changes["address"] != host.address) or (
            "port" in changes and changes["port"] != host.port):
        host.host_key = host.host_key_fingerprint = None
    for k in ("address", "port", "username", "connect_mode", "tunnel_port", "base_dir", "ssh_key_path"):
        if k in changes:
            setattr(host, k, changes[k])
    if "labels" in changes:
        host.labels = dict(changes["labels"])
    await emit(session, redis, settings, host, "host.updated", {"changed": sorted(changes)})
    return host


async def delete_host(session: AsyncSession, redis: Redis, settings: Settings, host: Host) -> None:
    """Raises Conflict for ``local`` or a host that still has instances."""
    if host.name == "local":
        raise Conflict("the local host always exists and cannot be deleted")
    count = len((await session.scalars(select(Instance.id).where(Instance.host_id == host.id))).all())
    if count:
        raise Conflict(f"host {host.name!r} still has {count} instance(s): move or delete them first")
    await emit(session, redis, settings, host, "host.deleted", {})
    await session.delete(host)
    await session.commit()


def ssh_target(settings: Settings, host: Host) -> SSHTarget:
    """How to log in to ``host`` (secrets decrypted). Raises Invalid for ``local`` or a host
    without address or user."""
    if host.name == "local" or not host.address or not host.username:
        raise Invalid(f"host {host.name!r} is not reached over SSH", key="host")
    return SSHTarget(
        address=host.address, port=host.port, username=host.username,
        client_key=_decrypt(settings, host.ssh_key_encrypted), key_path=host.ssh_key_path,
        passphrase=_decrypt(settings, host.ssh_passphrase_encrypted), host_key=host.host_key,
    )


async def scan_host(host: Host) -> dict[str, Any]:
    """The server's key as offered now, not trusted: ``{"fingerprint", "key_type", "accepted",
    "matches"}`` (``matches`` compares with the pinned key, None when none is pinned).

    Raises HostUnreachable."""
    if not host.address:
        raise Invalid(f"host {host.name!r} has no address to scan", key="address")
    try:
        key, fingerprint = await scan(host.address, host.port)
    except RemoteError as exc:
        raise HostUnreachable(exc.message) from exc
    return {
        "fingerprint": fingerprint,
        "key_type": key.split(" ", 1)[0],
        "accepted": host.host_key_fingerprint,
        "matches": None if host.host_key is None else key.split()[:2] == host.host_key.split()[:2],
    }


async def accept_host_key(session: AsyncSession, redis: Redis, settings: Settings, host: Host,
                          fingerprint: str) -> Host:
    """Pin the key the server offers now, if it is the one with ``fingerprint`` (``SHA256:...``,
    as :func:`scan_host` showed it).

    Raises:
        Conflict: the server now offers a different key (nothing is stored).
        HostUnreachable: no SSH server answers.
    """
    if not host.address:
        raise Invalid(f"host {host.name!r} has no address", key="address")
    try:
        key, offered = await scan(host.address, host.port)
    except RemoteError as exc:
        raise HostUnreachable(exc.message) from exc
    if offered != fingerprint.strip():
        raise Conflict(f"{host.address}:{host.port} offers the key {offered}, not {fingerprint}: "
                       "nothing was accepted; scan again and compare with the server's own fingerprint",
                       key="fingerprint")
    old = host.host_key_fingerprint
    host.host_key, host.host_key_fingerprint = " ".join(key.split()[:2]), offered
    await emit(session, redis, settings, host, "host.key_accepted", {"fingerprint": offered, "previous": old})
    return host
