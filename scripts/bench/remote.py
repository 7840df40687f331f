"""Remote hosts (issue 3): provisioning, a restart across 20 hosts, and a partition.

Run through run.sh (``scripts/bench/run.sh remote [--hosts 20] [--samples 3] [--mode auto]``).

The stack is the bench's botfleet (:class:`botfleet_tool.Botfleet`: api + local agent on a
private Redis and SQLite, no worker), its api listening where the simulated hosts reach it.
Each simulated VPS is a real OpenSSH sshd with its own host key, authorized key and base
directory (tests/integration/sshd.py), in its own network namespace on a bridge
(tests/integration/netns.py) when the machine allows (root, ``ip netns``): its agent dials the
api over its veth and a partition is its bridge port set down. Elsewhere (``--mode
loopback``) the sshds listen on loopback, agents reach the api through the reverse tunnel and
the cut is the sshd stopped, as the tunnel test does.

Figures (``time.time()`` of this process; fleet events as the panel gets them, from ``GET
/api/v1/events`` followed over SSE):

- ``provision``: ``POST /hosts/{h}/provision`` on an empty base directory, pip's cache warm
  (an earlier host was provisioned first), until it answers with the agent announced; the
  agent version reported is checked.
- ``restart``: one stand-in (``python -m botfleet.demo live``, a real v8 example config) RUNNING
  on each host; ``POST /instances/bulk {"action": "restart"}`` for all of them -> every one
  RUNNING with a new pid on the fleet SSE (``startsecs`` 1 s, the default, included).
- ``partition``: the link of a host cut -> its ``host.status offline`` event; the link back ->
  the instance's ``UNKNOWN -> RUNNING`` event (the agent's snapshot accepted), same pid, same
  restart count, one process of the bot.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parents[1]
sys.path[:0] = [str(BENCH), str(ROOT)]

import botfleet  # noqa: E402
from botfleet.fleet.embedded_redis import free_port  # noqa: E402
from botfleet.remote.package import build_wheel  # noqa: E402
from botfleet_tool import Botfleet  # noqa: E402
from common import BENCH_DIR, BotDef, StampLog, bot_env, machine_facts, standin_argv, wait_until  # noqa: E402
from tests.integration.netns import Network, NetnsHost, unavailable  # noqa: E402
from tests.integration.sshd import SSHD  # noqa: E402

__all__ = ["main"]

RESULTS = BENCH_DIR / "results"
TARGETS = {"provision_s": 60.0, "restart_ms": 2000.0, "offline_s": 15.0, "reconcile_s": 5.0}


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


@dataclass
class SimHost:
    """One simulated VPS: its sshd, base directory and (netns mode) its network."""

    name: str
    sshd: SSHD
    base: Path
    net: NetnsHost | None

    def cut(self) -> None:
        if self.net is not None:
            self.net.cut()
        else:
            self.sshd.stop()

    def restore(self) -> None:
        if self.net is not None:
            self.net.restore()
        else:
            self.sshd.start()

    def bot_pids(self) -> list[int]:
        """Stand-ins running under this host's base directory."""
        found = []
        for proc in psutil.process_iter(["pid", "cmdline", "cwd", "status"]):
            try:
                if ("botfleet.demo" in (proc.info["cmdline"] or []) and str(self.base) in (proc.info["cwd"] or "")
                        and proc.info["status"] != psutil.STATUS_ZOMBIE):
                    found.append(proc.info["pid"])
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return found


