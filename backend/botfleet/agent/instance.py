"""One supervised instance: Supervisor's process state machine (supervisord.org, "Process
States"), driven by events (pidfd readable, ``loop.call_later`` timers), never by polling.

::

    STOPPED/EXITED/FATAL --start--> STARTING --startsecs elapsed--> RUNNING
    STARTING --exit--> BACKOFF --delay--> STARTING     (a failed start; after startretries
                       BACKOFF ... --------> FATAL       retries in a row: FATAL)
    RUNNING --exit--> BACKOFF --delay--> STARTING      (autorestart says restart)
    RUNNING --exit--> EXITED                           (autorestart says no)
    STARTING/RUNNING --stop--> STOPPING --ladder done--> STOPPED
    BACKOFF/EXITED/FATAL --stop--> STOPPED

``startretries = N``: N retries after a failed start, so the N+1-th failure in a row is FATAL
(supervisord's rule). The backoff delay starts at ``backoff_initial``, doubles per restart up
to ``backoff_max`` and is reset by a run that lasted ``backoff_reset_after`` seconds. FATAL
stays until a command with a higher generation starts the instance again.

Persistence: every state change but STARTING -> RUNNING (which a new agent derives from the
process's age and ``startsecs``) stores the state document, with the applied command and the
process record, through :class:`~botfleet.agent.layout.StateStore` (an append to
``.botfleet/state.log``), so a new agent can adopt the process (see :meth:`Instance.restore`).
The process record is stored as soon as the spawn returns to the event loop (a start command
spawns on a worker thread, :class:`~botfleet.agent.process.Spawner`; a restart on the loop's
own); a bot whose agent died in between is found by its output pipe
(:func:`~botfleet.agent.process.find_session_leader`). The
command's ``spec.files`` (a passivbot config is ~28 KB: 2.8 MB for 100 instances, against an
RSS target of 50 MB) live in ``.botfleet/files.<generation>.json`` only, written when the
command is applied (hard-linked from the previous generation's when they are the same: a
command that names them by ``files_digest`` only, or brings the same again) and read before
each start; a start writes them into the instance dir only where the file there differs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from botfleet.agent import process
from botfleet.agent.capture import OutputCapture
from botfleet.agent.layout import (
    InstancePaths,
    SpecError,
    StateStore,
    atomic_write_bytes,
    link_or_copy,
    read_json,
    render_spec,
    write_if_changed,
)
from botfleet.agent.logfile import OutputLog
from botfleet.protocol import (
    ApplyCommand,
    Autorestart,
    DesiredState,
    InstanceSnapshot,
    InstanceState,
    ProcessSpec,
    StateChange,
    files_digest,
)

__all__ = ["Instance", "InstanceContext", "MissingFiles"]

log = structlog.get_logger(__name__)
S = InstanceState
UP = (S.STARTING, S.RUNNING)


class MissingFiles(Exception):
    """A command to run an instance names its files by a digest this agent does not hold
    (``ApplyCommand.files_digest`` without ``spec.files``): the agent must ask for them."""


@dataclass(frozen=True, slots=True)
class InstanceContext:
    """What an instance needs from its supervisor."""

    emit: Callable[[StateChange], None]
    on_output: Callable[[OutputCapture], None]
    log_max_bytes: int
    log_backups: int
    queue_lines: int
    spawner: process.Spawner


class Instance:
    """One instance's state machine and process. Create it with :meth:`from_command` or
    :meth:`restore`; drive it with :meth:`converge` (serialised by a lock) and stop reading
    with :meth:`detach` (the process keeps running)."""

    def __init__(
        self,
        ctx: InstanceContext,
        paths: InstancePaths,
        command: ApplyCommand,
        store: StateStore | None = None,
    ) -> None:
        self.ctx = ctx
        self.paths = paths
        self.store = store or StateStore(paths)
        # The state document's command (``store`` given: restored) holds the files of its
        # generation on disk, if any; a new instance holds none until its command brings them.
        self.command = command if store else command.model_copy(update={"files_digest": None})
        self._old_files = True  # the next save removes other generations' files
        if store is None:
            self.set_command(command)
        self.state = S.STOPPED
        self.pid: int | None = None
        self.pgid: int | None = None
        self.proc_create_time: float | None = None
        self.started_at: datetime | None = None
        self.restart_count = 0
        self.exit_code: int | None = None
        self.exit_signal: str | None = None
        self._start_mono = 0.0
        self._fast_failures = 0
        self._delay: float | None = None
        self._pidfd = -1
        self._timer: asyncio.TimerHandle | None = None
        self._exit_waiter: asyncio.Future[process.Exit] | None = None
        self._lock = asyncio.Lock()
        self._loop = asyncio.get_running_loop()
        self.capture: OutputCapture | None = None

    # -- identity ------------------------------------------------------------------------------

    @property
    def instance_id(self) -> str:
        return self.command.instance_id

    @property
    def generation(self) -> int:
        return self.command.generation

    def snapshot(self) -> InstanceSnapshot:
        """The instance as the api sees it (announce)."""
        return InstanceSnapshot(
            instance_id=self.instance_id,
            generation=self.generation,
            desired=self.command.desired,
            state=self.state,
            pid=self.pid,
            started_at=self.started_at,
            restart_count=self.restart_count,
            exit_code=self.exit_code,
            exit_signal=self.exit_signal,
        )

    # -- persistence ---------------------------------------------------------------------------

    def set_command(self, command: ApplyCommand) -> None:
        """Take ``command`` as the one to converge to (call :meth:`save` next). Its
        ``spec.files`` go to ``files.<generation>.json`` and are not kept in memory; a command
        that names them by ``files_digest`` only takes the files held with that digest (the
        current generation's, linked). The command kept has no files and the digest of the
        files held for it (None: none; a command read back from the state document keeps its
        own).

        Raises:
            MissingFiles: a command to run names files this agent does not hold (nothing is
                changed; a stop that does goes on without files).
            OSError: the disk refused.
        """
        if command.spec.files:
            digest = files_digest(command.spec.files)
            if not self._take_held_files(command.generation, digest):
                data = json.dumps(command.spec.files, separators=(",", ":")).encode()
                atomic_write_bytes(self.paths.files(command.generation), data)
            spec = command.spec.model_copy(update={"files": {}})
            command = command.model_copy(update={"spec": spec, "files_digest": digest})
        elif command.files_digest is not None and not self._take_held_files(
                command.generation, command.files_digest):
            if command.desired == DesiredState.RUNNING:
                raise MissingFiles(f"no files with digest {command.files_digest} for instance "
                                   f"{command.instance_id} (generation {command.generation})")
            command = command.model_copy(update={"files_digest": None})
        if command.spec == self.command.spec:  # a start or stop of an unchanged spec: keep the
            # one in memory, so the parsed copy goes at once and leaves no holes among the
            # instances' lasting objects (idle agent after 100 creates and a bulk start: 48.0
            # MiB against 48.4, scripts/bench/agent_resources.py)
            command = command.model_copy(update={"spec": self.command.spec})
        self.command = command
        self._old_files = True

    def _take_held_files(self, generation: int, digest: str) -> bool:
        """Whether the current generation holds files with ``digest``; they are then linked
        to ``generation``'s (no data written). Raises OSError when the disk refuses."""
        if digest != self.command.files_digest or generation == self.generation:
            return False
        return link_or_copy(self.paths.files(generation), self.paths.files(self.generation))

    def _spec(self) -> ProcessSpec:
        """The spec with its files, for a start. Raises SpecError when the command names
        files that are not on disk."""
        path = self.paths.files(self.generation)
        files = read_json(path)
        if isinstance(files, dict) and files:
            return self.command.spec.model_copy(update={"files": files})
        if self.command.files_digest is not None:
            raise SpecError(f"the files of generation {self.generation} are missing: {path} "
                            "(a new start command from the api brings them again)")
        return self.command.spec

    def save(self) -> None:
        """Store the state document: the command, the state and the process record. Raises
        OSError when the disk refuses."""
        record: dict[str, Any] | None = None
        if self.pid is not None:
            record = {
                "pid": self.pid,
                "pgid": self.pgid,
                "create_time": self.proc_create_time,
                "started_at": self.started_at.isoformat() if self.started_at else None,
            }
        doc = {
            "command": self.command.model_dump(mode="json"),
            "state": self.state.value,
            "process": record,
            "restart_count": self.restart_count,
            "exit_code": self.exit_code,
            "exit_signal": self.exit_signal,
        }
        self.store.write(doc)
        if self._old_files:  # the state document now names the new generation
            self._old_files = False
            for path in self.paths.other_files(self.generation):
                path.unlink(missing_ok=True)

    def _set(self, new: InstanceState, reason: str, *, store: bool = True) -> None:
        old, self.state = self.state, new
        if store:
            self.save()
        event = StateChange(
            instance_id=self.instance_id,
            generation=self.generation,
            old=old,
            new=new,
            time=datetime.now(UTC),
            pid=self.pid,
            restart_count=self.restart_count,
            exit_code=self.exit_code,
            exit_signal=self.exit_signal,
            reason=reason,
        )
        log.info("instance state", instance_id=self.instance_id, old=old.value, new=new.value,
                 pid=self.pid, reason=reason)
        self.ctx.emit(event)

    # -- output --------------------------------------------------------------------------------

    def _capture(self) -> OutputCapture:
        if self.capture is None:
            output = OutputLog(self.paths.log_dir, self.ctx.log_max_bytes, self.ctx.log_backups)
            self.capture = OutputCapture(
                self.instance_id,
                self.paths.fifo,
                output,
                add_timestamps=self.command.spec.add_timestamps,
                queue_lines=self.ctx.queue_lines,
                on_output=self.ctx.on_output,
            )
        self.capture.add_timestamps = self.command.spec.add_timestamps
        self.capture.open()
        return self.capture

    # -- starting ------------------------------------------------------------------------------

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _may_start(self) -> bool:
        return self.command.desired == DesiredState.RUNNING and self.state not in (*UP, S.STOPPING)

    def _prepare(self) -> tuple[float, process.Command, int, int] | None:
        """What a spawn needs: ``startsecs``, the rendered command (its files written, then
        left out of it: a bulk start holds many prepared commands at once, and a passivbot
        config is ~28 KB) and the capture's (write end, read end) fds; the caller closes the
        write end after the spawn. None (and FATAL) when it cannot be prepared."""
        try:
            spec = self._spec()
            command = render_spec(spec, self.paths.dir)
            for path, text in command.files.items():
                write_if_changed(path, text.encode())
            wfd, rfd = self._capture().child_fds()
        except (SpecError, OSError) as exc:
            self.exit_code = self.exit_signal = None
            self._set(S.FATAL, f"cannot prepare the start: {exc}")
            return None
        return spec.startsecs, dataclasses.replace(command, files={}), wfd, rfd

    def _spawn(self, reason: str) -> None:
        """Start the process now, on the event loop's thread (a restart: from a timer or an
        exit callback)."""
        self._timer = None
        if not self._may_start() or (prepared := self._prepare()) is None:
            return
        startsecs, command, wfd, rfd = prepared
        try:
            spawned = process.spawn_timed(command, wfd, rfd)
        except OSError as exc:
            self._failed_start(f"cannot start {command.argv[0]!r}: {exc}")
            return
        finally:
            os.close(wfd)
        self._spawned(spawned, startsecs, reason)

    async def _start(self, reason: str) -> None:
        """Start the process on the spawner's threads (a start command: many may come at
        once, see :class:`~botfleet.agent.process.Spawner`)."""
        if not self._may_start() or (prepared := self._prepare()) is None:
            return
        startsecs, command, wfd, rfd = prepared
        future = self.ctx.spawner.submit(command, wfd, rfd)
        try:
            spawned = await asyncio.shield(future)
        except asyncio.CancelledError:
            # The agent is closing: the process starts anyway; record it (milliseconds away)
            # so that the next agent adopts it by its pid.
            with contextlib.suppress(OSError):
                self._spawned(await future, startsecs, reason)
            raise
        except OSError as exc:
            self._failed_start(f"cannot start {command.argv[0]!r}: {exc}")
            return
        finally:
            if future.done():
                os.close(wfd)
            else:  # cancelled again while waiting: the thread still uses it
                future.add_done_callback(lambda _: os.close(wfd))
        self._spawned(spawned, startsecs, reason)

    def _spawned(self, spawned: process.Spawned, startsecs: float, reason: str) -> None:
        """Record a new process as STARTING (stored before this returns). ``startsecs``
        count from the spawn's own time, also when the event loop got to this later."""
        self._watch(spawned.pid)
        self.proc_create_time = process.create_time(spawned.pid)
        self.started_at = datetime.fromtimestamp(spawned.wall, UTC)
        self._start_mono = spawned.mono
        self.exit_code = self.exit_signal = None
        self._set(S.STARTING, reason)
        remaining = startsecs - (time.monotonic() - self._start_mono)
        if remaining <= 0 < startsecs and process.has_exited(self._pidfd):
            return  # it did not last startsecs: its exit callback makes this a failed start
        self._arm_startsecs(remaining)

    def _watch(self, pid: int) -> None:
        self.pid = self.pgid = pid  # start_new_session: the bot leads its own group
        self._pidfd = os.pidfd_open(pid)
        self._loop.add_reader(self._pidfd, self._on_exit)

    def _arm_startsecs(self, remaining: float) -> None:
        if remaining <= 0:
            self._on_started()
        else:
            self._timer = self._loop.call_later(remaining, self._on_started)

    def _on_started(self) -> None:
        self._timer = None
        if self.state == S.STARTING:
            self._fast_failures = 0
            # Not stored: a new agent that finds STARTING derives RUNNING from the age of the
            # process (see _adopt), so the start of 100 bots costs 100 fewer writes.
            self._set(S.RUNNING, f"up for {self.command.spec.startsecs:g} s", store=False)

    def _next_delay(self) -> float:
        spec = self.command.spec
        delay = spec.backoff_initial if self._delay is None else self._delay * 2
        self._delay = min(delay, spec.backoff_max)
        return self._delay

    def _schedule_restart(self, reason: str) -> None:
        delay = self._next_delay()
        self.restart_count += 1
        self._set(S.BACKOFF, f"{reason}; next start in {delay:g} s")
        if delay <= 0:
            self._spawn("restart")
        else:
            self._timer = self._loop.call_later(delay, self._spawn, "backoff elapsed")

    def _failed_start(self, reason: str) -> None:
        self._fast_failures += 1
        retries = self.command.spec.startretries
        if self._fast_failures > retries:
            self._set(S.FATAL, f"{reason}; gave up after {self._fast_failures} failed starts "
                               f"in a row (startretries={retries})")
        else:
            self._schedule_restart(f"{reason} before startsecs")

    # -- exit ----------------------------------------------------------------------------------

    def _on_exit(self) -> None:
        pid, pgid = self.pid, self.pgid
        assert pid is not None and pgid is not None
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = -1
        stopping = self._exit_waiter is not None
        if not stopping:
            # Leftovers of the group (e.g. a worker the bot spawned) must not outlive it: the
            # next start would run them twice. The unreaped leader keeps the pgid reserved.
            process.signal_group(pgid, signal.SIGKILL)
        status = process.reap(pid)  # unknown (None, None) for an adopted process
        self.exit_code, self.exit_signal = status.code, status.signal
        self.pid = None
        ran = time.monotonic() - self._start_mono
        if self._exit_waiter is not None:
            if not self._exit_waiter.done():
                self._exit_waiter.set_result(status)
            return
        self._cancel_timer()
        spec = self.command.spec
        if self.state == S.STARTING:
            self._failed_start(status.reason)
            return
        if ran >= spec.backoff_reset_after:
            self._delay = None
        expected = status.code is not None and status.code in spec.exitcodes
        again = spec.autorestart == Autorestart.ALWAYS or (
            spec.autorestart == Autorestart.ON_FAILURE and not expected
        )
        if again and self.command.desired == DesiredState.RUNNING:
            self._schedule_restart(status.reason)
        else:
            word = "expected" if expected else "unexpected"
            self._set(S.EXITED, f"{status.reason} ({word}; autorestart={spec.autorestart.value})")

    # -- stopping ------------------------------------------------------------------------------

    async def _stop(self, reason: str) -> None:
        self._cancel_timer()
        if self.state in (S.BACKOFF, S.EXITED, S.FATAL):
            self._set(S.STOPPED, reason)
            return
        if self.state not in UP or self.pid is None or self.pgid is None:
            return
        pgid = self.pgid
        self._exit_waiter = self._loop.create_future()
        self._set(S.STOPPING, reason)
        sent: list[str] = []
        try:
            for number, step in enumerate(self.command.spec.stop_ladder):
                sig = _signal(step.signal)
                if not (await self._signal_soon(pgid, sig) if number == 0
                        else process.signal_group(pgid, sig)):
                    break
                sent.append(sig.name)
                if await self._wait_group(pgid, step.timeout):
                    break
            else:
                process.signal_group(pgid, signal.SIGKILL)
                sent.append("SIGKILL (ladder exhausted)")
                await self._wait_group(pgid, 10.0)
        finally:
            waiter, self._exit_waiter = self._exit_waiter, None
        if not waiter.done():  # only when the leader outlived even SIGKILL (uninterruptible)
            log.error("process did not exit after SIGKILL", instance_id=self.instance_id,
                      pid=self.pid)
        ended = process.Exit(self.exit_code, self.exit_signal).reason
        self._set(S.STOPPED, f"{reason}: sent {' -> '.join(sent) or 'nothing'}; {ended}")

    async def _signal_soon(self, pgid: int, sig: signal.Signals) -> bool:
        """Send ``sig`` to group ``pgid`` from a loop callback, i.e. after every task step of
        this loop iteration: the stops begun together (a SyncCommand's) first store STOPPING,
        then signal their bots back to back. Interleaved, each signal woke a bot that then
        competed with the agent for the cores: a Supervisor alone stopping 100 ``python -S``
        sleepers sent the last SIGINT 0.16-0.26 s after the first (17-19 ms of agent CPU); now
        4-12 ms after it at load 4-5, 20-100 ms at load 6-10 (a woken bot can still preempt
        the agent inside ``killpg``). A cancel of the waiting task does not withdraw the signal (STOPPING
        is stored; a next agent would finish the stop anyway). Returns
        :func:`process.signal_group`'s result."""
        result: asyncio.Future[bool] = self._loop.create_future()

        def send() -> None:
            sent = process.signal_group(pgid, sig)
            if not result.done():
                result.set_result(sent)

        self._loop.call_soon(send)
        return await result

    async def _wait_group(self, pgid: int, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the leader to exit and then the rest of its group."""
        assert self._exit_waiter is not None
        deadline = time.monotonic() + timeout
        try:
            await asyncio.wait_for(asyncio.shield(self._exit_waiter), timeout)
        except TimeoutError:
            return False
        while process.group_alive(pgid):  # grandchildren: a short poll, only while stopping
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    # -- commands ------------------------------------------------------------------------------

    async def converge(self, restart: bool = False) -> None:
        """Make the process match ``self.command`` (desired state), restarting it first when
        ``restart``. Serialised: a second call waits for the first."""
        async with self._lock:
            if restart and self.state in (*UP, S.BACKOFF):
                await self._stop("restart requested")
            if self.command.desired == DesiredState.RUNNING:
                if self.state in (S.STOPPED, S.EXITED, S.FATAL, S.BACKOFF):
                    self._cancel_timer()
                    self._fast_failures = 0
                    self._delay = None
                    self.restart_count = 0
                    await self._start("start requested")
            else:
                await self._stop("stop requested")

    async def remove(self) -> None:
        """Stop the process if needed and stop capturing (the caller deletes the files)."""
        async with self._lock:
            await self._stop("instance removed")
            self.detach()

    def detach(self) -> None:
        """Stop watching and reading without touching the process (agent shutdown)."""
        self._cancel_timer()
        if self._pidfd >= 0:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1
        if self.capture is not None:
            self.capture.close()
            self.capture = None

    # -- agent restart -------------------------------------------------------------------------

    def restore(self, doc: dict[str, Any]) -> tuple[bool, bool]:
        """Take over from a previous agent's state document. A recorded process that
        is still the same one (pid alive, not a zombie, same create time) is adopted: watched
        with a pidfd, its FIFO re-opened, never restarted. Returns ``(converge, restart)``:
        whether the caller should :meth:`converge` (a process to start again, or to stop) and
        with ``restart`` (a restart that the previous agent had begun: STOPPING, desired
        running)."""
        recorded = self.state = S(doc.get("state", "STOPPED"))
        self.restart_count = int(doc.get("restart_count") or 0)
        self.exit_code, self.exit_signal = doc.get("exit_code"), doc.get("exit_signal")
        record = doc.get("process")
        running = self.command.desired == DesiredState.RUNNING
        adopted = bool(record) and self._adopt(record)
        if not adopted and (running or self.state in (*UP, S.BACKOFF, S.STOPPING)):
            adopted = self._adopt_unrecorded()
        if adopted:
            if running and recorded == S.STOPPING:
                return True, True
            return not running, False
        if self.state in (*UP, S.BACKOFF, S.STOPPING):
            gone = f"pid {record['pid']} ended" if record else "no process"
            self.pid = None
            self.exit_code = self.exit_signal = None
            self._set(S.EXITED, f"{gone} while the agent was down (exit code unknown)")
            return running, False
        return False, False

    def _adopt_unrecorded(self) -> bool:
        """Adopt a bot that the previous agent started but was killed before it recorded
        the pid (invariant 1: never a second copy): found by its stdout, this instance's
        FIFO."""
        pid = process.find_session_leader(self.paths.fifo)
        started = process.create_time(pid) if pid is not None else None
        if pid is None or started is None:
            return False
        log.warning("found a running bot whose start was not recorded; adopting it",
                    instance_id=self.instance_id, pid=pid)
        return self._adopt({"pid": pid, "create_time": started,
                            "started_at": datetime.fromtimestamp(started, UTC).isoformat()})

    def _adopt(self, record: dict[str, Any]) -> bool:
        pid, started = int(record["pid"]), record.get("create_time")
        if started is None or not process.is_same_process(pid, float(started)):
            return False
        try:
            self._watch(pid)
        except ProcessLookupError:
            return False
        if not process.is_same_process(pid, float(started)):  # reused before pidfd_open
            self.detach()
            self.pid = None
            return False
        self.proc_create_time = float(started)
        self.started_at = datetime.fromisoformat(record["started_at"]) if record.get(
            "started_at") else None
        up_for = time.time() - float(started)
        self._start_mono = time.monotonic() - up_for
        self._capture()
        old = self.state
        if old == S.STARTING and up_for < self.command.spec.startsecs:
            self.state = S.STARTING
            self._arm_startsecs(self.command.spec.startsecs - up_for)
        else:
            if old == S.STARTING:  # RUNNING is not stored (see _on_started): it was RUNNING
                old = S.RUNNING
            self.state = S.RUNNING
        reason = f"adopted pid {pid} after an agent restart"
        log.info("instance adopted", instance_id=self.instance_id, pid=pid)
        if old != self.state:
            self.state, new = old, self.state
            self._set(new, reason)
        else:
            self.save()
        return True


def _signal(name: str) -> signal.Signals:
    try:
        upper = name.upper()
        return signal.Signals[upper if upper.startswith("SIG") else f"SIG{upper}"]
    except KeyError:
        log.error("unknown signal in stop ladder, using SIGTERM", signal=name)
        return signal.SIGTERM
