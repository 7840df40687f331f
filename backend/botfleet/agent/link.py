"""The agent's dial-in link to the api (protocol in :mod:`botfleet.protocol`), on httpx.

One :class:`httpx.AsyncClient` per dial (:func:`~botfleet.agent.client.api_client`,
keep-alive pool):

- announce: ``POST /api/v1/agent/announce`` with a snapshot; retried with backoff (a 401, a
  wrong token, is logged as such and retried every 30 s). Done at start and whenever the api
  asks for it (401/409) or could not be reached.
- commands: ``GET /api/v1/agent/commands``, read with httpx-sse, with ``Last-Event-ID`` = the
  last command id handled in this process (after the first announce:
  ``AnnounceReply.resume_from``); each ``command`` event is applied to the
  :class:`~botfleet.agent.supervisor.Supervisor`. The api pings it every
  ``protocol.COMMAND_PING`` seconds; ``protocol.COMMAND_SILENCE`` seconds without a byte, or
  any transport error, means the link is lost: every request of this dial is dropped with its
  connections (a stuck event upload included), and the agent dials again on new ones,
  announcing first (jittered backoff, cap 1 s). A 409 (position unknown to the api)
  re-announces and resumes from the new ``resume_from``; a 401 re-announces and keeps the
  position.
- events: ONE long-lived chunked ``POST /api/v1/agent/events`` whose body is NDJSON, one
  :class:`~botfleet.protocol.EventBatch` per line, written when the :class:`Outbox` says a
  batch is due (a socket write per batch, not a request: the api takes each line as it
  arrives). The agent ends the upload after ``UPLOAD_SPAN`` seconds or ``UPLOAD_BYTES`` bytes;
  the reply's ``last_seq`` acknowledges what the api holds. Batches not yet acknowledged are
  kept (as sent) and written again at the start of the next upload after a failure; the api
  ignores those it had already taken (same run_id, seq). State changes wait in the outbox's
  unbounded queue until they are in a batch; log lines wait in the supervisor's bounded
  queues (overflow counted as ``dropped``); metrics keep only the latest.

Bots never wait for any of this (invariant 3).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import deque
from collections.abc import AsyncIterator

import httpx
import structlog
from httpx_sse import SSEError, aconnect_sse
from pydantic import TypeAdapter, ValidationError

import botfleet
from botfleet.agent.client import CONNECT_TIMEOUT, agent_token, api_client
from botfleet.agent.metrics import host_metrics
from botfleet.agent.outbox import Batching, Outbox
from botfleet.agent.supervisor import Supervisor
from botfleet.protocol import (
    COMMAND_SILENCE,
    Announce,
    AnnounceReply,
    Command,
    EventBatchReply,
    MetricsEvent,
    encode_batch,
)
from botfleet.settings import AgentSettings

__all__ = ["BATCH_LINES", "Backoff", "Batching", "Link", "Outbox"]

log = structlog.get_logger(__name__)

BATCH_LINES = 5_000
BATCH_STATES = 1_000
UNAUTHORIZED_RETRY = 30.0
REDIAL_CAP = 1.0  # seconds: the longest wait before dialing again after a lost link
UPLOAD_SPAN = 10.0  # seconds one event upload stays open (its batches are kept until its reply)
UPLOAD_BYTES = 8 * 2**20  # ... or bytes it carries (the api takes up to 256 MiB)
TIMEOUT = 10.0  # seconds for a read, write or pool wait (connecting: client.CONNECT_TIMEOUT)
_COMMAND = TypeAdapter(Command)


class Backoff:
    """Exponential reconnect delays with jitter: ``initial`` doubling up to ``cap`` seconds,
    each multiplied by a random factor in [0.5, 1]; :meth:`reset` after a success."""

    def __init__(self, initial: float = 0.1, cap: float = 5.0) -> None:
        self.initial, self.cap, self._n = initial, cap, 0

    def next(self) -> float:
        delay = min(self.cap, self.initial * 2**self._n)
        if delay < self.cap:  # no further: 2**n of ~1,030 failures overflows a float
            self._n += 1
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self._n = 0


class _LinkLost(Exception):
    """The command stream failed or went silent: drop this dial's connections."""


class _Reannounce(Exception):
    def __init__(self, reason: str, *, reset_position: bool = False) -> None:
        super().__init__(reason)
        self.reset_position = reset_position


