"""The anchors: Supervisor 4.3 (supervisord + supervisorctl) and PM2 7 installed into
throw-away prefixes (see run.sh), driven with their own command-line tools as their users
do, running the same bot argv and env as botfleet.

Settings chosen to be fair (each documented in docs/benchmarks.md):

- supervisord: ``startsecs`` as botfleet's, ``autorestart=true`` (``false`` for a bot that
  must not restart), ``startretries=1000``, ``stopsignal=INT``, ``stopwaitsecs=10``,
  ``stopasgroup=killasgroup=true`` (botfleet signals the process group too),
  ``redirect_stderr=true``, log rotation as botfleet's (maxbytes/backups).
- PM2: fork mode, ``interpreter: none`` (argv run as is), ``restart_delay: 0``, no
  exponential backoff, ``max_restarts: 100000`` (the crash bench restarts a bot dozens of
  times), default ``kill_timeout`` (1.6 s) and stop signal (SIGINT), default ``min_uptime``.
  PM2 does not rotate logs without the pm2-logrotate module: one file per stream.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path

from common import BotDef, wait_until

__all__ = ["PM2", "Supervisord", "PM2_PREFIX", "SUPERVISOR_PREFIX"]

BENCH_TMP = Path(os.environ.get("BENCH_TMP", "/tmp/botfleet-bench"))
SUPERVISOR_PREFIX = BENCH_TMP / "supervisor"
PM2_PREFIX = BENCH_TMP / "pm2"
PM2_BIN = PM2_PREFIX / "node_modules" / ".bin" / "pm2"
_PM2_STATES = {"online": "RUNNING", "stopped": "STOPPED", "launching": "STARTING",
               "errored": "FATAL", "stopping": "STOPPING", "one-launch-status": "EXITED"}


def _lines_of(cmd: list[str], env: dict[str, str] | None, stop: threading.Event) -> Iterator[tuple[float, str]]:
    """(receive time, line) of a follower command's stdout until ``stop``; kills it after."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
    assert proc.stdout is not None
    try:
        for raw in proc.stdout:
            yield time.time(), raw.decode(errors="replace").rstrip("\n")
            if stop.is_set():
                return
    finally:
        proc.kill()
        proc.wait()


class _Stalled:
    """A follower process that is SIGSTOPped at once: it never reads its pipe again."""

    def __init__(self, cmd: list[str], env: dict[str, str] | None) -> None:
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # connected
        self.proc.send_signal(signal.SIGSTOP)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


