"""``botfleet up``: the whole of botfleet on one machine (DESIGN.md, "botfleet up").

Order of start: check the api port, lock ``HOME/up.lock`` (one ``up`` per HOME: two local
agents would run every bot twice), Redis (embedded unless ``BOTFLEET_REDIS_URL`` is set),
migrate, bootstrap, then the services ``api``, ``worker`` and ``agent`` as child processes
(``python -m botfleet ...``), then wait for ``GET /api/v1/health/ready``.

SIGINT, SIGTERM and SIGHUP (terminal closed) all stop botfleet the same way.

Supervision: a service that exits is started again after 1, 2, 4 ... 30 s (the delay resets
after it ran 30 s). Children run in their own sessions, so a Ctrl-C in the terminal reaches
``up`` only; ``up`` then sends SIGTERM to api, worker and agent together, waits (api 15 s,
worker 30 s, agent 15 s), SIGKILLs what is left, and stops Redis last. A second Ctrl-C skips
the waiting. Bots are not children of ``up``: the agent leaves them running and the next
agent re-adopts them (invariant 2). If ``up`` itself is killed, the kernel sends the children
SIGTERM (``PR_SET_PDEATHSIG``), so no stray api keeps the port.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import structlog

from botfleet.fleet.bootstrap import ADMIN_CREDENTIALS_FILE, Bootstrap, bootstrap
from botfleet.fleet.embedded_redis import EmbeddedRedis
from botfleet.fleet.migrate import upgrade
from botfleet.settings import Settings

__all__ = ["EMBEDDED_REDIS_PORT", "Service", "UpError", "connect_host", "run_up"]

log = structlog.get_logger("botfleet.up")

EMBEDDED_REDIS_PORT = 6380
BACKOFF_MAX = 30.0
HEALTHY_AFTER = 30.0


class UpError(RuntimeError):
    """``up`` cannot start; the message is one line for the user."""


class _Stop(BaseException):
    """Raised by the signal handlers to leave the start-up or the supervision loop."""


def connect_host(host: str) -> str:
    """The address to reach a server listening on ``host`` from this machine."""
    return "127.0.0.1" if host in ("", "0.0.0.0") else "::1" if host == "::" else host


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Service:
    """One of botfleet's own processes under ``up``. Times are seconds (monotonic clock)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    stop_timeout: float
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.argv, env=self.env, stdin=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.started_at = time.monotonic()
        self.restart_at = None
        log.info("service started", service=self.name, pid=self.process.pid)

    def check(self) -> None:
        """Restart the service when it has exited and its backoff delay has passed."""
        now = time.monotonic()
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.start()
            return
        if self.process is None or (code := self.process.poll()) is None:
            return
        self.failures = 0 if now - self.started_at >= HEALTHY_AFTER else self.failures + 1
        delay = min(2.0 ** max(self.failures - 1, 0), BACKOFF_MAX)
        log.warning("service exited; restarting", service=self.name, exit_code=code, delay_s=delay)
        self.restart_at = now + delay

    def terminate(self) -> None:
        self.restart_at = None
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            log.warning("service did not stop in time; killing it", service=self.name)
            self.process.kill()  # the service's own pid only: never a bot's process group
            self.process.wait()


