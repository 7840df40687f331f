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
    Create and use it on the agent's event loop.

    Fetches run in one background task, never in the command loop: a burst of
    :class:`~botfleet.protocol.CredentialsCommand` (one per instance created: creating 100
    instances queued 100 fetches, each with two fsyncs, and the agent was still working
    through them 0.5 s into the bulk start that followed) costs a fetch for the first and one
    more for all that came while it ran. Starts wait for :meth:`settled`, so a bot still
    reads a file written after the last command before its start."""

    def __init__(self, layout: StateLayout, settings: AgentSettings) -> None:
        self.layout = layout
        self.settings = settings
        self.path = layout.root / FILE_NAME
        self.version_path = layout.root / "api-keys.version"
        self._task: asyncio.Task[None] | None = None
        self._asked = 0  # commands taken that asked for a fetch
        # Set while no fetch is wanted or in flight: idle (no task), or the task waits to
        # retry after a failed fetch.
        self._settled = asyncio.Event()
        self._settled.set()

    @property
    def version(self) -> str | None:
        """The digest of what the file holds now (None before the first write)."""
        try:
            return self.version_path.read_text().strip() or None
        except OSError:
            return None

    async def apply(self, command: CredentialsCommand) -> bool:
        """Take a command: unless the file has ``command.version`` already (and no fetch is
        under way), make sure a fetch starts after this call (one that is running now may have
        read the older set). Returns at once, True when a fetch is wanted; :meth:`settled`
        waits for it. A failed fetch is retried (1 s doubling to 30 s) until one succeeds or a
        newer command comes (which tries again at once)."""
        if command.version == self.version and self._task is None:
            return False
        self._asked += 1
        if self._settled.is_set():  # no task, or one waiting to retry: (re)start it now
            if self._task is not None:
                self._task.cancel()
            self._settled.clear()
            self._task = asyncio.get_running_loop().create_task(self._fetch_until_current(),
                                                                name="credentials")
        return True

    async def settled(self) -> None:
        """Return once no fetch is wanted or in flight: the file holds what the last command
        asked for, or the last attempt failed (it is retried in the background; a start does
        not wait for the api to come back)."""
        await self._settled.wait()

    async def _fetch_until_current(self) -> None:
        delay = RETRY_INITIAL
        try:
            while True:
                asked = self._asked
                try:
                    await self.refresh()
                except (httpx.HTTPError, OSError, ValueError) as exc:
                    log.warning("credentials not fetched; retrying", error=str(exc), retry_in=delay)
                    self._settled.set()
                    await asyncio.sleep(delay)
                    self._settled.clear()
                    delay = min(RETRY_MAX, delay * 2)
                    continue
                if self._asked == asked:  # no command came during the fetch
                    return
        finally:
            if self._task is asyncio.current_task():  # not replaced or closed meanwhile
                self._task = None
                self._settled.set()

    async def refresh(self) -> bool:
        """Fetch the host's accounts and write them. Raises httpx.HTTPError (api
        unreachable), ValueError (refused or unreadable answer), OSError (disk)."""
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
        """Stop a fetch in flight or waiting to retry."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._settled.set()