class Supervisord:
    """A supervisord with an inet XML-RPC port (states polled without starting supervisorctl)."""

    name = "supervisord"

    def __init__(self, workdir: Path, log_max_bytes: int, log_backups: int) -> None:
        self.dir = workdir / "supervisord"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "supervisord.conf"
        self.sock = self.dir / "supervisor.sock"
        self.log_max_bytes, self.log_backups = log_max_bytes, log_backups
        self.bots: dict[str, BotDef] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        from botfleet.fleet.embedded_redis import free_port

        self.port = free_port()
        self.rpc = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{self.port}/RPC2")
        self._write_conf()
        self.proc = subprocess.Popen([str(SUPERVISOR_PREFIX / "bin" / "supervisord"), "-n", "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=open(self.dir / "supervisord.err", "ab"))  # noqa: SIM115
        wait_until(self._up, 30, 0.1, "supervisord answering")

    def _up(self) -> bool:
        try:
            return self.rpc.supervisor.getState()["statename"] == "RUNNING"
        except (OSError, xmlrpc.client.Error):
            return False

    def _write_conf(self) -> None:
        d = self.dir
        parts = [
            f"[unix_http_server]\nfile={self.sock}\n",
            f"[inet_http_server]\nport=127.0.0.1:{self.port}\n",
            f"[supervisord]\nlogfile={d / 'supervisord.log'}\npidfile={d / 'supervisord.pid'}\n"
            f"childlogdir={d}\nloglevel=warn\nminfds=4096\n",
            "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n",
            f"[supervisorctl]\nserverurl=unix://{self.sock}\n",
        ]
        for bot in self.bots.values():
            env = ",".join(f'{k}="{v}"' for k, v in bot.env.items())
            cwd = d / "bots" / bot.name
            cwd.mkdir(parents=True, exist_ok=True)
            parts.append(
                f"[program:{bot.name}]\ncommand={' '.join(bot.argv)}\ndirectory={cwd}\nenvironment={env}\n"
                f"autostart=false\nautorestart={'true' if bot.autorestart else 'false'}\n"
                f"startsecs={int(round(bot.startsecs))}\nstartretries=1000\nstopsignal=INT\nstopwaitsecs=10\n"
                f"stopasgroup=true\nkillasgroup=true\nredirect_stderr=true\n"
                f"stdout_logfile={d / 'logs' / bot.name}.log\nstdout_logfile_maxbytes={self.log_max_bytes}\n"
                f"stdout_logfile_backups={self.log_backups}\n"
            )
        (d / "logs").mkdir(exist_ok=True)
        self.conf.write_text("\n".join(parts))

    def ctl(self, *args: str) -> str:
        """Run ``supervisorctl -c CONF args...`` (as a user would) and return its output."""
        out = subprocess.run([str(SUPERVISOR_PREFIX / "bin" / "supervisorctl"), "-c", str(self.conf), *args],
                             capture_output=True, text=True, timeout=300)
        return out.stdout + out.stderr

    def supervisor_pids(self) -> list[int]:
        assert self.proc is not None
        return [self.proc.pid]

    def define(self, bots: list[BotDef]) -> None:
        self.bots.update({b.name: b for b in bots})
        self._write_conf()
        self.ctl("update")

    def start(self, names: list[str]) -> None:
        self.ctl("start", *(names if len(names) < len(self.bots) else ["all"]))

    def stop(self, names: list[str]) -> None:
        self.ctl("stop", *(names if len(names) < len(self.bots) else ["all"]))

    def states(self) -> dict[str, tuple[str, int | None]]:
        return {i["name"]: (i["statename"], i["pid"] or None) for i in self.rpc.supervisor.getAllProcessInfo()}

    def clear(self) -> None:
        if self.bots:
            self.ctl("stop", "all")
            self.bots.clear()
            self._write_conf()
            self.ctl("update")

    def log_files(self, name: str) -> list[Path]:
        return sorted((self.dir / "logs").glob(f"{name}.log*"))

    def follow(self, name: str, stop: threading.Event) -> Iterator[tuple[float, str]]:
        """``supervisorctl tail -f NAME`` (it polls the log over XML-RPC)."""
        yield from _lines_of([str(SUPERVISOR_PREFIX / "bin" / "supervisorctl"), "-c", str(self.conf),
                              "tail", "-f", name], None, stop)

    def stalled_consumer(self, name: str) -> _Stalled:
        return _Stalled([str(SUPERVISOR_PREFIX / "bin" / "supervisorctl"), "-c", str(self.conf),
                         "tail", "-f", name], None)

    def close(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None


class PM2:
    """A PM2 daemon with its own PM2_HOME; states read by a long-lived node process using
    PM2's programmatic API (``pm2state.js``), so polling does not pay node's start-up."""

    name = "pm2"

    def __init__(self, workdir: Path, log_max_bytes: int, log_backups: int) -> None:
        self.dir = workdir / "pm2"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "PM2_HOME": str(self.dir / "home")}
        self.bots: dict[str, BotDef] = {}
        self.pm2("ping")
        self._state_proc: subprocess.Popen[str] | None = None
        self._latest: dict[str, tuple[str, int | None]] = {}
        self._latest_at = 0.0
        self._lock = threading.Lock()

    def pm2(self, *args: str) -> str:
        out = subprocess.run([str(PM2_BIN), *args], env=self.env, capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise RuntimeError(f"pm2 {' '.join(args)}: {out.stdout[-2000:]} {out.stderr[-2000:]}")
        return out.stdout

    def supervisor_pids(self) -> list[int]:
        return [int((self.dir / "home" / "pm2.pid").read_text())]

    def define(self, bots: list[BotDef]) -> None:
        """PM2 has no "defined but stopped": the ecosystem file is written here, started by
        :meth:`start`."""
        self.bots.update({b.name: b for b in bots})

    def _app(self, bot: BotDef) -> dict[str, object]:
        cwd = self.dir / "bots" / bot.name
        cwd.mkdir(parents=True, exist_ok=True)
        return {"name": bot.name, "script": bot.argv[0], "args": bot.argv[1:], "interpreter": "none",
                "exec_mode": "fork", "cwd": str(cwd), "env": bot.env, "autorestart": bot.autorestart,
                "restart_delay": 0, "max_restarts": 100000,
                "out_file": str(self.dir / "logs" / f"{bot.name}-out.log"),
                "error_file": str(self.dir / "logs" / f"{bot.name}-err.log")}

    def start(self, names: list[str]) -> None:
        eco = self.dir / "ecosystem.json"
        eco.write_text(json.dumps({"apps": [self._app(self.bots[n]) for n in names]}))
        self.pm2("start", str(eco))

    def stop(self, names: list[str]) -> None:
        self.pm2("stop", *(names if len(names) < len(self.bots) else ["all"]))

    def _state_reader(self) -> None:
        assert self._state_proc is not None and self._state_proc.stdout is not None
        for line in self._state_proc.stdout:
            got = json.loads(line)
            with self._lock:
                self._latest = {n: (_PM2_STATES.get(s, s.upper()), p or None) for n, (s, p) in got.items()}
                self._latest_at = time.time()

    def watch(self, on: bool) -> None:
        """Start (or stop) the state poller (node + PM2's API, ``pm2.list`` every 20 ms)."""
        if on and self._state_proc is None:
            self._state_proc = subprocess.Popen(
                ["node", str(Path(__file__).with_name("pm2state.js"))], env={
                    **self.env, "PM2_MODULE": str(PM2_PREFIX / "node_modules" / "pm2")},
                stdout=subprocess.PIPE, text=True)
            threading.Thread(target=self._state_reader, daemon=True).start()
            wait_until(lambda: self._latest_at > 0, 30, 0.05, "the pm2 state poller")
        elif not on and self._state_proc is not None:
            self._state_proc.kill()
            self._state_proc.wait()
            self._state_proc = None
            self._latest_at = 0.0

    def states(self) -> dict[str, tuple[str, int | None]]:
        if self._state_proc is None:
            listing = json.loads(self.pm2("jlist"))
            return {a["name"]: (_PM2_STATES.get(a["pm2_env"]["status"], "?"), a.get("pid") or None)
                    for a in listing}
        seen = time.time()
        wait_until(lambda: self._latest_at > seen, 10, 0.005, "a fresh pm2 state")
        with self._lock:
            return dict(self._latest)

    def clear(self) -> None:
        if self.bots:
            self.pm2("delete", "all")
            self.bots.clear()

    def log_files(self, name: str) -> list[Path]:
        return sorted((self.dir / "logs").glob(f"{name}-*.log*"))

    def follow(self, name: str, stop: threading.Event) -> Iterator[tuple[float, str]]:
        """``pm2 logs NAME --raw --lines 0`` (the daemon's bus)."""
        yield from _lines_of([str(PM2_BIN), "logs", name, "--raw", "--lines", "0"], self.env, stop)

    def stalled_consumer(self, name: str) -> _Stalled:
        return _Stalled([str(PM2_BIN), "logs", name, "--raw", "--lines", "0"], self.env)

    def close(self) -> None:
        self.watch(False)
        try:
            self.pm2("kill")
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"pm2 kill failed: {exc}")
