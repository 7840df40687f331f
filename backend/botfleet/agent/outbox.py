"""Events waiting for the api, and when the next batch of them goes (:class:`Batching`).

The agent's idle CPU is mostly wake-ups: reading the bots' pipes (one per line at 1 line/s
per bot) and sending batches. A batch therefore goes, where it can, on a wake-up the agent
has anyway: when output arrives and the oldest waiting event has waited ``early`` seconds.
Only when nothing arrives does a timer send it, ``max_wait`` after its oldest event.
"""

from __future__ import annotations

import asyncio
from collections import deque

from botfleet.protocol import MetricsEvent, StateChange

__all__ = ["Batching", "Outbox"]


class Batching:
    """When the next event batch goes (seconds, on the event loop's clock).

    - ``quiet``: the first event after this long without a batch goes at once (a lone line
      is not held back);
    - ``early``: an event arriving when the oldest waiting one has waited this long sends the
      batch (on the wake-up that event caused);
    - ``max_wait``: otherwise a timer sends the batch this long after its oldest event.

    The line -> SSE client budget is 50 ms p99 (issue 2); the api's hop takes a few ms.
    Output is read every ``capture.COALESCE`` (30 ms) while it flows; ``quiet`` below that
    sends each such read's lines at once (the read already waited), while state changes
    closer together than ``quiet`` still share a batch.
    Raises ValueError unless 0 <= early <= max_wait.
    """

    def __init__(self, max_wait: float = 0.03, quiet: float = 0.025, early: float = 0.02) -> None:
        if not 0 <= early <= max_wait:
            raise ValueError(f"need 0 <= early ({early}) <= max_wait ({max_wait})")
        self.max_wait, self.quiet, self.early = max_wait, quiet, early

    def send_at(self, oldest: float, last_send: float) -> float:
        """The latest time to send a batch whose oldest event arrived at ``oldest``, the
        previous batch having gone at ``last_send``."""
        return oldest if oldest - last_send >= self.quiet else oldest + self.max_wait

    def send_now(self, oldest: float, now: float) -> bool:
        """Whether an event arriving at ``now`` sends the batch whose oldest event arrived at
        ``oldest``."""
        return now - oldest >= self.early


class Outbox:
    """Events waiting for the api. ``add_state`` and ``wake`` are the supervisor's
    ``on_event``/``on_output`` callbacks (synchronous, never blocking); the link awaits
    :meth:`due` and then takes what waits. ``since``: when the oldest waiting event arrived
    (event loop clock; None when nothing waits). Create it inside the running event loop."""

    def __init__(self, batching: Batching | None = None) -> None:
        self.batching = batching or Batching()
        self.states: deque[StateChange] = deque()
        self.metrics: MetricsEvent | None = None
        self.since: float | None = None
        self.last_send = float("-inf")
        self._due = False
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    def add_state(self, event: StateChange) -> None:
        self.states.append(event)
        self.wake()

    def set_metrics(self, event: MetricsEvent) -> None:
        self.metrics = event
        self.wake()

    def wake(self) -> None:
        """Something new waits (output of a bot, a state change, metrics)."""
        if self._due:
            return
        now = self._loop.time()
        if self.since is None:
            self.since = now
            at = self.batching.send_at(now, self.last_send)
            if at <= now:
                self._fire()
            else:
                self._timer = self._loop.call_at(at, self._fire)
        elif self.batching.send_now(self.since, now):
            self._fire()

    def flush(self) -> None:
        """Whatever waits is due at once (the supervisor says no change is coming soon: the
        last stop of a burst has ended), instead of at the timer up to ``max_wait`` later."""
        if self.since is not None and not self._due:
            self._fire()

    def more(self) -> None:
        """More waits than one batch took: the next batch is due at once."""
        self.since = self._loop.time()
        self._fire()

    def _fire(self) -> None:
        self._due = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def due(self, deadline: float, *, peek: bool = False) -> bool:
        """Wait until a batch is due (True) or the loop clock reaches ``deadline`` (False).
        Unless ``peek``, a True also starts the next batch: the caller takes what waits."""
        if not self._due:
            self._waiter = self._loop.create_future()
            try:
                async with asyncio.timeout_at(deadline if deadline != float("inf") else None):
                    await self._waiter
            except TimeoutError:
                return False
            finally:
                self._waiter = None
        if not peek:
            self._due = False
            self.since = None
            self.last_send = self._loop.time()
        return True
