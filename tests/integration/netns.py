"""Simulated VPSes in their own Linux network namespaces, so that a test (or the benchmark) can
cut a host's link at the network level, the way a real partition looks: packets vanish in
both directions, nothing is refused or reset.

Layout (``ip`` from iproute2 only; no nft/iptables needed)::

    root namespace:  bridge bf<tag>br  10.<a>.<b>.1/24   <- the api listens here
                       |-- bf<tag>h0 (veth) ---- eth0 in netns bf<tag>-h0   10.<a>.<b>.2/24
                       |-- bf<tag>h1 (veth) ---- eth0 in netns bf<tag>-h1   10.<a>.<b>.3/24
                       ...

:meth:`NetnsHost.cut` sets the host's bridge port (the root end of its veth pair) down: the
host's frames are dropped by the veth, frames to it are dropped by the bridge, and both
sides' routes stay, so connections hang and time out exactly as over a dead WAN link.
:meth:`NetnsHost.restore` sets it up again. Processes started in a namespace (sshd, and through
it the agent and the bots) share the filesystem and the pid namespace with the test, so their
files and pids are checked from outside as for loopback hosts.

``python -m tests.integration.netns`` prints whether namespaces can be used here (exit 0) or
why not (exit 1); ``scripts/test.sh`` runs it so a skipped partition test is never silent.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field

__all__ = ["NetnsHost", "Network", "unavailable"]

IP = shutil.which("ip") or "/usr/sbin/ip"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([IP, *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip() or result.returncode}")
    return result


def unavailable() -> str | None:
    """Why network namespaces cannot be used on this machine (None when they can): not root,
    no ``ip`` (iproute2), or the kernel refusing ``ip netns add`` / veth / bridge."""
    if os.geteuid() != 0:
        return "network namespaces need root (run the tests as root, or in a container with CAP_NET_ADMIN)"
    if not os.path.exists(IP):
        return "`ip` (iproute2) is not installed: apt-get install iproute2"
    probe = f"bfprobe{secrets.token_hex(3)}"
    try:
        made = _ip("netns", "add", probe, check=False)
        if made.returncode != 0:
            return f"`ip netns add` fails here: {made.stderr.strip()}"
        veth = _ip("link", "add", probe[:12] + "a", "type", "veth", "peer", "name", "eth0", "netns", probe,
                   check=False)
        if veth.returncode != 0:
            return f"veth pairs cannot be made here: {veth.stderr.strip()}"
        bridge = _ip("link", "add", probe[:12] + "b", "type", "bridge", check=False)
        if bridge.returncode != 0:
            return f"bridges cannot be made here: {bridge.stderr.strip()}"
        return None
    finally:
        _ip("link", "del", probe[:12] + "a", check=False)
        _ip("link", "del", probe[:12] + "b", check=False)
        _ip("netns", "del", probe, check=False)


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 under 10.0.0.0/8 that no address or route of this machine touches."""
    used = _ip("-4", "-o", "addr").stdout + _ip("-4", "route").stdout
    taken = []
    for word in used.split():
        try:
            taken.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            continue
    for _ in range(200):
        net = ipaddress.ip_network(f"10.{secrets.randbelow(200) + 50}.{secrets.randbelow(250) + 1}.0/24")
        if not any(net.overlaps(t) for t in taken if t.version == 4 and t.prefixlen >= 8):
            return net
    raise RuntimeError("no free 10.x.y.0/24 subnet found for the test network")


@dataclass
class NetnsHost:
    """One simulated VPS's network: namespace ``netns`` with ``eth0`` at ``address``, linked
    to the bridge through the veth end ``port`` (in the root namespace)."""

    netns: str
    port: str
    address: str
    linked: bool = True

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside this namespace (``ip netns exec``; same filesystem and pids)."""
        return [IP, "netns", "exec", self.netns, *argv]

    def cut(self) -> None:
        """Cut the link: every packet to and from the host is dropped from now on."""
        _ip("link", "set", self.port, "down")
        self.linked = False

    def restore(self) -> None:
        """Mend the link (connections that did not time out meanwhile carry on)."""
        _ip("link", "set", self.port, "up")
        self.linked = True

    def pids(self) -> list[int]:
        """Processes living in the namespace."""
        out = _ip("netns", "pids", self.netns, check=False).stdout
        return [int(p) for p in out.split() if p.isdigit()]


@dataclass
class Network:
    """A bridge in the root namespace and any number of :class:`NetnsHost` on it. Use as a
    context manager (or call :meth:`close`): every namespace, veth and the bridge are removed,
    and processes still in the namespaces are killed. Raises RuntimeError when ``ip`` fails
    (check :func:`unavailable` first)."""

    tag: str = field(default_factory=lambda: secrets.token_hex(2))
    subnet: ipaddress.IPv4Network = field(default_factory=_free_subnet)
    hosts: list[NetnsHost] = field(default_factory=list)
    bridge: str = ""

    def __post_init__(self) -> None:
        self.bridge = f"bf{self.tag}br"
        _ip("link", "add", self.bridge, "type", "bridge")
        try:
            _ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
        except BaseException:
            _ip("link", "del", self.bridge, check=False)
            raise

    @property
    def gateway(self) -> str:
        """The root namespace's address on the bridge: what hosts dial to reach the api."""
        return str(self.subnet.network_address + 1)

    def add_host(self) -> NetnsHost:
        """A new namespace with loopback up and ``eth0`` on the bridge."""
        n = len(self.hosts)
        if n > 250:
            raise RuntimeError("a Network holds at most 251 hosts")
        host = NetnsHost(netns=f"bf{self.tag}-h{n}", port=f"bf{self.tag}h{n}",
                         address=str(self.subnet.network_address + 2 + n))
        _ip("netns", "add", host.netns)
        self.hosts.append(host)
        _ip("link", "add", host.port, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
        _ip("link", "set", host.port, "master", self.bridge)
        _ip("link", "set", host.port, "up")
        _ip("-n", host.netns, "addr", "add", f"{host.address}/{self.subnet.prefixlen}", "dev", "eth0")
        _ip("-n", host.netns, "link", "set", "eth0", "up")
        _ip("-n", host.netns, "link", "set", "lo", "up")
        return host

    def close(self) -> None:
        """Kill what still runs in the namespaces, then remove them, the veths and the bridge."""
        for host in self.hosts:
            for pid in host.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            _ip("link", "del", host.port, check=False)  # takes its peer along
            _ip("netns", "del", host.netns, check=False)
        self.hosts.clear()
        _ip("link", "del", self.bridge, check=False)

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    reason = unavailable()
    print(reason or "network namespaces usable: partition tests run at the network level")
    sys.exit(1 if reason else 0)
