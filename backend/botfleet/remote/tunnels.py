"""Reverse SSH tunnels for hosts that cannot reach the api (``connect_mode = "tunnel"``): the
api keeps the host's SSH connection (the one :class:`SSHPool` shares with every other
operation) with a remote port forward ``127.0.0.1:<tunnel_port>`` on the host -> this api
replica, so the host's agent dials a loopback port.

Ownership with N api replicas: one replica holds a host's tunnel at a time, the one holding
the Redis lock ``botfleet:tunnel:<host_id>`` (redis-py :class:`~redis.asyncio.lock.Lock`,
``LOCK_TTL`` seconds, renewed every ``LOCK_TTL / 3``). Every replica runs a
:class:`TunnelKeeper`; when the owner dies its lock expires and another replica takes the
tunnel over within ``LOCK_TTL`` plus one scan. A lost lock (Redis hiccup) closes the forward.
Reconnects back off from 0.5 s doubling to ``MAX_BACKOFF`` (1 s: a retry is one TCP connect,
and every second of it is added to how long a host with a mended link still looks offline).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncssh
import structlog
from redis.asyncio import Redis
from redis.exceptions import LockError, RedisError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from botfleet.db.models import Host
from botfleet.fleet.hosts import ssh_target
from botfleet.remote.pool import SSHPool
from botfleet.remote.ssh import RemoteError
from botfleet.settings import Settings
from botfleet.tasks import background

__all__ = ["LOCK_TTL", "MAX_BACKOFF", "TunnelKeeper", "remote_lifespan"]

log = structlog.get_logger(__name__)
LOCK_TTL = 15.0
MAX_BACKOFF = 1.0
SCAN_INTERVAL = 2.0


class TunnelKeeper:
    """Keeps the reverse tunnels this replica owns. ``forward_to`` is (host, port) of this
    api replica as seen from the controller."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings,
                 pool: SSHPool) -> None:
        self._sessionmaker = sessionmaker
        self._redis = redis
        self._settings = settings
        self._pool = pool
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.forward_to = ("127.0.0.1" if settings.api_host in ("0.0.0.0", "::", "") else settings.api_host,
                           settings.api_port)

    async def run(self) -> None:
        """Scan for tunnel hosts every ``SCAN_INTERVAL`` seconds until cancelled."""
        try:
            while True:
                try:
                    await self._scan()
                except Exception:
                    log.exception("tunnel scan failed")
                await asyncio.sleep(SCAN_INTERVAL)
        finally:
            for task in self._tasks.values():
                task.cancel()
            for task in self._tasks.values():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _scan(self) -> None:
        async with self._sessionmaker() as session:
            rows = (await session.scalars(select(Host).where(Host.connect_mode == "tunnel"))).all()
            wanted = {h.id: h for h in rows if h.host_key and h.address and h.agent_token_hash}
        for host_id, task in list(self._tasks.items()):
            if task.done() or host_id not in wanted:
                task.cancel()
                del self._tasks[host_id]
        for host_id, host in wanted.items():
            if host_id not in self._tasks:
                lock = self._redis.lock(f"botfleet:tunnel:{host_id}", timeout=LOCK_TTL, thread_local=False)
                if await lock.acquire(blocking=False):
                    self._tasks[host_id] = asyncio.create_task(self._hold(host, lock), name=f"tunnel:{host.name}")

    async def _hold(self, host: Host, lock: Any) -> None:
        name, host_id, port = host.name, host.id, host.tunnel_port
        backoff = 0.5
        try:
            while True:
                try:
                    target = ssh_target(self._settings, host)
                    conn = await self._pool.connection(host_id, target)
                    listener = await conn.forward_remote_port("127.0.0.1", port, *self.forward_to)
                    log.info("tunnel up", host=name, remote_port=port)
                    backoff = 0.5
                    await self._watch(conn, lock)
                    listener.close()
                    log.warning("tunnel down", host=name)
                except (RemoteError, OSError, asyncssh.Error) as exc:
                    log.warning("tunnel connect failed", host=name, error=str(exc), retry_in=backoff)
                    await self._renewing_sleep(lock, backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                async with self._sessionmaker() as session:
                    fresh = await session.get(Host, host_id)
                    if fresh is None or fresh.connect_mode != "tunnel":
                        return
                    host = fresh
                    port = host.tunnel_port
        except (LockError, RedisError) as exc:
            log.warning("tunnel lock lost; another replica may take it", host=name, error=str(exc))
        finally:
            with contextlib.suppress(LockError, RedisError):
                await lock.release()

    async def _renewing_sleep(self, lock: Any, seconds: float) -> None:
        await lock.reacquire()
        await asyncio.sleep(seconds)

    async def _watch(self, conn: asyncssh.SSHClientConnection, lock: Any) -> None:
        """Return when the connection closes; renew the lock meanwhile (raises LockError)."""
        closed = asyncio.ensure_future(conn.wait_closed())
        try:
            while not closed.done():
                await lock.reacquire()
                await asyncio.wait({closed}, timeout=LOCK_TTL / 3)
        finally:
            closed.cancel()


@contextlib.asynccontextmanager
async def remote_lifespan(app: Any) -> AsyncIterator[None]:
    """Litestar lifespan (after the one that opens SQL and Redis): the process's
    :class:`SSHPool` in ``app.state.ssh_pool`` and its :class:`TunnelKeeper`."""
    pool = app.state.get("ssh_pool") or SSHPool()
    app.state.ssh_pool = pool
    keeper = TunnelKeeper(app.state.sessionmaker, app.state.redis, app.state.settings, pool)
    try:
        async with background(keeper.run(), "tunnels"):
            yield
    finally:
        await pool.close()