class Link:
    """Runs the dial-in loops until cancelled. ``run_id`` is fresh per Link (per agent
    process); ``last_command_id`` is the resume position of the command stream."""

    def __init__(self, settings: AgentSettings, supervisor: Supervisor, outbox: Outbox) -> None:
        self.settings = settings
        self.supervisor = supervisor
        self.outbox = outbox
        self.run_id = uuid.uuid4().hex
        self.host_id: str | None = None
        self.last_command_id: str | None = None
        self._seq = 0
        self._unacked: deque[tuple[int, bytes]] = deque()  # (seq, NDJSON line) as sent
        self._unacked_bytes = 0
        self._announced = asyncio.Event()
        self._announce_wanted = asyncio.Event()
        self._announce_wanted.set()
        self._redial = Backoff(0.1, REDIAL_CAP)

    async def run(self) -> None:
        """Announce, follow commands, send events and metrics, forever (cancel to stop).
        Raises ValueError for a token that cannot be sent."""
        agent_token(self.settings)  # a token that cannot be sent fails here, once
        metrics = asyncio.create_task(self._metrics_loop(), name="metrics")
        try:
            await self._dial_loop()
        finally:
            metrics.cancel()

    async def _dial_loop(self) -> None:
        """Dial (a new client: no connection of a lost link is reused), announce, follow
        commands and upload events until the link is lost; then dial again."""
        while True:
            reason = "the link's tasks ended"
            try:
                async with api_client(self.settings, timeout=TIMEOUT, limits=httpx.Limits(
                        max_connections=4, max_keepalive_connections=3)) as client, \
                        asyncio.TaskGroup() as group:
                    group.create_task(self._announce_loop(client), name="announce")
                    group.create_task(self._command_loop(client), name="commands")
                    group.create_task(self._upload_loop(client), name="events")
            except* _LinkLost as lost:
                reason = str(lost.exceptions[0])
            except* Exception as failed:  # a library's unexpected error: the bots need the link
                log.error("link failed unexpectedly", exc_info=failed.exceptions[0])
                reason = repr(failed.exceptions[0])
            self._announced.clear()
            self._announce_wanted.set()
            delay = self._redial.next()
            log.warning("link lost; dialing again", reason=reason, retry_in=round(delay, 2),
                        kept_batches=len(self._unacked))
            await asyncio.sleep(delay)

    def _reannounce(self, reason: str, *, reset_position: bool = False) -> None:
        if self._announced.is_set():
            log.warning("announcing again", reason=reason)
        self._announced.clear()
        if reset_position:
            self.last_command_id = None
        self._announce_wanted.set()

    # -- announce ------------------------------------------------------------------------------

    async def _announce_loop(self, client: httpx.AsyncClient) -> None:
        backoff = Backoff(0.2, REDIAL_CAP)
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
                response = await client.post(
                    "/api/v1/agent/announce", content=body.model_dump_json(),
                    headers={"Content-Type": "application/json"})
            except httpx.TransportError as exc:
                delay = backoff.next()
                log.warning("api unreachable", url=self.settings.api_url, error=repr(exc),
                            retry_in=round(delay, 2))
                await asyncio.sleep(delay)
                continue
            if response.status_code == 401:
                log.error("api refused the agent token (401): check BOTFLEET_AGENT_TOKEN for "
                          "this host", host=self.settings.agent_host, retry_in=UNAUTHORIZED_RETRY)
                await asyncio.sleep(UNAUTHORIZED_RETRY)
                continue
            if response.status_code != 200:
                delay = backoff.next()
                log.warning("announce failed", status=response.status_code,
                            body=response.text[:500], retry_in=round(delay, 2))
                await asyncio.sleep(delay)
                continue
            reply = AnnounceReply.model_validate_json(response.content)
            backoff.reset()
            self.host_id = reply.host_id
            if self.last_command_id is None:
                self.last_command_id = reply.resume_from
            self._announce_wanted.clear()
            self._announced.set()
            log.info("announced", host_id=reply.host_id, run_id=self.run_id,
                     resume_from=self.last_command_id)

    # -- commands ------------------------------------------------------------------------------

    async def _command_loop(self, client: httpx.AsyncClient) -> None:
        """Raises _LinkLost when the stream fails or goes silent."""
        while True:
            await self._announced.wait()
            try:
                reason = await self._follow_commands(client)
            except _Reannounce as exc:
                self._reannounce(str(exc), reset_position=exc.reset_position)
                continue
            except (httpx.TransportError, SSEError) as exc:
                raise _LinkLost(f"command stream: {exc!r}") from exc
            delay = self._redial.next()
            log.info("command stream reconnecting", reason=reason, retry_in=round(delay, 2))
            await asyncio.sleep(delay)

    async def _follow_commands(self, client: httpx.AsyncClient) -> str:
        """Follow the stream until it ends; returns why. Raises httpx.TransportError
        (httpx.ReadTimeout: COMMAND_SILENCE seconds without a byte), SSEError (not an event
        stream), _Reannounce."""
        headers = {"Last-Event-ID": self.last_command_id} if self.last_command_id else {}
        timeout = httpx.Timeout(TIMEOUT, connect=CONNECT_TIMEOUT, read=COMMAND_SILENCE)
        async with aconnect_sse(client, "GET", "/api/v1/agent/commands", headers=headers,
                                timeout=timeout) as source:
            status = source.response.status_code
            if status in (401, 409):
                raise _Reannounce(f"command stream answered {status}",
                                  reset_position=status == 409)
            if status != 200:
                return f"command stream answered {status}"
            self._redial.reset()
            log.info("following commands", last_id=self.last_command_id)
            async for sse in source.aiter_sse():
                if sse.event == "command":
                    await self._apply(sse.id, sse.data)
                if sse.id:
                    self.last_command_id = sse.id
                del sse  # an announce's sync carries every config: not kept until the next
                if self.supervisor.files_wanted:  # after the position moved past the command
                    self.supervisor.files_wanted = False
                    raise _Reannounce("a command named config files this agent does not hold")
        return "command stream ended"

    async def _apply(self, event_id: str, data: str) -> None:
        """Apply one command event (its models are gone when this returns: a bulk start
        holds every instance's config files)."""
        try:
            command = _COMMAND.validate_json(data)
        except ValidationError as exc:
            log.error("unreadable command skipped", id=event_id, error=str(exc))
            return
        await self.supervisor.apply(command)

    # -- events --------------------------------------------------------------------------------

    def _build_batch(self) -> bytes | None:
        """The next batch as one NDJSON line (kept until acknowledged), or None if nothing
        waits. Encoded without building an EventBatch (protocol.encode_batch)."""
        outbox = self.outbox
        events: list[bytes] = []
        states = outbox.states
        while states and len(events) < BATCH_STATES:
            events.append(states.popleft().model_dump_json().encode())
        if outbox.metrics is not None:
            events.append(outbox.metrics.model_dump_json().encode())
            outbox.metrics = None
        events.extend(self.supervisor.take_logs_json(BATCH_LINES))
        if states or self.supervisor.logs_pending:
            outbox.more()  # more than one batch holds: the rest goes next
        if not events:
            return None
        self._seq += 1
        line = encode_batch(self.run_id, self._seq, events)
        self._unacked.append((self._seq, line))
        self._unacked_bytes += len(line)
        return line

    def _acknowledge(self, last_seq: int) -> None:
        while self._unacked and self._unacked[0][0] <= last_seq:
            self._unacked_bytes -= len(self._unacked.popleft()[1])

    async def _upload_body(self) -> AsyncIterator[bytes]:
        """One upload's body: the batches kept from a failed upload, then each new batch
        when it is due, until UPLOAD_SPAN seconds or UPLOAD_BYTES bytes."""
        loop = asyncio.get_running_loop()
        end = loop.time() + UPLOAD_SPAN
        sent = 0
        for _, line in list(self._unacked):
            sent += len(line)
            yield line
        while sent < UPLOAD_BYTES and await self.outbox.due(end):
            line = self._build_batch()
            if line is not None:
                sent += len(line)
                yield line

    async def _upload_loop(self, client: httpx.AsyncClient) -> None:
        backoff = Backoff(0.1, REDIAL_CAP)
        while True:
            await self._announced.wait()
            if not self._unacked:
                await self.outbox.due(float("inf"), peek=True)  # no idle upload open
            try:
                response = await client.post(
                    "/api/v1/agent/events", content=self._upload_body(),
                    headers={"Content-Type": "application/x-ndjson"})
            except httpx.TransportError as exc:
                delay = backoff.next()
                log.warning("event upload failed", error=repr(exc), retry_in=round(delay, 2),
                            kept_batches=len(self._unacked))
                await asyncio.sleep(delay)
                continue
            if response.status_code in (401, 409):
                self._reannounce(f"event upload answered {response.status_code}")
                continue
            if response.status_code != 200:
                delay = backoff.next()
                log.warning("event upload refused", status=response.status_code,
                            body=response.text[:500], retry_in=round(delay, 2))
                await asyncio.sleep(delay)
                continue
            reply = EventBatchReply.model_validate_json(response.content)
            self._acknowledge(reply.last_seq)
            backoff.reset()

    async def _metrics_loop(self) -> None:
        root = self.supervisor.layout.root
        while True:
            self.outbox.set_metrics(MetricsEvent(metrics=host_metrics(root)))
            await asyncio.sleep(self.settings.heartbeat_interval)
