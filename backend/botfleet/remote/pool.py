"""One SSH connection per host, shared by every operation of this process (DESIGN.md: reuse,
keep-alive), with at most ``max_channels`` sessions open on it at once (OpenSSH's
``MaxSessions`` defaults to 10 per connection; the rest wait, they never fail)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncssh

from botfleet.remote.ssh import SSHTarget, connect

__all__ = ["SSHPool"]


@dataclass
class _Entry:
    target: SSHTarget
    conn: asyncssh.SSHClientConnection | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    channels: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(8))


class SSHPool:
    """Connections by host id. A connection is re-opened when it closed or when the host's
    target changed (new key, address or pinned host key). ``keepalive`` seconds between SSH
    keep-alives; 3 unanswered ones close the connection."""

    def __init__(self, *, max_channels: int = 8, keepalive: float = 10.0) -> None:
        self._entries: dict[str, _Entry] = {}
        self._max_channels = max_channels
        self._keepalive = keepalive

    async def connection(self, host_id: str, target: SSHTarget) -> asyncssh.SSHClientConnection:
        """The open connection for ``host_id`` (connecting when needed). Raises what
        :func:`botfleet.remote.ssh.connect` raises."""
        entry = self._entries.get(host_id)
        if entry is None or entry.target != target:
            if entry is not None and entry.conn is not None:
                entry.conn.close()
            entry = _Entry(target=target, channels=asyncio.Semaphore(self._max_channels))
            self._entries[host_id] = entry
        async with entry.lock:
            conn = entry.conn
            if conn is None or conn.is_closed():
                conn = await connect(
                    target, keepalive_interval=self._keepalive, keepalive_count_max=3
                )
                entry.conn = conn
            return conn

    @contextlib.asynccontextmanager
    async def channel(self, host_id: str, target: SSHTarget) -> AsyncIterator[asyncssh.SSHClientConnection]:
        """The host's connection with one of its channel slots held for the block."""
        conn = await self.connection(host_id, target)
        async with self._entries[host_id].channels:
            yield conn

    def drop(self, host_id: str) -> None:
        """Close and forget the host's connection (after a host key change or deletion)."""
        entry = self._entries.pop(host_id, None)
        if entry is not None and entry.conn is not None:
            entry.conn.close()

    async def close(self) -> None:
        """Close every connection."""
        entries, self._entries = list(self._entries.values()), {}
        for entry in entries:
            if entry.conn is not None:
                entry.conn.close()
                with contextlib.suppress(Exception):
                    await entry.conn.wait_closed()
