"""Where instances run: moving one to another host without ever running it twice (invariant
1), and start/stop/restart over many instances on many hosts at once.

Move: the old host's agent must *confirm* the stop (the instance reaches STOPPED/EXITED/FATAL
with desired ``stopped``) before the instance is re-homed; it is then removed from the old
host (a :class:`RemoveCommand` with a higher generation) and, if it was running, started on
the new one. Only when the old host is ``offline`` may an operator override (``force``): the
instance moves with its state UNKNOWN, and the queued RemoveCommand stops the old copy when
that host's agent comes back (it resumes its command stream before anything else).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from botfleet.db.models import Host, Instance
from botfleet.fleet.accounts import notify_hosts
from botfleet.fleet.errors import Conflict, Invalid
from botfleet.fleet.events import publish_event, record_event
from botfleet.fleet.instances import (
    IDLE_STATES,
    ConfigFacts,
    _host,
    apply_command,
    check_starts,
    record_desired,
    send_command,
    set_desired,
)
from botfleet.profiles import ConfigError
from botfleet.protocol import DesiredState, InstanceState, RemoveCommand
from botfleet.settings import Settings

__all__ = ["BULK_ACTIONS", "BulkResult", "bulk_action", "move_instance"]

BULK_ACTIONS = ("start", "stop", "restart")


async def _wait_stopped(session: AsyncSession, instance: Instance, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        await session.refresh(instance)
        if instance.state in IDLE_STATES:
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.2)


async def move_instance(
    session: AsyncSession, redis: Redis, settings: Settings, instance: Instance, target: str, *,
    force: bool = False, stop_timeout: float = 60.0,
) -> Instance:
    """Move ``instance`` to host ``target`` (name or id); a running instance is stopped on the
    old host first (waiting up to ``stop_timeout`` seconds for the confirmed stop) and started
    on the new one.

    Raises:
        Invalid: same host.
        NotFound: no such host.
        Conflict: the old host did not confirm the stop in time; or ``force`` while the old host
            is not offline (the override is only for a lost host).
    """
    new_host = await _host(session, target)
    if new_host.id == instance.host_id:
        raise Invalid(f"instance {instance.name!r} is on {new_host.name!r} already", key="host")
    old_host = await session.get(Host, instance.host_id)
    assert old_host is not None
    was_running = instance.desired_state == DesiredState.RUNNING
    if force:
        if old_host.status != "offline":
            raise Conflict(f"host {old_host.name!r} is {old_host.status}, not offline: the override is only for a "
                           "lost host; move without force (botfleet stops the instance there first)", key="force")
    else:
        if was_running or instance.state not in IDLE_STATES:
            if was_running:
                await set_desired(session, redis, settings, instance, DesiredState.STOPPED, action="move-stop")
            if not await _wait_stopped(session, instance, stop_timeout):
                raise Conflict(f"host {old_host.name!r} did not confirm that {instance.name!r} stopped within "
                               f"{stop_timeout:.0f} s (state {instance.state}); nothing was moved. If the host "
                               "is lost, wait until it shows offline and move with force", key="host")
    instance.generation += 1
    remove = RemoveCommand(instance_id=instance.id, generation=instance.generation)
    instance.host_id = new_host.id
    instance.generation += 1
    if force:
        instance.state = InstanceState.UNKNOWN if was_running else InstanceState.STOPPED
    else:
        instance.state = InstanceState.STOPPED
    instance.pid = None
    apply = await apply_command(session, settings, instance)
    event = await record_event(session, kind="instance.moved", instance_id=instance.id, host_id=new_host.id,
                               data={"from": old_host.name, "to": new_host.name, "forced": force})
    await session.commit()
    await send_command(redis, old_host.id, remove)
    await notify_hosts(session, redis, settings, [old_host.id, new_host.id])
    await send_command(redis, new_host.id, apply)
    await publish_event(redis, event, maxlen=settings.events_stream_maxlen)
    if was_running:
        await set_desired(session, redis, settings, instance, DesiredState.RUNNING, action="move-start")
    return instance


@dataclass
class BulkResult:
    """One instance's outcome: ``ok`` with its new generation, or the error's ``status`` and
    ``detail``."""

    id: str
    ok: bool
    generation: int | None = None
    status: int | None = None
    detail: str | None = None


async def bulk_action(session: AsyncSession, redis: Redis, settings: Settings, action: str,
                      ids: list[str]) -> list[BulkResult]:
    """Start, stop or restart many instances (names or ids) in one transaction and one Redis
    round trip; the hosts' agents act on the commands concurrently. An unknown id or a config
    a live run refuses fails that instance only. Results come in the order of ``ids``.

    Raises:
        Invalid: unknown action, no ids or more than 1000.
    """
    if action not in BULK_ACTIONS:
        raise Invalid(f"action {action!r}: use one of {', '.join(BULK_ACTIONS)}", key="action")
    if not ids or len(ids) > 1000:
        raise Invalid("give 1-1000 instance ids", key="ids")
    rows = (await session.scalars(
        select(Instance).where(or_(Instance.id.in_(ids), Instance.name.in_(ids)))
    )).all()
    found = {key: row for row in rows for key in (row.id, row.name)}
    desired = DesiredState.STOPPED if action == "stop" else DesiredState.RUNNING
    facts: dict[str, ConfigFacts] = {}
    errors: dict[str, ConfigError] = {}
    if desired == DesiredState.RUNNING:
        facts, errors = await check_starts(session, list(rows))
    failed: dict[str, BulkResult] = {}
    chosen: dict[str, Instance] = {}
    for ident in ids:
        instance = found.get(ident)
        if instance is None:
            failed[ident] = BulkResult(id=ident, ok=False, status=404, detail=f"no instance {ident!r}")
        elif instance.id in errors:
            failed[ident] = BulkResult(id=instance.id, ok=False, status=422, detail=str(errors[instance.id]))
        else:
            chosen[instance.id] = instance
    await record_desired(session, redis, settings, list(chosen.values()), desired, facts,
                         restart=action == "restart", action=action)
    results = []
    for ident in ids:
        instance = found.get(ident)
        if ident in failed or instance is None:
            results.append(failed[ident])
        else:
            results.append(BulkResult(id=instance.id, ok=True, generation=instance.generation))
    return results
