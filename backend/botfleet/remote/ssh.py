"""SSH to a host with its key pinned (DESIGN.md invariant 5), and commands without a shell
seeing user data (invariant 4).

- :func:`scan` reads a server's host key *without trusting it* (the user accepts it).
- :func:`connect` trusts only the stored key: ``known_hosts`` is built from it with
  ``asyncssh.import_known_hosts`` (never ``known_hosts=None``, which turns checking off). A
  different key fails with :class:`HostKeyMismatch`.
- :func:`command` joins argv words with ``shlex.quote``; :func:`script` joins such commands
  with ``;``/``&&`` for the few places that need a shell sequence.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

import asyncssh

__all__ = [
    "HostKeyMismatch",
    "HostKeyNotAccepted",
    "RemoteError",
    "SSHTarget",
    "command",
    "connect",
    "run",
    "scan",
    "script",
]

CONNECT_TIMEOUT = 15.0


class RemoteError(Exception):
    """An SSH operation failed: unreachable, refused, authentication or a remote command's
    failure. ``message`` says what and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class HostKeyNotAccepted(RemoteError):
    """No host key is pinned yet: scan the host and accept its fingerprint first."""


class HostKeyMismatch(RemoteError):
    """The server presented a key other than the pinned one (possible man in the middle, or a
    reinstalled server)."""


@dataclass(frozen=True, slots=True)
class SSHTarget:
    """Where and how to log in. ``client_key`` is a private key in OpenSSH/PEM text (already
    decrypted from the database) or None when ``key_path`` (a file on the controller) is used;
    ``host_key`` the pinned server key (``ssh-ed25519 AAAA...``)."""

    address: str
    port: int
    username: str
    client_key: str | None = None
    key_path: str | None = None
    passphrase: str | None = None
    host_key: str | None = None

    @property
    def label(self) -> str:
        return f"{self.username}@{self.address}:{self.port}"


def _key_line(target: SSHTarget) -> str:
    name = target.address if target.port == 22 else f"[{target.address}]:{target.port}"
    return f"{name} {target.host_key}\n"


def _client_keys(target: SSHTarget) -> list[asyncssh.SSHKey]:
    try:
        if target.client_key:
            return [asyncssh.import_private_key(target.client_key, target.passphrase)]
        if target.key_path:
            return [asyncssh.read_private_key(target.key_path, target.passphrase)]
    except (asyncssh.KeyImportError, OSError) as exc:
        raise RemoteError(f"cannot load the SSH private key for {target.label}: {exc}") from exc
    raise RemoteError(f"no SSH key for {target.label}: upload a private key or give a key path")


async def scan(address: str, port: int) -> tuple[str, str]:
    """The server's host key, not trusted: ``(public key in OpenSSH format, "SHA256:...")``.

    Raises:
        RemoteError: unreachable or not an SSH server.
    """
    try:
        key = await asyncio.wait_for(asyncssh.get_server_host_key(address, port), CONNECT_TIMEOUT)
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        raise RemoteError(f"cannot reach an SSH server at {address}:{port}: {exc}") from exc
    if key is None:
        raise RemoteError(f"{address}:{port} offered no host key")
    return key.export_public_key("openssh").decode().strip(), key.get_fingerprint("sha256")


async def connect(target: SSHTarget, **options: object) -> asyncssh.SSHClientConnection:
    """An authenticated connection that trusts only ``target.host_key``. ``options`` go to
    ``asyncssh.connect`` (e.g. ``keepalive_interval``).

    Raises:
        HostKeyNotAccepted: no key pinned yet.
        HostKeyMismatch: the server's key is not the pinned one.
        RemoteError: unreachable, authentication failed, bad client key.
    """
    if not target.host_key:
        raise HostKeyNotAccepted(
            f"no host key accepted for {target.label}: scan the host and accept its fingerprint"
        )
    known = asyncssh.import_known_hosts(_key_line(target))
    keys = _client_keys(target)
    try:
        return await asyncio.wait_for(
            asyncssh.connect(
                target.address, target.port, username=target.username, known_hosts=known,
                client_keys=keys, agent_path=None, config=None, **options,  # type: ignore[arg-type]
            ),
            CONNECT_TIMEOUT,
        )
    except asyncssh.HostKeyNotVerifiable as exc:
        raise HostKeyMismatch(
            f"the SSH host key of {target.label} is not the accepted one: refused. If the server "
            "was reinstalled, scan it and accept the new fingerprint; otherwise suspect a "
            "man in the middle"
        ) from exc
    except asyncssh.PermissionDenied as exc:
        raise RemoteError(f"{target.label} refused the SSH key: {exc.reason}") from exc
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        raise RemoteError(f"cannot connect to {target.label}: {exc or type(exc).__name__}") from exc


def command(argv: Sequence[str]) -> str:
    """One shell command from argv words, each quoted with ``shlex.quote``."""
    return " ".join(shlex.quote(str(word)) for word in argv)


def script(*parts: str, sep: str = "; ") -> str:
    """Commands (already built with :func:`command`) joined by ``sep``."""
    return sep.join(parts)


async def run(
    conn: asyncssh.SSHClientConnection, cmd: str, *, check: bool = True, timeout: float = 120.0,
    input: str | None = None,
) -> asyncssh.SSHCompletedProcess:
    """Run ``cmd`` (built with :func:`command`/:func:`script`) and wait for it.

    Raises:
        RemoteError: ``check`` and a non-zero exit (stderr's tail in the message), or a timeout.
    """
    try:
        result = await asyncio.wait_for(conn.run(cmd, check=False, input=input), timeout)
    except TimeoutError as exc:
        raise RemoteError(f"remote command timed out after {timeout:.0f} s: {cmd[:200]}") from exc
    except (OSError, asyncssh.Error) as exc:
        raise RemoteError(f"remote command failed to run ({exc}): {cmd[:200]}") from exc
    if check and result.exit_status != 0:
        err = str(result.stderr or result.stdout or "").strip()[-2000:]
        raise RemoteError(f"remote command exited with {result.exit_status}: {err or cmd[:200]}")
    return result
