"""The controller side of the agent protocol (:mod:`botfleet.protocol`): announces, event
batches (one per request or many on one streamed upload), and the command stream an agent
follows.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Callable
from datetime import timedelta
from typing import Any

import anyio
import structlog
from pydantic import TypeAdapter, ValidationError
from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from botfleet.db.models import Event, Host, Instance, utcnow
from botfleet.fleet import metrics as host_metrics
from botfleet.fleet import streams
from botfleet.fleet.accounts import notify_hosts
from botfleet.fleet.errors import Conflict, Invalid, NotFound
from botfleet.fleet.events import publish_event, queue_events, record_event
from botfleet.fleet.instances import apply_commands, record_sent_files
from botfleet.protocol import (
    PROTOCOL_VERSION,
    Announce,
    AnnounceReply,
    EventBatch,
    EventBatchReply,
    InstanceState,
    LogLines,
    MetricsEvent,
    StateChange,
    SyncCommand,
)
from botfleet.settings import Settings
from botfleet.tasks import background

__all__ = ["announce", "mark_offline_hosts", "take_batch", "take_batches", "take_upload"]

log = structlog.get_logger(__name__)

_BATCH = TypeAdapter(EventBatch)
#: Seconds a host's batch lock outlives a holder that died mid-batch (an api SIGKILLed: the
#: host's batches wait that long). A live holder renews it every third of that, so a slow
#: batch (a database stall) keeps it; a batch takes milliseconds.
TAKE_LOCK_TIMEOUT = 5.0
#: Seconds a batch waits for the host's lock before the upload fails (and is resent).
TAKE_LOCK_WAIT = 20.0


def _apply_state(instance: Instance, change: StateChange | Any) -> None:
    instance.state = change.new if isinstance(change, StateChange) else change.state
    instance.pid = change.pid
    instance.restart_count = change.restart_count
    instance.exit_code = change.exit_code
    instance.exit_signal = change.exit_signal


async def _set_host_status(session: AsyncSession, host: Host, status: str) -> Event | None:
    if host.status == status:
        return None
    old, host.status = host.status, status
    return await record_event(session, kind="host.status", host_id=host.id, data={"old": old, "new": status})


async def announce(
    session: AsyncSession, redis: Redis, settings: Settings, host: Host, message: Announce
) -> AnnounceReply:
    """Take an agent's announce: mark the host online, reconcile the instance rows with the
    agent's snapshot (the agent knows what runs; nothing is restarted), and queue a
    :class:`SyncCommand` with the host's full desired state.

    Raises:
        Conflict: the agent speaks another protocol version (it is told to upgrade).
    """
    if message.protocol_version != PROTOCOL_VERSION:
        log.warning("agent refused: other protocol version", host=host.name,
                    agent_protocol=message.protocol_version, api_protocol=PROTOCOL_VERSION)
        raise Conflict(
            f"this agent speaks protocol {message.protocol_version} (botfleet "
            f"{message.agent_version}), the api speaks {PROTOCOL_VERSION}: upgrade the agent "
            f"(POST /api/v1/hosts/{host.name}/upgrade, or Hosts > {host.name} > Upgrade)")
    now = utcnow()
    host.agent_version = message.agent_version
    host.agent_run_id = message.run_id
    host.instances_dir = message.instances_dir
    host.last_seen_at = now
    if message.metrics:
        host.metrics = message.metrics.model_dump(mode="json")
    events = [e for e in [await _set_host_status(session, host, "online")] if e]
    instances = {i.id: i for i in (await session.scalars(select(Instance).where(Instance.host_id == host.id))).all()}
    reported = {snap.instance_id: snap for snap in message.instances}
    for instance in instances.values():
        snap = reported.get(instance.id)
        if snap is not None:
            if snap.state != instance.state or snap.pid != instance.pid:
                events.append(await record_event(
                    session, kind="instance.state", instance_id=instance.id, host_id=host.id,
                    data={"old": instance.state, "new": snap.state, "pid": snap.pid, "reason": "reported by agent"},
                ))
            _apply_state(instance, snap)
            instance.started_at = snap.started_at
        elif instance.state == InstanceState.UNKNOWN:
            # The agent has never heard of it: nothing runs.
            instance.state = InstanceState.STOPPED
            instance.pid = None
    sync = SyncCommand(instances=await apply_commands(session, settings, list(instances.values())))
    await session.commit()
    key = streams.agent_commands(host.id)
    last = await redis.xrevrange(key, count=1)
    resume_from = last[0][0] if last else "0-0"
    await record_sent_files(redis, host.id, sync.instances)
    await redis.xadd(key, {"data": sync.model_dump_json()}, maxlen=10_000, approximate=True)
    await notify_hosts(session, redis, settings, [host.id])  # an agent back online catches up
    for event in events:
        await publish_event(redis, event, maxlen=settings.events_stream_maxlen)
    log.info("agent announced", host=host.name, run_id=message.run_id, instances=len(message.instances))
    return AnnounceReply(host_id=host.id, server_time=now, resume_from=resume_from)


async def take_upload(
    session: AsyncSession, redis: Redis, settings: Settings, host_id: str,
    body: AsyncIterable[bytes], *, stopping: Callable[[], bool] = lambda: False,
    poll: float = 0.5,
) -> EventBatchReply:
    """Take an agent's upload as it arrives: ``body`` is NDJSON (``application/x-ndjson``), one
    :class:`EventBatch` per line, pieces split anywhere; a body of one batch without a line
    end is one batch too. Batches are applied with :func:`take_batches` as soon as their lines
    are complete (those one read of the body brought, together), so a line reaches its readers
    while the upload goes on. Returns how many batches were new and the highest ``seq`` of the
    run taken so far (``last_seq``): the agent forgets what it kept for a resend up to it.

    ``stopping`` is checked every ``poll`` seconds: once it is true (the server shuts down)
    reading ends, between two batches, and the reply goes at once, so an open upload never
    holds up a server's graceful shutdown; the agent resends what was not taken to the next
    server.

    A line that is not an EventBatch does not end the upload early (the agent is still
    sending): what follows it is read and dropped, what preceded it stays taken, and the
    error is raised once the body has ended.

    Raises:
        Invalid: line N is not an EventBatch (nothing after it was taken).
        NotFound: the host is gone.
        Conflict: the host is marked offline (see :func:`take_batches`); raised at once.
    """
    accepted, run_id, error = 0, None, None
    number = 0

    async def take(lines: list[bytes]) -> None:
        """Take the complete lines one read brought, all together (:func:`take_batches`): an
        api that fell behind (a burst of starts on busy cores) catches up in one go."""
        nonlocal accepted, run_id, error, number
        batches = []
        for line in lines:
            number += 1
            if error is not None or not line.strip():
                continue
            try:
                batches.append(_BATCH.validate_json(line))
            except ValidationError as exc:
                error = Invalid(f"line {number} of the event upload is not an EventBatch: "
                                f"{str(exc)[:500]}", key="events")
        if not batches:
            return
        run_id = batches[-1].run_id
        try:
            with anyio.CancelScope(shield=True):  # batches are taken whole or not at all
                accepted += await take_batches(session, redis, settings, host_id, batches)
        except NotFound as exc:
            error = exc

    async def read(scope: anyio.CancelScope) -> None:
        nonlocal failure
        pending = bytearray()
        try:
            async for piece in body:
                pending += piece
                if b"\n" not in piece:
                    continue
                lines = pending.split(b"\n")
                pending = bytearray(lines.pop())
                await take(lines)
            await take([bytes(pending)])
        except Exception as exc:  # raised as it is below, not wrapped in the task group's
            failure = exc
        scope.cancel()  # the body ended (or failed): stop watching

    async def watch() -> None:
        while not stopping():
            await anyio.sleep(poll)
        group.cancel_scope.cancel()  # an unfinished line is resent by the agent

    failure: Exception | None = None
    async with anyio.create_task_group() as group:
        group.start_soon(watch)
        await read(group.cancel_scope)
    if failure is not None:
        raise failure
    if error is not None:
        raise error
    last = await redis.hget(streams.agent_batches(host_id), run_id) if run_id else None
    return EventBatchReply(accepted=accepted, last_seq=int(last or 0))


#: Appends log lines to a stream: ``KEYS[1]`` the stream, ``ARGV`` = maxlen, then line, seq,
#: line, seq... One XADD per line (fields ``line`` and ``seq``, trimmed ``MAXLEN ~``), as the
#: api did with one pipelined XADD each, but one command per chunk: at 10,000 lines/s redis-py
#: packing and parsing one command per line was the api's largest cost (client CPU 9.1 us per
#: line, 1.8 with the script; the api at ~9,700 lines/s: 0.20 -> 0.11 cores, measured in
#: docs/benchmarks.md's panel section).
APPEND_LINES = """
for i = 2, #ARGV, 2 do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'line', ARGV[i], 'seq', ARGV[i + 1])
end
return (#ARGV - 1) / 2
"""
#: Most lines one APPEND_LINES call carries (a script holds Redis while it runs: ~2 ms here).
APPEND_LINES_MAX = 1000


async def take_batch(
    session: AsyncSession, redis: Redis, settings: Settings, host_id: str, batch: EventBatch
) -> bool:
    """:func:`take_batches` of one batch: False when it had already been taken (a resend)."""
    return await take_batches(session, redis, settings, host_id, [batch]) == 1


async def take_batches(
    session: AsyncSession, redis: Redis, settings: Settings, host_id: str, batches: list[EventBatch]
) -> int:
    """Apply event batches from an agent, in their order, each exactly once per (run_id,
    seq); returns how many were new (those already taken, resends, are skipped). Batches of
    one host are taken one call at a time across every api process (a Redis lock,
    :data:`TAKE_LOCK_TIMEOUT`): after a lost link the agent resends on a new upload while the
    old one may still be applying the same batches, possibly on another replica.

    State changes update the instance rows and become ``instance.state`` events; log lines go
    to the instances' log streams; metrics update the host and mark it seen and online. The
    batches of one call share one lock, one transaction and one Redis pipeline: under a
    burst (a start of 100 bots on 2 busy cores) each of those round trips waited tens of ms
    for a core, and an api taking batches one by one fell up to ~0.9 s behind the agent
    (docs/benchmarks.md). Log lines alone touch Redis alone (the hot path: a bot's line to
    its readers); the agent's metrics, every few seconds, keep the host's ``last_seen_at``
    fresh.

    Raises:
        NotFound: the host is gone.
        Conflict: the host is marked offline (its instances UNKNOWN): the agent must announce
            again, so that its snapshot is reconciled, before its batches are taken.
        redis.exceptions.LockError: another process held the host's lock for
            TAKE_LOCK_WAIT seconds (the agent resends the batches).
    """
    lock = redis.lock(streams.agent_take_lock(host_id), timeout=TAKE_LOCK_TIMEOUT,
                      blocking_timeout=TAKE_LOCK_WAIT)
    async with lock, background(_keep_lock(lock), name=f"batch lock {host_id}"):
        return await _take_batches(session, redis, settings, host_id, batches)


async def _keep_lock(lock: Lock) -> None:
    """Renew ``lock`` to its full timeout every third of it, for as long as it is held."""
    while True:
        await asyncio.sleep(TAKE_LOCK_TIMEOUT / 3)
        await lock.reacquire()


async def _new_batches(redis: Redis, dedupe: str, batches: list[EventBatch]) -> tuple[list[EventBatch], dict[str, int]]:
    """The batches not taken yet (seq above the highest taken of their run, in the host's
    dedupe hash ``dedupe``) and the highest seq per run after them."""
    runs = list(dict.fromkeys(b.run_id for b in batches))
    taken = dict(zip(runs, await redis.hmget(dedupe, runs), strict=True))
    last = {run: int(seq or 0) for run, seq in taken.items()}
    new = []
    for batch in batches:
        if batch.seq > last[batch.run_id]:
            last[batch.run_id] = batch.seq
            new.append(batch)
    return new, last


async def _take_batches(
    session: AsyncSession, redis: Redis, settings: Settings, host_id: str, batches: list[EventBatch]
) -> int:
    dedupe = streams.agent_batches(host_id)
    batches, last = await _new_batches(redis, dedupe, batches)
    if not batches:
        return 0
    every = [e for b in batches for e in b.events]
    changes = [e for e in every if isinstance(e, StateChange)]
    metrics = [e for e in every if isinstance(e, MetricsEvent)]
    events: list[Event] = []
    if changes or metrics:
        host = await session.get(Host, host_id)
        if host is None:
            raise NotFound(f"host {host_id} was deleted: stop this agent")
        if host.status == "offline":
            # Its instances were set UNKNOWN: only a fresh snapshot can say what runs. The
            # agent answers a 409 by announcing again, then sends these batches once more.
            raise Conflict(f"host {host.name!r} was offline: announce again so that its snapshot is reconciled")
        host.last_seen_at = utcnow()
        if metrics:
            host.metrics = metrics[-1].metrics.model_dump(mode="json")
            await host_metrics.record(redis, host_id, [m.metrics for m in metrics])
        status_event = await _set_host_status(session, host, "online")
        if status_event:
            events.append(status_event)
        events += await _take_state_changes(session, host_id, changes)
        await session.commit()
    logs = [e for e in every if isinstance(e, LogLines)]
    append = redis.register_script(APPEND_LINES)
    async with redis.pipeline(transaction=False) as pipe:
        for chunk in logs:
            key = streams.instance_logs(chunk.instance_id)
            for start in range(0, len(chunk.lines), APPEND_LINES_MAX):
                args: list[str | int] = [settings.log_stream_maxlen]
                for offset, line in enumerate(chunk.lines[start:start + APPEND_LINES_MAX], chunk.first_seq + start):
                    args += (line, offset)
                await append(keys=[key], args=args, client=pipe)
            if chunk.dropped:
                pipe.xadd(key, {"line": f"[botfleet] {chunk.dropped} lines were not streamed (output too fast); "
                                        "they are in the log file on the host", "seq": -1},
                          maxlen=settings.log_stream_maxlen, approximate=True)
        pipe.hset(dedupe, mapping=last)
        pipe.expire(dedupe, 7 * 24 * 3600)
        queue_events(pipe, events, maxlen=settings.events_stream_maxlen)
        await pipe.execute()
    return len(batches)


async def _take_state_changes(session: AsyncSession, host_id: str, changes: list[StateChange]) -> list[Event]:
    """Apply ``changes`` to their instance rows and add an ``instance.state`` event each, all
    in one flush (the caller commits): a stop of 100 bots is 200 changes, and a flush per
    event (its UPDATE and INSERT each a round trip through the driver's thread) cost the api
    ~0.7 ms of CPU per change, on the cores the exiting bots need."""
    if not changes:
        return []
    ids = {c.instance_id for c in changes}
    rows = {i.id: i for i in (await session.scalars(select(Instance).where(Instance.id.in_(ids)))).all()}
    events = []
    now = utcnow()
    for change in changes:
        instance = rows.get(change.instance_id)
        if instance is None or instance.host_id != host_id:
            continue
        _apply_state(instance, change)
        instance.state_changed_at = change.time
        instance.state_reason = change.reason
        if change.new == InstanceState.STARTING or (change.new == InstanceState.RUNNING and instance.started_at is None):
            instance.started_at = change.time
        events.append(Event(
            time=now, kind="instance.state", instance_id=instance.id, host_id=host_id,
            data={
                "old": change.old, "new": change.new, "pid": change.pid, "generation": change.generation,
                "restart_count": change.restart_count, "exit_code": change.exit_code,
                "exit_signal": change.exit_signal, "reason": change.reason, "time": change.time.isoformat(),
            },
        ))
    session.add_all(events)
    await session.flush()  # the events' ids, in order
    return events


async def mark_offline_hosts(session: AsyncSession, redis: Redis, settings: Settings) -> list[str]:
    """Hosts silent for longer than ``settings.host_offline_after`` seconds become ``offline``
    and their instances ``UNKNOWN`` (never STOPPED: nobody knows). Returns their names."""
    limit = utcnow() - timedelta(seconds=settings.host_offline_after)
    hosts = (await session.scalars(
        select(Host).where(Host.status == "online", Host.last_seen_at < limit)
    )).all()
    events = []
    for host in hosts:
        events.append(await _set_host_status(session, host, "offline"))
        await session.execute(
            update(Instance).where(Instance.host_id == host.id).values(state=InstanceState.UNKNOWN)
        )
    await session.commit()
    for event in events:
        if event:
            await publish_event(redis, event, maxlen=settings.events_stream_maxlen)
    return [h.name for h in hosts]