class FleetEvents:
    """``GET /api/v1/events`` followed in a thread: ``(arrival time.time(), event)`` in order."""

    def __init__(self, tool: Botfleet) -> None:
        self.items: list[tuple[float, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._client = httpx.Client(base_url=tool.url, headers={"Authorization": f"Bearer {tool.token}"},
                                    timeout=httpx.Timeout(30, read=None))
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()
        if not self._connected.wait(30):
            raise TimeoutError("the fleet event stream did not connect")

    def _follow(self) -> None:
        try:
            with self._client.stream("GET", "/api/v1/events") as response:
                self._connected.set()
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith("data:"):
                        event = json.loads(line[5:])
                        with self._lock:
                            self.items.append((time.time(), event))
        except Exception:  # noqa: BLE001 - closed from close(), or the api went away
            if not self._stop.is_set():
                raise

    def mark(self) -> int:
        with self._lock:
            return len(self.items)

    def wait(self, match: Any, after: int, timeout: float, what: str) -> tuple[float, dict[str, Any]]:
        """The first event after position ``after`` for which ``match(event)`` holds."""
        deadline = time.monotonic() + timeout
        seen = after
        while True:
            with self._lock:
                fresh = self.items[seen:]
            for got in fresh:
                if match(got[1]):
                    return got
            seen += len(fresh)
            if time.monotonic() > deadline:
                raise TimeoutError(f"no event for {what} within {timeout} s")
            time.sleep(0.005)

    def close(self) -> None:
        self._stop.set()
        self._client.close()
        self._thread.join(2)


def _client(tool: Botfleet) -> httpx.Client:
    return httpx.Client(base_url=tool.url, headers={"Authorization": f"Bearer {tool.token}"}, timeout=900)


def add_host(tool: Botfleet, host: SimHost, mode: str) -> str:
    """Create the host, scan its key, check and accept the fingerprint; returns its id."""
    body: dict[str, Any] = {"name": host.name, "address": host.sshd.address, "port": host.sshd.port,
                            "username": host.sshd.user, "ssh_key": host.sshd.client_private,
                            "base_dir": str(host.base)}
    if mode == "loopback":
        body.update(connect_mode="tunnel", tunnel_port=free_port())
    with _client(tool) as http:
        r = http.post("/api/v1/hosts", json=body)
        if r.status_code != 201:
            raise RuntimeError(f"create host {host.name}: {r.status_code} {r.text[:500]}")
        scan = http.post(f"/api/v1/hosts/{host.name}/scan").json()
        if scan.get("fingerprint") != host.sshd.fingerprint:
            raise RuntimeError(f"scan of {host.name} found {scan}, not {host.sshd.fingerprint}")
        http.post(f"/api/v1/hosts/{host.name}/accept", json=scan).raise_for_status()
        return str(r.json()["id"])


def make_wheelhouse(where: Path) -> tuple[Path, float]:
    """This botfleet's dependency wheels, ``pip download`` ed (from pip's cache when warm) into
    ``where``: what provisioning uploads to a host without an index. Returns it and seconds."""
    t0 = time.time()
    where.mkdir(parents=True)
    wheel = build_wheel()
    (where.parent / wheel.filename).write_bytes(wheel.data)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "-d", str(where),
                    str(where.parent / wheel.filename)], check=True, timeout=600, stderr=subprocess.DEVNULL)
    for stale in where.glob("botfleet-*"):
        stale.unlink()
    return where, time.time() - t0


def provision(tool: Botfleet, host: SimHost, wheelhouse: Path | None) -> dict[str, Any]:
    """``POST provision`` until it answers with the agent online: seconds and what it says."""
    body: dict[str, Any] = {"wait": 300}
    if wheelhouse is not None:
        body["wheelhouse"] = str(wheelhouse)
    with _client(tool) as http:
        t0 = time.time()
        r = http.post(f"/api/v1/hosts/{host.name}/provision", json=body)
        took = time.time() - t0
        if r.status_code != 200 or not r.json().get("online"):
            raise RuntimeError(f"provision {host.name}: {r.status_code} {r.text[:1000]}")
        version = http.get(f"/api/v1/hosts/{host.name}").json()["agent_version"]
    if version != botfleet.__version__:
        raise RuntimeError(f"{host.name} reports agent {version!r}, not {botfleet.__version__}")
    return {"s": round(took, 2), "server_s": r.json()["seconds"], "started_as": r.json()["started_as"],
            "agent_version": version, "loadavg": _load()}


def seed_installed(source: SimHost, host: SimHost) -> None:
    """Give ``host`` the venv and wheel that provisioning put on ``source`` (a VPS image with
    this botfleet installed): its provisioning then skips upload and pip, as on a re-run."""
    host.base.mkdir(parents=True, exist_ok=True)
    for part in ("venv", "dist"):
        shutil.copytree(source.base / part, host.base / part, symlinks=True)


