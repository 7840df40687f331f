"""A simulated VPS for tests: a real OpenSSH ``sshd -D -e -f cfg`` with its own host key, one
authorized client key (throwaway keys made with asyncssh) and its own directory; on loopback,
or in a network namespace of its own (:mod:`tests.integration.netns`), where everything its
sessions start (the agent, the bots) lives too. TRAPS.md (SSH) lists the settings it needs."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh
import psutil

from botfleet.fleet.embedded_redis import free_port
from tests.integration.netns import NetnsHost

__all__ = ["SSHD", "new_key"]

SSHD_BIN = shutil.which("sshd") or "/usr/sbin/sshd"


def new_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


@dataclass
class SSHD:
    """One sshd in ``root``. ``client_key`` logs in as the current user; ``host_key`` is the
    server's key (:meth:`rekey` replaces it: a reinstalled server or a man in the middle).
    With ``netns`` it runs in that namespace and listens on the namespace's address."""

    root: Path
    port: int = field(default_factory=free_port)
    host_key: asyncssh.SSHKey = field(default_factory=new_key)
    client_key: asyncssh.SSHKey = field(default_factory=new_key)
    proc: subprocess.Popen[bytes] | None = None
    netns: NetnsHost | None = None

    @property
    def address(self) -> str:
        """Where to reach it from the test (the root namespace)."""
        return self.netns.address if self.netns is not None else "127.0.0.1"

    @property
    def user(self) -> str:
        import getpass

        return getpass.getuser()

    @property
    def fingerprint(self) -> str:
        return self.host_key.get_fingerprint("sha256")

    @property
    def client_private(self) -> str:
        return self.client_key.export_private_key("openssh").decode()

    def _write(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        hk = self.root / "ssh_host_ed25519_key"
        hk.write_bytes(self.host_key.export_private_key("openssh"))
        hk.chmod(0o600)
        auth = self.root / "authorized_keys"
        auth.write_bytes(self.client_key.export_public_key("openssh"))
        cfg = self.root / "sshd_config"
        cfg.write_text(
            f"Port {self.port}\nListenAddress {self.address}\nHostKey {hk}\nPidFile {self.root / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {auth}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\nAllowTcpForwarding yes\n"
            "Subsystem sftp internal-sftp\nLogLevel ERROR\n"
        )
        return cfg

    def start(self, timeout: float = 20.0) -> SSHD:
        """Start sshd and wait until it accepts TCP connections."""
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        cfg = self._write()
        log = open(self.root / "sshd.log", "ab")  # noqa: SIM115 - the child owns it
        argv = [SSHD_BIN, "-D", "-e", "-f", str(cfg)]
        if self.netns is not None:
            argv = self.netns.command(argv)  # `ip netns exec` execs sshd: same pid
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {(self.root / 'sshd.log').read_text()[-2000:]}")
            try:
                with socket.create_connection((self.address, self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"sshd on port {self.port} did not listen within {timeout} s")

    def stop(self) -> None:
        """Stop sshd and every connection it serves (the link is cut); processes started in
        sessions that detached themselves (the agent, bots) keep running."""
        if self.proc is None:
            return
        try:
            children = [p for p in psutil.Process(self.proc.pid).children(recursive=True)
                        if p.name().startswith("sshd")]
        except psutil.NoSuchProcess:
            children = []
        self.proc.kill()
        self.proc.wait(10)
        for child in children:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(children, timeout=10)
        self.proc = None

    def rekey(self) -> None:
        """Restart with a new host key on the same port."""
        self.stop()
        self.host_key = new_key()
        self.start()