@dataclass
class _Up:
    settings: Settings
    host: str
    port: int
    ready_timeout: float
    home: Path = field(init=False)
    redis: EmbeddedRedis | None = None
    services: list[Service] = field(default_factory=list)
    stopping: bool = False
    hurry: bool = False

    def __post_init__(self) -> None:
        self.home = self.settings.home.resolve()

    @property
    def url(self) -> str:
        return f"http://{connect_host(self.host)}:{self.port}"

    def run(self) -> int:
        self._check_port()
        with self._lock(), self._signals_stop():
            try:
                redis_url = self._start_redis()
                upgrade(self.settings.database)
                first = asyncio.run(bootstrap(self.settings))
                self._start_services(redis_url, first.agent_token)
                self._wait_ready()
                self._banner(first)
                while True:
                    for service in self.services:
                        service.check()
                    time.sleep(0.5)
            except _Stop:
                log.info("stopping botfleet; bots keep running")
                return 0
            finally:
                self._shutdown()

    def _check_port(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.socket(family) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.host, self.port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    message = f"port {self.port} is in use: set BOTFLEET_API_PORT or pass --port"
                else:
                    message = f"cannot listen on {self.host}:{self.port}: {exc.strerror}"
                raise UpError(message) from None

    @contextmanager
    def _lock(self) -> Iterator[None]:
        self.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.home / "up.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UpError(
                    f"another `botfleet up` runs with BOTFLEET_HOME={self.home}: stop it first"
                ) from None
            yield
        finally:
            os.close(fd)

    @contextmanager
    def _signals_stop(self) -> Iterator[None]:
        def stop(signum: int, _frame: object) -> None:
            if not self.stopping:
                self.stopping = True
                raise _Stop
            self.hurry = True  # a second Ctrl-C: do not wait for graceful stops

        signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {signum: signal.signal(signum, stop) for signum in signals}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _start_redis(self) -> str:
        if self.settings.redis_url:
            _check_redis(self.settings.redis_url)
            return self.settings.redis_url
        self._stop_stale_redis()
        port = EMBEDDED_REDIS_PORT if _port_free(EMBEDDED_REDIS_PORT) else 0
        self.redis = EmbeddedRedis(dir=self.home / "redis", port=port, persist=True)
        url = self.redis.start()
        (self.home / "redis.url").write_text(url + "\n")
        log.info("embedded redis started", url=url, dir=str(self.redis.dir))
        return url

    def _stop_stale_redis(self) -> None:
        """Shut down the embedded Redis a killed ``up`` left behind (two servers must not
        write one append-only file)."""
        import redis

        try:
            url = (self.home / "redis.url").read_text().strip()
        except FileNotFoundError:
            return
        client = redis.Redis.from_url(url, socket_timeout=5)
        try:
            if client.config_get("dir").get("dir") != str((self.home / "redis").resolve()):
                return
            log.warning("stopping the embedded redis a previous botfleet up left", url=url)
            with suppress(redis.ConnectionError):
                client.shutdown()
        except redis.RedisError:
            return  # nothing answers there any more
        finally:
            client.close()
            (self.home / "redis.url").unlink(missing_ok=True)

    def _start_services(self, redis_url: str, agent_token: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in _PRIVATE_ENV}
        env.update(
            BOTFLEET_HOME=str(self.home), BOTFLEET_REDIS_URL=redis_url,
            BOTFLEET_DATABASE_URL=self.settings.database, BOTFLEET_API_HOST=self.host,
            BOTFLEET_API_PORT=str(self.port), PYTHONUNBUFFERED="1",
        )
        agent_env = {
            **env, "BOTFLEET_API_URL": self.url, "BOTFLEET_AGENT_TOKEN": agent_token,
            "BOTFLEET_AGENT_HOST": "local",
        }
        me = [sys.executable, "-m", "botfleet"]
        self.services = [
            Service("api", [*me, "api", "--host", self.host, "--port", str(self.port)], env, 15.0),
            Service("worker", [*me, "worker"], env, 30.0),
            Service("agent", [*me, "agent"], agent_env, 15.0),
        ]
        for service in self.services:
            service.start()

    def _wait_ready(self) -> None:
        api = self.services[0]
        deadline = time.monotonic() + self.ready_timeout
        with httpx.Client(timeout=5.0) as client:
            while time.monotonic() < deadline:
                assert api.process is not None
                if (code := api.process.poll()) is not None:
                    raise UpError(f"botfleet api exited with code {code} before it was ready")
                with suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/api/v1/health/ready").status_code == 200:
                        return
                for service in self.services[1:]:
                    service.check()
                time.sleep(0.25)
        raise UpError(f"botfleet api not ready at {self.url} after {self.ready_timeout:.0f} s")

    def _banner(self, first: Bootstrap) -> None:
        lines = [f"botfleet is running at {self.url}", f"  admin user: {first.admin_user}"]
        if first.admin_password:
            lines.append(f"  password:   {first.admin_password}   (shown once; also in "
                         f"{self.home / ADMIN_CREDENTIALS_FILE})")
        elif first.admin_created:
            lines.append("  password:   the one in BOTFLEET_ADMIN_PASSWORD")
        lines += ["  try:        botfleet demo   (simulated bots, a backtest, an optimize)",
                  "Ctrl-C stops botfleet; your bots keep running."]
        print("\n".join(lines), flush=True)

    def _shutdown(self) -> None:
        self.stopping = True
        for service in self.services:
            service.terminate()
        for service in self.services:
            deadline = time.monotonic() + service.stop_timeout
            while service.process and service.process.poll() is None:
                if self.hurry or time.monotonic() > deadline:
                    service.kill()
                    break
                time.sleep(0.1)
        if self.redis is not None:
            self.redis.stop()
            (self.home / "redis.url").unlink(missing_ok=True)
        log.info("botfleet stopped")


#: Settings a child service has no use for (least privilege).
_PRIVATE_ENV = frozenset({"BOTFLEET_ADMIN_PASSWORD", "BOTFLEET_AGENT_TOKEN"})


def _check_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        shown = url.split("@", 1)[-1] if "@" in url else url.split("://", 1)[-1]
        raise UpError(f"redis is not reachable at {shown} (BOTFLEET_REDIS_URL): {exc}") from None
    finally:
        client.close()


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def run_up(settings: Settings, *, host: str, port: int, ready_timeout: float = 120.0) -> int:
    """Run botfleet on this machine until SIGINT/SIGTERM; returns the exit code (0).

    Raises:
        UpError: the port is taken, another ``up`` uses the same HOME, or the api did not
            become ready in ``ready_timeout`` seconds.
        MigrationError, BootstrapError: see :mod:`botfleet.fleet.migrate` / ``bootstrap``.
    """
    return _Up(settings, host, port, ready_timeout).run()