def restart_all(tool: Botfleet, events: FleetEvents, stamps: StampLog, names: list[str]) -> dict[str, Any]:
    """Bulk restart of ``names`` (all RUNNING) -> each RUNNING with a new pid on the fleet SSE."""
    before = tool.states()
    if any(state != "RUNNING" for state, _ in (before[n] for n in names)):
        raise RuntimeError(f"not all RUNNING before the restart: {before}")
    by_id = {tool.ids[n]: n for n in names}
    mark = events.mark()
    t0 = time.time()
    tool.restart(names)
    command_ms = (time.time() - t0) * 1000
    running: dict[str, float] = {}
    deadline = time.monotonic() + 60
    while len(running) < len(names):
        def fresh(e: dict[str, Any]) -> bool:
            name = by_id.get(e.get("instance_id") or "")
            return (e["kind"] == "instance.state" and name is not None and name not in running
                    and e["data"].get("new") == "RUNNING" and e["data"].get("pid") != before[name][1])

        t, event = events.wait(fresh, mark, max(0.1, deadline - time.monotonic()), "all RUNNING again")
        running[by_id[event["instance_id"]]] = t
    started = [stamps.wait_new(n, before[n][1], 30)[1] for n in names]
    return {"all_running_ms": round((max(running.values()) - t0) * 1000, 1),
            "all_started_ms": round((max(started) - t0) * 1000, 1),
            "bulk_request_ms": round(command_ms, 1), "loadavg": _load()}


def partition(tool: Botfleet, events: FleetEvents, host: SimHost, host_id: str, name: str,
              hold: float) -> dict[str, Any]:
    """Cut ``host``'s link -> offline event; ``hold`` seconds more; mend it -> the instance
    reconciled (checked: same pid, same restart count, one process)."""
    http = tool.http
    instance_id = tool.ids[name]
    before = http.get(f"/api/v1/instances/{instance_id}").json()
    if before["state"] != "RUNNING":
        raise RuntimeError(f"{name} is {before['state']} before the cut")
    time.sleep(random.uniform(0, 5))  # any phase of the 5 s heartbeat
    mark = events.mark()
    t_cut = time.time()
    host.cut()
    t_off, _ = events.wait(lambda e: e["kind"] == "host.status" and e["host_id"] == host_id
                           and e["data"]["new"] == "offline", mark, 120, f"{host.name} offline")
    unknown = http.get(f"/api/v1/instances/{instance_id}").json()
    if unknown["state"] != "UNKNOWN" or not psutil.pid_exists(before["pid"]):
        raise RuntimeError(f"during the cut {name} is {unknown['state']}, pid alive: {psutil.pid_exists(before['pid'])}")
    time.sleep(hold)
    mark = events.mark()
    t_back = time.time()
    host.restore()
    t_rec, rec = events.wait(lambda e: e["kind"] == "instance.state" and e["instance_id"] == instance_id,
                             mark, 120, f"{name} reconciled")
    t_online, _ = events.wait(lambda e: e["kind"] == "host.status" and e["host_id"] == host_id
                              and e["data"]["new"] == "online", mark, 120, f"{host.name} online")
    after = http.get(f"/api/v1/instances/{instance_id}").json()
    same = (rec["data"]["new"] == "RUNNING" and rec["data"].get("pid") == before["pid"] == after["pid"]
            and after["restart_count"] == before["restart_count"] and host.bot_pids() == [before["pid"]])
    if not same:
        raise RuntimeError(f"{name} not reconciled as it was: event {rec['data']}, before {before}, "
                           f"after {after}, processes {host.bot_pids()}")
    return {"host": host.name, "offline_s": round(t_off - t_cut, 2), "cut_s": round(t_back - t_cut, 2),
            "online_s": round(t_online - t_back, 2), "reconcile_s": round(t_rec - t_back, 2),
            "same_pid_no_restart": True, "loadavg": _load()}


def _kill_under(root: Path) -> None:
    """No agent or bot of a simulated host outlives the run: kill what runs in ``root``."""
    for proc in psutil.process_iter(["cwd"]):
        try:
            if proc.pid != os.getpid() and (proc.info["cwd"] or "").startswith(str(root)):
                proc.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass


