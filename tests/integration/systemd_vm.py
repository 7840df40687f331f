"""A real systemd host for tests: the Debian bookworm VM that ``scripts/systemd_vm.sh`` builds
(``BOTFLEET_SYSTEMD_VM`` names its directory: image.raw, vmlinuz, initrd.img, id_ed25519),
booted with qemu on a qcow2 overlay of its own (the image stays untouched), reached over SSH
at 127.0.0.1:``port`` (qemu user networking, ``restrict=on``: the guest reaches nothing but
the forwards given here; the api through ``socat``). Users ``bot`` (may turn lingering on) and ``nolinger`` (a polkit
rule refuses it), both with the key ``id_ed25519``.

Acceleration: ``BOTFLEET_SYSTEMD_VM_ACCEL`` = ``tcg`` (default; software emulation, boots to
SSH in about 30 s) or ``kvm`` (needs a working /dev/kvm; the nested KVM of the machines seen so
far hangs the guest's kernel before its first console line).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from botfleet.fleet.embedded_redis import free_port
from botfleet.remote.ssh import SSHTarget, connect, scan

__all__ = ["GUEST_API", "SystemdVM", "image_dir"]

#: Where the guest reaches the controller's api (a qemu ``guestfwd``), as ``host:port``.
GUEST_API = ("10.0.2.100", 8000)


def image_dir() -> Path | None:
    """The built image's directory from ``BOTFLEET_SYSTEMD_VM``, or None when unset.

    Raises:
        RuntimeError: set, but the image is not there (run ``scripts/systemd_vm.sh build``).
    """
    value = os.environ.get("BOTFLEET_SYSTEMD_VM")
    if not value:
        return None
    path = Path(value)
    missing = [n for n in ("image.raw", "vmlinuz", "initrd.img", "id_ed25519") if not (path / n).exists()]
    if missing:
        raise RuntimeError(f"BOTFLEET_SYSTEMD_VM={value} lacks {', '.join(missing)}: run scripts/systemd_vm.sh build")
    return path


@dataclass
class SystemdVM:
    """One VM in ``root`` (overlay, console log, monitor socket). ``api_port`` is the
    controller's api port on 127.0.0.1, reachable from the guest at :data:`GUEST_API`."""

    image: Path
    root: Path
    api_port: int
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    host_key: str | None = None
    #: Seconds from qemu's start to sshd's banner, one per boot.
    boot_seconds: list[float] = field(default_factory=list)

    @property
    def key_text(self) -> str:
        return (self.image / "id_ed25519").read_text()

    @property
    def console(self) -> Path:
        return self.root / "console.log"

    def start(self, timeout: float = 300.0) -> float:
        """Boot (keeping the overlay of an earlier boot: a reboot) and wait for sshd's banner.
        Returns the seconds from qemu's start to the banner.

        Raises:
            RuntimeError: qemu exited; TimeoutError: no banner within ``timeout`` s (the
                console's tail in the message).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        overlay = self.root / "overlay.qcow2"
        if not overlay.exists():
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(self.image / "image.raw"),
                            "-F", "raw", str(overlay)], check=True)
        accel = os.environ.get("BOTFLEET_SYSTEMD_VM_ACCEL", "tcg")
        guest_host, guest_port = GUEST_API
        nic = (f"user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:{self.port}-:22,"
               # cmd: runs socat per connection (a tcp: target is one connection, made at start).
               f"guestfwd=tcp:{guest_host}:{guest_port}-cmd:socat - TCP:127.0.0.1:{self.api_port}")
        argv = ["qemu-system-x86_64", "-accel", accel, "-m", "1024", "-smp", "1",
                "-kernel", str(self.image / "vmlinuz"), "-initrd", str(self.image / "initrd.img"),
                "-append", "root=/dev/vda rw console=ttyS0",
                "-drive", f"file={overlay},if=virtio,format=qcow2", "-nic", nic, "-display", "none",
                "-serial", f"file:{self.console}", "-monitor", f"unix:{self.root / 'monitor.sock'},server,nowait"]
        log = open(self.root / "qemu.log", "ab")  # noqa: SIM115 - the child owns it
        started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"qemu exited with {self.proc.returncode}: "
                                   f"{(self.root / 'qemu.log').read_text(errors='replace')[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.settimeout(5)
                    if s.recv(16).startswith(b"SSH-"):
                        self.boot_seconds.append(round(time.monotonic() - started, 1))
                        return self.boot_seconds[-1]
            except OSError:
                pass
            time.sleep(0.5)
        tail = self.console.read_text(errors="replace")[-3000:] if self.console.exists() else ""
        raise TimeoutError(f"the VM's sshd did not answer within {timeout:.0f} s; console:\n{tail}")

    def shutdown(self, timeout: float = 120.0) -> None:
        """A clean power-off (ACPI, systemd stops every unit), qemu killed if it takes longer."""
        if self.proc is None:
            return
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(self.root / "monitor.sock"))
                s.sendall(b"system_powerdown\n")
                time.sleep(0.5)
            self.proc.wait(timeout)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(30)
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(30)
            self.proc = None

    async def ssh(self, user: str = "bot") -> asyncssh.SSHClientConnection:
        """A connection as ``user``, pinned to the host key first seen (scan)."""
        if self.host_key is None:
            self.host_key = (await scan("127.0.0.1", self.port))[0]
        return await connect(SSHTarget("127.0.0.1", self.port, user, client_key=self.key_text,
                                       host_key=self.host_key))
