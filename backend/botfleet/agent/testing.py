"""Helpers for tests and benchmarks of the agent (real processes, no mocks).

- :class:`Recorder`: an ``on_event`` callback that keeps every StateChange and lets a test
  wait for one (``await rec.wait_for(...)``, generous deadline, no fixed sleeps).
- :func:`python_bot`: an argv running a small Python program with the agent's interpreter.
- ``python -m botfleet.agent.testing STATE_DIR [COMMAND_JSON ...]``: a stand-alone agent
  without a link (a Supervisor in its own process) that applies the given commands and prints
  each StateChange as a JSON line on stdout; kill it with SIGKILL to test adoption.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

from botfleet.protocol import InstanceState, StateChange

__all__ = ["Recorder", "python_bot"]


def python_bot(code: str, *args: str) -> list[str]:
    """``["{python}", "-c", code, *args]``: the agent replaces ``{python}`` with its own
    interpreter."""
    return ["{python}", "-c", code, *args]


class Recorder:
    """Collects StateChange events; use the instance as ``on_event``."""

    def __init__(self) -> None:
        self.events: list[StateChange] = []
        self._changed = asyncio.Event()

    def __call__(self, event: StateChange) -> None:
        self.events.append(event)
        self._changed.set()

    def states(self, instance_id: str) -> list[InstanceState]:
        """The sequence of new states of one instance."""
        return [e.new for e in self.events if e.instance_id == instance_id]

    async def wait_for(
        self,
        predicate: Callable[[StateChange], bool],
        *,
        after: int = 0,
        timeout: float = 20.0,
    ) -> StateChange:
        """The first event at index >= ``after`` matching ``predicate``, waiting up to
        ``timeout`` seconds. Raises TimeoutError with the events seen."""
        deadline = asyncio.get_running_loop().time() + timeout
        index = after
        while True:
            while index < len(self.events):
                if predicate(self.events[index]):
                    return self.events[index]
                index += 1
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                seen = [(e.instance_id, e.new.value, e.reason) for e in self.events[after:]]
                raise TimeoutError(f"no matching state change within {timeout} s; seen: {seen}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    async def wait_state(
        self, instance_id: str, state: InstanceState, *, after: int = 0, timeout: float = 20.0
    ) -> StateChange:
        """:meth:`wait_for` the instance entering ``state``."""
        return await self.wait_for(
            lambda e: e.instance_id == instance_id and e.new == state, after=after,
            timeout=timeout,
        )


async def _standalone(state_dir: Path, commands: list[str]) -> None:
    from pydantic import TypeAdapter

    from botfleet.agent.supervisor import Supervisor
    from botfleet.logs import configure_logging
    from botfleet.protocol import Command
    from botfleet.settings import AgentSettings

    configure_logging()  # to stderr: stdout carries the events

    def emit(event: StateChange) -> None:
        sys.stdout.write(event.model_dump_json() + "\n")
        sys.stdout.flush()

    supervisor = Supervisor(state_dir, AgentSettings(agent_state_dir=state_dir), on_event=emit)
    await supervisor.start()
    adapter: TypeAdapter[object] = TypeAdapter(Command)
    for text in commands:
        await supervisor.apply(adapter.validate_json(text))  # type: ignore[arg-type]
    sys.stdout.write('{"ready": true}\n')
    sys.stdout.flush()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_standalone(Path(sys.argv[1]), sys.argv[2:]))