def run(args: argparse.Namespace, workdir: Path, out: dict[str, Any]) -> None:
    """Bring up the stack and the hosts, measure, tear everything down; figures go to ``out``
    as they are taken (a failure keeps those before it)."""
    reason = unavailable()
    mode = args.mode if args.mode != "auto" else ("loopback" if reason else "netns")
    if mode == "netns" and reason:
        raise SystemExit(f"--mode netns impossible here: {reason}")
    if mode == "loopback":
        print(f"  network namespaces not used ({reason or 'asked for loopback'}): loopback sshds, tunnel mode",
              flush=True)
    net = Network() if mode == "netns" else None
    hosts: list[SimHost] = []
    tool = None
    events = None
    out["settings"] = {"hosts": args.hosts, "samples": args.samples, "mode": mode,
                       "heartbeat_interval_s": "default (5)", "host_offline_after_s": "default (10)",
                       "startsecs": 1.0, "bot": "python -m botfleet.demo live btc_long.json"}
    try:
        tool = Botfleet(workdir, 10 * 1024 * 1024, 2, api_host=net.gateway if net else "127.0.0.1")
        events = FleetEvents(tool)
        for i in range(args.hosts):
            ns = net.add_host() if net else None
            server = SSHD(workdir / f"sshd{i:02d}", port=22 if ns else free_port(), netns=ns).start()
            hosts.append(SimHost(f"vps{i:02d}", server, workdir / f"vps{i:02d} base", ns))
        ids = {h.name: add_host(tool, h, mode) for h in hosts}
        print(f"  {len(hosts)} hosts up ({mode}), keys pinned", flush=True)

        # (a) Two full installs from empty base directories: the first warms what can be warmed
        # (pip's cache on the hosts' disk, bytecode), the second is the figure. Hosts in
        # namespaces have no route to an index: their dependencies come from a wheelhouse.
        wheelhouse = None
        if mode == "netns":
            wheelhouse, took = make_wheelhouse(workdir / "wheelhouse")
            out["wheelhouse"] = {"s": round(took, 2), "wheels": len(list(wheelhouse.glob("*.whl")))}
        out["provision_first"] = provision(tool, hosts[0], wheelhouse)
        print(f"  provision (first, cache as found): {out['provision_first']}", flush=True)
        out["provision"] = provision(tool, hosts[1], wheelhouse)
        print(f"  provision (empty base, cache warm): {out['provision']}", flush=True)

        # The other hosts: botfleet pre-installed from host 1 (an image), then provisioned.
        rest = hosts[2:]
        for h in rest:
            seed_installed(hosts[1], h)
        with ThreadPoolExecutor(4) as pool:
            installed = list(pool.map(lambda h: provision(tool, h, wheelhouse), rest))
        if installed:
            out["provision_preinstalled"] = {"n": len(installed), "median_s": statistics.median(i["s"] for i in installed),
                                             "max_s": max(i["s"] for i in installed), "concurrency": 4}
            print(f"  provision (botfleet pre-installed): {out['provision_preinstalled']}", flush=True)

        # (b) One stand-in per host; restart them all at once.
        stamps = StampLog(workdir / "stamps.txt")
        bots = [BotDef(f"bot-{h.name}", standin_argv(), bot_env(stamps.path, f"bot-{h.name}"), host=h.name)
                for h in hosts]
        names = [b.name for b in bots]
        tool.define(bots)
        tool.start(names)
        wait_until(lambda: all(s == "RUNNING" for s, _ in tool.states().values()), 120, 0.2, "all RUNNING")
        samples = []
        for _ in range(args.samples):
            time.sleep(2.0)
            samples.append(restart_all(tool, events, stamps, names))
            print(f"  restart {len(names)} on {len(hosts)} hosts: {samples[-1]}", flush=True)
            wait_until(lambda: all(s == "RUNNING" for s, _ in tool.states().values()), 60, 0.2, "all RUNNING")
        out["restart"] = {"samples": samples, "median_all_running_ms": statistics.median(
            s["all_running_ms"] for s in samples), "max_all_running_ms": max(s["all_running_ms"] for s in samples)}

        # (c) Partitions, each on another host: mended 2 s after the host was seen offline,
        # and once after a long cut (the agent's reconnect attempts have backed off by then).
        cuts = []
        holds = [2.0] * args.samples + ([args.long_cut] if args.long_cut > 0 else [])
        for k, hold in enumerate(holds):
            h = hosts[-1 - k]
            cuts.append(partition(tool, events, h, ids[h.name], f"bot-{h.name}", hold))
            print(f"  partition: {cuts[-1]}", flush=True)
        short = cuts[:args.samples]
        out["partition"] = {"samples": cuts, "max_offline_s": max(c["offline_s"] for c in cuts),
                            "max_reconcile_s": max(c["reconcile_s"] for c in short)}
        if len(cuts) > len(short):
            out["partition"]["long_cut"] = {"held_s": args.long_cut, "reconcile_s": cuts[-1]["reconcile_s"]}
    finally:
        if events is not None:
            events.close()
        if tool is not None:
            tool.close()
        for h in hosts:
            h.sshd.stop()
        if net is not None:
            net.close()
        _kill_under(workdir)


