"""The supervision core of an agent, usable without the dial-in link (tests, benchmarks).

Usage::

    sup = Supervisor(settings.state_dir, settings, on_event=events.append)
    await sup.start()                       # adopt what a previous agent left running
    await sup.apply(ApplyCommand(...))      # fenced by generation
    sup.snapshot()                          # list[InstanceSnapshot]
    sup.take_logs(5000)                     # list[LogLines] for the api
    await sup.close()                       # stop watching; bots keep running

Everything runs on one asyncio event loop; create and use a Supervisor inside it.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import structlog

from botfleet.agent import process
from botfleet.agent.capture import OutputCapture
from botfleet.agent.credentials import Credentials
from botfleet.agent.instance import Instance, InstanceContext, MissingFiles
from botfleet.agent.layout import SpecError, StateLayout, StateStore, atomic_write_json, read_json
from botfleet.protocol import (
    ApplyCommand,
    Command,
    CredentialsCommand,
    DesiredState,
    InstanceSnapshot,
    LogLines,
    RemoveCommand,
    StateChange,
    SyncCommand,
)
from botfleet.settings import AgentSettings

__all__ = ["Supervisor"]

_Event = TypeVar("_Event")  # LogLines or its JSON (bytes)

log = structlog.get_logger(__name__)


class Supervisor:
    """Supervises this host's instances as subprocesses.

    ``state_dir``: where state, instance dirs and logs live (layout in
    :mod:`botfleet.agent.layout`). ``settings``: log rotation (``log_max_bytes``,
    ``log_backups``). ``on_event``: called synchronously on the event loop with every
    :class:`~botfleet.protocol.StateChange` (must not block). ``on_output``: called when an
    instance's stream queue goes from empty to non-empty (then call :meth:`take_logs`).
    ``queue_lines``: stream queue bound per instance (lines); beyond it lines are only on disk
    and counted in ``LogLines.dropped``. ``on_settled``: called when an instance leaves
    STOPPING and none is left in it (the last of a burst of stops has ended: what waits to be
    reported need not wait for more).

    ``files_wanted`` turns True when a command to run named files this agent does not hold
    (``ApplyCommand.files_digest``; the command was not taken): the link announces again, and
    the api's answer, the host's full state, brings them. The link resets it.
    """

    def __init__(
        self,
        state_dir: Path,
        settings: AgentSettings,
        on_event: Callable[[StateChange], None] | None = None,
        *,
        on_output: Callable[[], None] | None = None,
        on_settled: Callable[[], None] | None = None,
        queue_lines: int = 20_000,
    ) -> None:
        self.layout = StateLayout(Path(state_dir).resolve())
        self.settings = settings
        self._on_event = on_event
        self._on_output = on_output
        self._on_settled = on_settled
        #: Captures whose stream queue may hold lines (an ordered set): take_logs looks at
        #: these only, not at every instance.
        self._busy: dict[OutputCapture, None] = {}
        self._ctx = InstanceContext(
            emit=self._emit,
            on_output=self._output_ready,
            log_max_bytes=settings.log_max_bytes,
            log_backups=settings.log_backups,
            queue_lines=queue_lines,
            spawner=process.Spawner(),
        )
        self.instances: dict[str, Instance] = {}
        self._removed: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.files_wanted = False
        self.credentials = Credentials(self.layout, settings)  # the host's api-keys.json

    def _emit(self, event: StateChange) -> None:
        if self._on_event is not None:
            self._on_event(event)
        if (self._on_settled is not None and event.old == "STOPPING" and event.new != "STOPPING"
                and not any(i.state == "STOPPING" for i in self.instances.values())):
            self._on_settled()

    def _output_ready(self, capture: OutputCapture) -> None:
        self._busy[capture] = None
        if self._on_output is not None:
            self._on_output()

    def _spawn_task(self, coro: object, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("instance task failed", task=task.get_name(), exc_info=task.exception())

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the state dir and take over: adopt live processes (same pids, never
        restarted), start instances whose desired state is running but whose process is gone,
        finish stops that a previous agent had begun."""
        self.layout.root.mkdir(parents=True, exist_ok=True)
        removed = read_json(self.layout.removed_file)
        self._removed = {str(k): int(v) for k, v in removed.items()} if isinstance(
            removed, dict) else {}
        for instance_id in self.layout.known_instance_ids():
            paths = self.layout.instance(instance_id)
            store = StateStore(paths)
            doc = store.read()
            try:
                command = ApplyCommand.model_validate(doc["command"])  # type: ignore[index]
            except (KeyError, TypeError, ValueError) as exc:
                log.error("unreadable instance state, ignored", instance_id=instance_id,
                          path=str(paths.state_log), error=str(exc))
                continue
            try:
                instance = Instance(self._ctx, paths, command, store)
            except OSError as exc:
                log.error("instance state not taken over", instance_id=instance_id,
                          error=str(exc))
                continue
            self.instances[instance_id] = instance
            converge, restart = instance.restore(doc)  # type: ignore[arg-type]
            if converge:
                self._spawn_task(instance.converge(restart), f"converge {instance_id}")
        log.info("supervisor started", instances=len(self.instances),
                 running=sum(1 for i in self.instances.values() if i.pid is not None))

    async def close(self) -> None:
        """Stop supervising: cancel pending work, read what the pipes hold, close fds. Bots
        keep running (a stop ladder in progress is left to the next agent, which finishes
        it)."""
        self._closed = True
        self.credentials.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._ctx.spawner.close()
        for instance in self.instances.values():
            instance.detach()

    # -- commands ------------------------------------------------------------------------------

    async def apply(self, command: ApplyCommand | RemoveCommand | SyncCommand | Command) -> bool:
        """Take one command. Fencing (DESIGN.md invariant 1): an Apply/Remove whose generation
        is not strictly greater than the one stored for its instance is ignored, so repeated
        syncs are no-ops. A SyncCommand applies each listed instance under the same rule and
        leaves unlisted ones alone. Returns True when something was accepted.

        The command is stored before this returns; the process work (start, stop ladder)
        continues in a task per instance, in order; watch ``on_event`` for its outcome.
        Raises RuntimeError after :meth:`close`."""
        if self._closed:
            raise RuntimeError("supervisor is closed")
        if isinstance(command, CredentialsCommand):
            return await self.credentials.apply(command)
        if isinstance(command, SyncCommand):
            accepted = False
            for item in command.instances:
                accepted = self._apply_one(item) or accepted
            return accepted
        if isinstance(command, RemoveCommand):
            return self._remove(command)
        return self._apply_one(command)

    def _apply_one(self, command: ApplyCommand) -> bool:
        instance = self.instances.get(command.instance_id)
        have = instance.generation if instance else self._removed.get(command.instance_id, -1)
        if command.generation <= have:
            log.debug("command ignored (generation)", instance_id=command.instance_id,
                      generation=command.generation, have=have)
            return False
        try:
            paths = self.layout.instance(command.instance_id)
        except SpecError as exc:
            log.error("command refused", error=str(exc))
            return False
        try:
            if instance is None:
                paths.agent_dir.mkdir(parents=True, exist_ok=True)
                instance = Instance(self._ctx, paths, command)
                self.instances[command.instance_id] = instance
                self._removed.pop(command.instance_id, None)
            else:
                instance.set_command(command)
        except MissingFiles as exc:
            log.warning("command names files this agent does not hold; asking for them",
                        error=str(exc))
            self.files_wanted = True
            return False
        instance.save()
        log.info("command applied", instance_id=command.instance_id,
                 generation=command.generation, desired=command.desired.value,
                 restart=command.restart)
        self._spawn_task(self._converge(instance, command.restart), f"converge {command.instance_id}")
        return True

    async def _converge(self, instance: Instance, restart: bool) -> None:
        if instance.command.desired == DesiredState.RUNNING:
            await self.credentials.settled()  # the api-keys.json asked for before this start
        await instance.converge(restart)

    def _remove(self, command: RemoveCommand) -> bool:
        instance = self.instances.get(command.instance_id)
        if instance is None or command.generation <= instance.generation:
            return False
        del self.instances[command.instance_id]
        self._removed[command.instance_id] = command.generation
        atomic_write_json(self.layout.removed_file, self._removed)
        self._spawn_task(self._remove_instance(instance), f"remove {command.instance_id}")
        return True

    async def _remove_instance(self, instance: Instance) -> None:
        await instance.remove()
        if instance.instance_id not in self.instances:  # not created again meanwhile
            shutil.rmtree(instance.paths.dir, ignore_errors=True)
        log.info("instance removed (logs kept)", instance_id=instance.instance_id,
                 logs=str(instance.paths.log_dir))

    # -- reading -------------------------------------------------------------------------------

    def snapshot(self) -> list[InstanceSnapshot]:
        """Every instance's state now, sorted by id."""
        return [self.instances[k].snapshot() for k in sorted(self.instances)]

    def take_logs(self, max_lines: int) -> list[LogLines]:
        """Pop up to ``max_lines`` queued output lines over all instances (fair: each gets a
        share), as LogLines events."""

        def take(capture: OutputCapture, n: int) -> tuple[list[LogLines], int]:
            got = capture.take(n)
            return got, sum(len(e.lines) for e in got)

        return self._take_fair(max_lines, take)

    def take_logs_json(self, max_lines: int) -> list[bytes]:
        """As :meth:`take_logs`, each LogLines event already as JSON
        (:func:`botfleet.protocol.encode_log_lines`): what the link sends."""
        return self._take_fair(max_lines, OutputCapture.take_json)

    def _take_fair(self, max_lines: int,
                   take: Callable[[OutputCapture, int], tuple[list[_Event], int]]) -> list[_Event]:
        """Up to ``max_lines`` lines over the captures with queued output, each a share in
        turn; ``take(capture, n)`` pops up to ``n`` lines as events and says how many."""
        busy = [c for c in self._busy if c.pending or c.dropped]
        events: list[_Event] = []
        while busy and max_lines > 0:
            share = max(1, max_lines // len(busy))
            for capture in busy:
                got, taken = take(capture, min(share, max_lines))
                events.extend(got)
                max_lines -= taken
            busy = [c for c in busy if c.pending and max_lines > 0]
        self._busy = {c: None for c in self._busy if c.pending or c.dropped}
        return events

    @property
    def logs_pending(self) -> int:
        """Lines waiting in all stream queues."""
        return sum(c.pending for c in self._busy)
