"""The host's passivbot ``api-keys.json``, kept by the agent.

The api never puts a secret on the command stream (it sits in Redis): a
:class:`~botfleet.protocol.CredentialsCommand` says only that the set changed (a digest), and
the agent fetches ``GET /api/v1/agent/credentials`` with its host token
(:class:`~botfleet.protocol.HostCredentials`: only the accounts this host's instances use).

Where passivbot reads it: ``api-keys.json`` in its working directory (v7.12.0 and v8.1.0:
``load_user_info(user, api_keys_path="api-keys.json")``; no config key moves it). So:

- ``<state_dir>/api-keys.json``: the host's file, mode 0600, written atomically (a temporary
  file created 0600, fsynced, then ``os.replace``), beside ``api-keys.version`` (its digest).
- ``<state_dir>/instances/<id>/api-keys.json``: a symlink to it for every instance that runs
  in its instance dir (passivbot v8; links of instances no longer listed are removed).
- ``<dir>/api-keys.json`` for the other working dirs the api lists (a passivbot v7 checkout,
  ``BOTFLEET_PASSIVBOT_V7_ROOT``): the same symlink, made only where no file is, or where one
  made by botfleet is; a file of the user's own there is left alone (a warning says so).

Bots read the file at start: a rotated key reaches a running bot at its next restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path

import httpx
import structlog

from botfleet.agent.client import api_client
from botfleet.agent.layout import SpecError, StateLayout
from botfleet.protocol import CredentialsCommand, HostCredentials
from botfleet.settings import AgentSettings

__all__ = ["FILE_NAME", "Credentials", "write_private"]

log = structlog.get_logger(__name__)

FILE_NAME = "api-keys.json"
PATH = "/api/v1/agent/credentials"
RETRY_INITIAL, RETRY_MAX = 1.0, 30.0  # seconds between failed fetches (doubling)
FETCH_TIMEOUT = 10.0  # seconds


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600 from the first byte: a temporary
    file created 0600 (``O_EXCL``, chmod against a permissive umask), fsynced, renamed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _link(link: Path, target: Path, *, owned: bool) -> None:
    """Point ``link`` at ``target`` (atomically). ``owned``: the dir is the agent's, so a file
    there may be replaced; else only a missing one is made."""
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return
    if not owned and (link.exists() or link.is_symlink()):
        log.warning("api-keys.json left alone: it is not botfleet's; bots running in this dir read "
                    "that file, not the accounts stored in botfleet", path=str(link))
        return
    tmp = link.with_name(f".{link.name}.{os.getpid()}.link")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


class Credentials:
    """Keeps ``api-keys.json`` of this host in step with the api (see the module docstring).
    Create and use it on the agent's event loop."""

    def __init__(self, layout: StateLayout, settings: AgentSettings) -> None:
        self.layout = layout
        self.settings = settings
        self.path = layout.root / FILE_NAME
        self.version_path = layout.root / "api-keys.version"
        self._retry: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def version(self) -> str | None:
        """The digest of what the file holds now (None before the first write)."""
        try:
            return self.version_path.read_text().strip() or None
        except OSError:
            return None

    async def apply(self, command: CredentialsCommand) -> bool:
        """Fetch and write the host's accounts unless the file has ``command.version``
        already. A failed fetch is retried in the background (1 s doubling to 30 s) until one
        succeeds or a newer command comes. Returns True when the file was rewritten."""
        if command.version == self.version:
            return False
        self.close()
        try:
            return await self.refresh()
        except (httpx.HTTPError, OSError, ValueError) as exc:
            log.warning("credentials not fetched; retrying", error=str(exc), retry_in=RETRY_INITIAL)
            self._retry = asyncio.get_running_loop().create_task(self._retry_loop(), name="credentials")
            return False

    async def _retry_loop(self) -> None:
        delay = RETRY_INITIAL
        while True:
            await asyncio.sleep(delay)
            try:
                await self.refresh()
                return
            except (httpx.HTTPError, OSError, ValueError) as exc:
                delay = min(RETRY_MAX, delay * 2)
                log.warning("credentials not fetched; retrying", error=str(exc), retry_in=delay)

    async def refresh(self) -> bool:
        """Fetch the host's accounts and write them. Raises httpx.HTTPError (api
        unreachable), ValueError (refused or unreadable answer), OSError (disk)."""
        async with self._lock:
            async with api_client(self.settings, timeout=FETCH_TIMEOUT) as client:
                response = await client.get(PATH)
            if response.status_code != 200:
                raise ValueError(f"GET {PATH} answered {response.status_code}: {response.text[:300]}")
            self.write(HostCredentials.model_validate_json(response.content))
            return True

    def write(self, creds: HostCredentials) -> None:
        """Write ``creds`` (file 0600, then the links, then the version)."""
        self.layout.root.mkdir(parents=True, exist_ok=True)
        write_private(self.path, json.dumps(creds.accounts, indent=2, sort_keys=True).encode())
        listed = set()
        for instance_id in creds.instances:
            try:
                paths = self.layout.instance(instance_id)
            except SpecError as exc:
                log.error("credentials link refused", error=str(exc))
                continue
            paths.dir.mkdir(parents=True, exist_ok=True)
            _link(paths.dir / FILE_NAME, self.path, owned=True)
            listed.add(instance_id)
        self._unlink_others(listed)
        for directory in creds.dirs:
            d = Path(directory)
            if d.is_absolute() and d.is_dir():
                _link(d / FILE_NAME, self.path, owned=False)
            else:
                log.warning("bot working dir missing on this host; api-keys.json not linked there", dir=directory)
        write_private(self.version_path, creds.version.encode())
        log.info("api-keys.json written", accounts=len(creds.accounts), instances=len(listed),
                 version=creds.version)

    def _unlink_others(self, listed: set[str]) -> None:
        if not self.layout.instances_dir.is_dir():
            return
        for d in self.layout.instances_dir.iterdir():
            link = d / FILE_NAME
            if d.name not in listed and link.is_symlink() and Path(os.readlink(link)) == self.path:
                link.unlink()

    def close(self) -> None:
        """Stop a pending retry."""
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