def verdicts(doc: dict[str, Any]) -> list[tuple[str, Any, str, bool | None]]:
    """``(figure, value, target, pass)`` rows for the table and docs/benchmarks.md."""
    r = doc.get("botfleet", {})

    def get(*path: str) -> Any:
        cur: Any = r
        for p in path:
            cur = cur.get(p) if isinstance(cur, dict) else None
        return cur

    rows = [
        ("provision one host, empty base dir, pip cache warm (s)", get("provision", "s"), "< 60",
         TARGETS["provision_s"]),
        (f"restart one instance on each of {doc['settings']['hosts']} hosts -> all RUNNING, median (ms)",
         get("restart", "median_all_running_ms"), "< 2000", TARGETS["restart_ms"]),
        ("  the same, worst sample (ms)", get("restart", "max_all_running_ms"), "< 2000", TARGETS["restart_ms"]),
        ("link cut -> host offline on the fleet SSE, worst (s)", get("partition", "max_offline_s"), "< 15",
         TARGETS["offline_s"]),
        ("link back -> reconciled (same pid, no restart), worst (s)", get("partition", "max_reconcile_s"), "< 5",
         TARGETS["reconcile_s"]),
        ("  the same after a cut held long (s)", get("partition", "long_cut", "reconcile_s"), "< 5",
         TARGETS["reconcile_s"]),
    ]
    return [(label, v, text, None if v is None else v < limit) for label, v, text, limit in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--samples", type=int, default=3, help="restarts and partitions measured")
    parser.add_argument("--long-cut", type=float, default=45.0,
                        help="one more partition held this long after offline, s (0: none)")
    parser.add_argument("--mode", choices=("auto", "netns", "loopback"), default="auto")
    parser.add_argument("--workdir", default="/tmp/botfleet-bench/run/remote")
    args = parser.parse_args(argv)
    if args.hosts < max(2, args.samples + (args.long_cut > 0)):
        parser.error("--hosts must be at least 2 and --samples (+1 with --long-cut): one cut per host")
    workdir = Path(args.workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    facts = machine_facts()
    print(f"machine: {json.dumps(facts)}\n== remote", flush=True)
    started, load_before = time.monotonic(), _load()
    result: dict[str, Any] = {}
    try:
        run(args, workdir, result)
    except Exception as exc:  # noqa: BLE001 - recorded in the results, then re-raised
        result["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        settings = result.pop("settings", {"hosts": args.hosts})
        doc = {"scenario": "remote", "machine": facts,
               "command": " ".join(["scripts/bench/run.sh", "remote", *(argv if argv is not None else sys.argv[1:])]),
               "wall_s": round(time.monotonic() - started, 1), "loadavg_before_after": [load_before, _load()],
               "settings": settings, "botfleet": result}
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "remote.json").write_text(json.dumps(doc, indent=1) + "\n")
        print(f"   -> {RESULTS / 'remote.json'} ({doc['wall_s']} s)", flush=True)
    for label, value, target, ok in verdicts(doc):
        flag = "" if ok is None else ("PASS" if ok else "FAIL")
        print(f"  {label:<75} {value!s:>9}  {target:>7}  {flag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
