"""The agent's dial-in link to the api (protocol in :mod:`botfleet.protocol`).

Over two keep-alive HTTP/1.1 connections (:class:`~botfleet.agent.http.HttpConnection`,
``Authorization: Bearer <token>``): one for announce and event batches, one for the command
stream.

- announce: ``POST /api/v1/agent/announce`` with a snapshot; retried with backoff (a 401, a
  wrong token, is logged as such and retried every 30 s). Done at start and whenever the api
  asks for it (401/409) or could not be reached.
- commands: ``GET /api/v1/agent/commands`` (SSE) with ``Last-Event-ID`` = the last command id
  handled in this process (after the first announce: ``AnnounceReply.resume_from``); each
  ``command`` event is applied to the :class:`~botfleet.agent.supervisor.Supervisor`.
  Reconnects with jittered backoff (cap 5 s). A 409 (position unknown to the api) re-announces
  and resumes from the new ``resume_from``; a 401 re-announces and keeps the position.
- events: ``POST /api/v1/agent/events`` with :class:`~botfleet.protocol.EventBatch` es, at
  most one in flight, capped at ``BATCH_LINES`` log lines. When to send (:class:`Batching`):
  at once after a quiet spell, else once the oldest waiting event has waited ``max_wait``
  seconds, so a busy host sends a few dozen batches a second and no line waits longer than
  that (or than the batch before it took). A failed batch is retried as is (same ``seq``).
  State changes wait in an unbounded queue until a batch holding them is acknowledged; log
  lines wait in the supervisor's bounded queues (overflow counted as ``dropped``); metrics keep
  only the latest.

Bots never wait for any of this (invariant 3).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import deque

import structlog
from pydantic import TypeAdapter, ValidationError

import botfleet
from botfleet.agent.http import HttpConnection, HttpError
from botfleet.agent.metrics import host_metrics
from botfleet.agent.sse import SSEDecoder
from botfleet.agent.supervisor import Supervisor
from botfleet.protocol import (
    AgentEvent,
    Announce,
    AnnounceReply,
    Command,
    EventBatch,
    EventBatchReply,
    MetricsEvent,
    StateChange,
)
from botfleet.settings import AgentSettings

__all__ = ["BATCH_LINES", "Backoff", "Batching", "Link", "Outbox"]

log = structlog.get_logger(__name__)

BATCH_LINES = 5_000
BATCH_STATES = 1_000
UNAUTHORIZED_RETRY = 30.0
COMMAND_READ_TIMEOUT = 60.0  # the api pings every 15 s
_COMMAND = TypeAdapter(Command)


class Backoff:
    """Exponential reconnect delays with jitter: ``initial`` doubling up to ``cap`` seconds,
    each multiplied by a random factor in [0.5, 1]; :meth:`reset` after a success."""

    def __init__(self, initial: float = 0.1, cap: float = 5.0) -> None:
        self.initial, self.cap, self._n = initial, cap, 0

    def next(self) -> float:
        delay = min(self.cap, self.initial * 2**self._n)
        self._n += 1
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self._n = 0


class Batching:
    """When the next event batch goes (times in seconds, on the event loop's clock).

    ``quiet``: the first event after this long without a send goes at once (a lone line is
    not held back). Otherwise the batch goes ``max_wait`` after its oldest event arrived, so
    a steady flow is sent in batches (fewer POSTs: each costs the agent far more CPU than a
    line) and no event waits longer than ``max_wait`` (or than the batch in flight takes).
    The line -> SSE client budget is 50 ms p99 and the api's own hop takes most of the rest.
    """

    def __init__(self, max_wait: float = 0.025, quiet: float = 0.1) -> None:
        self.max_wait, self.quiet = max_wait, quiet

    def send_at(self, oldest: float, last_send: float) -> float:
        """When to send a batch whose oldest event arrived at ``oldest``, the previous batch
        having been sent at ``last_send``."""
        return oldest if oldest - last_send >= self.quiet else oldest + self.max_wait


class Outbox:
    """Events waiting for the api. ``add_state`` and ``wake`` are the supervisor's
    ``on_event``/``on_output`` callbacks. ``since``: when the oldest waiting event arrived
    (event loop clock; None when nothing waits). Create it inside the running event loop."""

    def __init__(self) -> None:
        self.states: deque[StateChange] = deque()
        self.metrics: MetricsEvent | None = None
        self.since: float | None = None
        self.ready = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def add_state(self, event: StateChange) -> None:
        self.states.append(event)
        self.wake()

    def wake(self) -> None:
        if self.since is None:
            self.since = self._loop.time()
            self.ready.set()

    def set_metrics(self, event: MetricsEvent) -> None:
        self.metrics = event
        self.wake()


class _Reannounce(Exception):
    def __init__(self, reason: str, *, reset_position: bool = False) -> None:
        super().__init__(reason)
        self.reset_position = reset_position


class Link:
    """Runs the dial-in loops until cancelled. ``run_id`` is fresh per Link (per agent
    process); ``last_command_id`` is the resume position of the command stream."""

    def __init__(
        self,
        settings: AgentSettings,
        supervisor: Supervisor,
        outbox: Outbox,
        *,
        batching: Batching | None = None,
    ) -> None:
        self.settings = settings
        self.batching = batching or Batching()
        self.supervisor = supervisor
        self.outbox = outbox
        self.run_id = uuid.uuid4().hex
        self.host_id: str | None = None
        self.last_command_id: str | None = None
        self._seq = 0
        self._inflight: EventBatch | None = None
        self._announced = asyncio.Event()
        self._announce_wanted = asyncio.Event()
        self._announce_wanted.set()

    async def run(self) -> None:
        """Announce, follow commands, send events and metrics, forever (cancel to stop)."""
        token = self.settings.agent_token.strip()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if not token:
            log.error("BOTFLEET_AGENT_TOKEN is not set: the api will refuse this agent until "
                      "it is (the host's token is shown when the host is created)")
        posts = HttpConnection(self.settings.api_url, headers)
        stream = HttpConnection(self.settings.api_url, headers)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._announce_loop(posts), name="announce")
                group.create_task(self._command_loop(stream), name="commands")
                group.create_task(self._event_loop(posts), name="events")
                group.create_task(self._metrics_loop(), name="metrics")
        finally:
            posts.close()
            stream.close()

    def _reannounce(self, reason: str, *, reset_position: bool = False) -> None:
        if self._announced.is_set():
            log.warning("announcing again", reason=reason)
        self._announced.clear()
        if reset_position:
            self.last_command_id = None
        self._announce_wanted.set()

    # -- announce ------------------------------------------------------------------------------

    async def _announce_loop(self, conn: HttpConnection) -> None:
        backoff = Backoff(0.2, 5.0)
        while True:
            await self._announce_wanted.wait()
            body = Announce(
                host=self.settings.agent_host,
                agent_version=botfleet.__version__,
                run_id=self.run_id,
                instances_dir=str(self.supervisor.layout.instances_dir),
                instances=self.supervisor.snapshot(),
                metrics=host_metrics(self.supervisor.layout.root),
            )
            try:
                status, content = await conn.request(
                    "POST", "/api/v1/agent/announce", body.model_dump_json().encode())
            except HttpError as exc:
                delay = backoff.next()
                log.warning("api unreachable", url=self.settings.api_url, error=str(exc),
                            retry_in=round(delay, 2))
                await asyncio.sleep(delay)
                continue
            if status == 401:
                log.error("api refused the agent token (401): check BOTFLEET_AGENT_TOKEN for "
                          "this host", host=self.settings.agent_host, retry_in=UNAUTHORIZED_RETRY)
                await asyncio.sleep(UNAUTHORIZED_RETRY)
                continue
            if status != 200:
                delay = backoff.next()
                log.warning("announce failed", status=status,
                            body=content[:500].decode(errors="replace"), retry_in=round(delay, 2))
                await asyncio.sleep(delay)
                continue
            reply = AnnounceReply.model_validate_json(content)
            backoff.reset()
            self.host_id = reply.host_id
            if self.last_command_id is None:
                self.last_command_id = reply.resume_from
            self._announce_wanted.clear()
            self._announced.set()
            log.info("announced", host_id=reply.host_id, run_id=self.run_id,
                     resume_from=self.last_command_id)

    # -- commands ------------------------------------------------------------------------------

    async def _command_loop(self, conn: HttpConnection) -> None:
        backoff = Backoff(0.1, 5.0)
        while True:
            await self._announced.wait()
            try:
                reason = await self._follow_commands(conn, backoff)
            except _Reannounce as exc:
                self._reannounce(str(exc), reset_position=exc.reset_position)
                continue
            except HttpError as exc:
                reason = str(exc)
                self._reannounce(f"api unreachable: {exc}")
            delay = backoff.next()
            log.info("command stream reconnecting", reason=reason, retry_in=round(delay, 2))
            await asyncio.sleep(delay)

    async def _follow_commands(self, conn: HttpConnection, backoff: Backoff) -> str:
        """Follow the stream until it ends; returns why. Raises HttpError, _Reannounce."""
        headers = [("Accept", "text/event-stream"), ("Cache-Control", "no-store")]
        if self.last_command_id:
            headers.append(("Last-Event-ID", self.last_command_id))
        try:
            status = await conn.open("GET", "/api/v1/agent/commands", headers)
            if status in (401, 409):
                raise _Reannounce(f"command stream answered {status}",
                                  reset_position=status == 409)
            if status != 200:
                return f"command stream answered {status}"
            backoff.reset()
            log.info("following commands", last_id=self.last_command_id)
            decoder = SSEDecoder()
            while (chunk := await conn.receive(COMMAND_READ_TIMEOUT)) is not None:
                for sse in decoder.feed(chunk):
                    if sse.event != "command":
                        continue
                    try:
                        command = _COMMAND.validate_json(sse.data)
                    except ValidationError as exc:
                        log.error("unreadable command skipped", id=sse.id, error=str(exc))
                    else:
                        await self.supervisor.apply(command)
                    if sse.id:
                        self.last_command_id = sse.id
            return "command stream ended"
        finally:
            conn.close()  # a stream is not reused: the next one opens a new connection

    # -- events --------------------------------------------------------------------------------

    def _build_batch(self) -> EventBatch | None:
        outbox = self.outbox
        outbox.since = None
        events: list[AgentEvent] = []
        states = outbox.states
        while states and len(events) < BATCH_STATES:
            events.append(states.popleft())
        if outbox.metrics is not None:
            events.append(outbox.metrics)
            outbox.metrics = None
        events.extend(self.supervisor.take_logs(BATCH_LINES))
        if states or self.supervisor.logs_pending:
            outbox.wake()  # more than one batch holds: the rest goes next
        if not events:
            return None
        self._seq += 1
        return EventBatch.model_construct(run_id=self.run_id, seq=self._seq, events=events)

    async def _event_loop(self, conn: HttpConnection) -> None:
        backoff = Backoff(0.1, 5.0)
        loop = asyncio.get_running_loop()
        outbox = self.outbox
        last_send = float("-inf")
        while True:
            if self._inflight is None:
                if outbox.since is None:
                    outbox.ready.clear()
                    await outbox.ready.wait()
                    continue
                wait = self.batching.send_at(outbox.since, last_send) - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._inflight = self._build_batch()
                if self._inflight is None:
                    continue
            await self._announced.wait()
            last_send = loop.time()
            try:
                status, content = await conn.request(
                    "POST", "/api/v1/agent/events", self._inflight.model_dump_json().encode())
            except HttpError as exc:
                delay = backoff.next()
                log.warning("events not sent", error=str(exc), retry_in=round(delay, 2))
                await asyncio.sleep(delay)
                continue
            if status in (401, 409):
                self._reannounce(f"events answered {status}")
                continue
            if status != 200:
                delay = backoff.next()
                log.warning("events refused", status=status,
                            body=content[:500].decode(errors="replace"), retry_in=round(delay, 2))
                await asyncio.sleep(delay)
                continue
            reply = EventBatchReply.model_validate_json(content)
            if not reply.accepted:
                log.debug("batch was a duplicate", seq=self._inflight.seq)
            backoff.reset()
            self._inflight = None

    async def _metrics_loop(self) -> None:
        root = self.supervisor.layout.root
        while True:
            self.outbox.set_metrics(MetricsEvent(metrics=host_metrics(root)))
            await asyncio.sleep(self.settings.heartbeat_interval)
