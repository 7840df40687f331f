"""Instances: create, configure, start, stop, restart, delete (the business logic behind
``/api/v1/instances``). Every change of desired state becomes a command on the host's command
stream with a new, higher ``generation`` (invariant 1); the agent reports what happens.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from cachetools import LRUCache
from redis.asyncio import Redis
from sqlalchemy import func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from botfleet.db.models import ConfigVersion, Event, Host, Instance, utcnow
from botfleet.fleet import streams
from botfleet.fleet.accounts import account_of, missing_accounts, notify_hosts
from botfleet.fleet.errors import Conflict, Invalid, NotFound
from botfleet.fleet.events import publish_event, publish_events, record_event
from botfleet.profiles import ConfigError, get_profile
from botfleet.protocol import (
    ApplyCommand,
    DesiredState,
    InstanceState,
    ProcessSpec,
    RemoveCommand,
    SyncCommand,
    files_digest,
)
from botfleet.settings import Settings

__all__ = [
    "CONFIG_FILE",
    "SUPERVISION_KEYS",
    "ConfigFacts",
    "InstanceDraft",
    "apply_command",
    "apply_commands",
    "check_starts",
    "config_files",
    "create_instance",
    "current_configs",
    "delete_instance",
    "get_instance",
    "list_instances",
    "process_spec",
    "put_config",
    "record_desired",
    "record_sent_files",
    "send_command",
    "set_desired",
    "set_desired_many",
    "update_instance",
    "without_sent_files",
]

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
CONFIG_FILE = "config.json"
#: ProcessSpec fields a user may set per instance.
SUPERVISION_KEYS = (
    "autorestart",
    "exitcodes",
    "startsecs",
    "startretries",
    "backoff_initial",
    "backoff_max",
    "backoff_reset_after",
)
#: States in which an instance has no process (so it may be deleted or moved).
IDLE_STATES = {InstanceState.STOPPED, InstanceState.EXITED, InstanceState.FATAL}


@dataclass
class InstanceDraft:
    """What a user gives to create an instance. ``config`` (an object) or ``config_text``
    (JSON or HJSON as passivbot reads them); ``argv`` only for the ``custom`` profile."""

    name: str
    profile: str
    host: str = "local"
    config: dict[str, Any] | None = None
    config_text: str | None = None
    simulated: bool = False
    argv: list[str] | None = None
    labels: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    supervision: dict[str, Any] = field(default_factory=dict)


def _check_name(name: str) -> None:
    if not NAME.match(name):
        raise Invalid(
            f"name {name!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            key="name",
        )


def _check_env(env: dict[str, str]) -> None:
    for key, value in env.items():
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key) or not isinstance(value, str):
            raise Invalid(f"env {key!r}: names are letters, digits and '_', values are strings", key=f"env.{key}")


def _check_supervision(supervision: dict[str, Any]) -> dict[str, Any]:
    unknown = set(supervision) - set(SUPERVISION_KEYS)
    if unknown:
        raise Invalid(
            f"unknown supervision setting(s) {sorted(unknown)}; allowed: {', '.join(SUPERVISION_KEYS)}",
            key=f"supervision.{min(unknown)}",
        )
    try:
        spec = ProcessSpec(argv=["x"], **supervision)
    except ValueError as exc:
        raise Invalid(f"supervision: {exc}", key="supervision") from exc
    return {k: v for k, v in spec.model_dump(mode="json").items() if k in supervision}


def _parse_config(profile_name: str, config: dict[str, Any] | None, text: str | None) -> tuple[dict[str, Any], str]:
    profile = get_profile(profile_name)
    if (config is None) == (text is None):
        raise Invalid("give the config either as an object (config) or as text (config_text)", key="config")
    document = profile.parse_config(text) if text is not None else config
    if not isinstance(document, dict):
        raise ConfigError("", "a config must be a JSON object")
    document = profile.validate_config(document)
    source = text if text is not None else json.dumps(document, indent=2, sort_keys=True)
    return document, source


async def _host(session: AsyncSession, name_or_id: str) -> Host:
    host = await session.scalar(select(Host).where(or_(Host.name == name_or_id, Host.id == name_or_id)))
    if host is None:
        raise NotFound(f"no host {name_or_id!r}: add it under /api/v1/hosts first", key="host")
    return host


async def get_instance(session: AsyncSession, instance_id: str) -> Instance:
    instance = await session.scalar(
        select(Instance).where(or_(Instance.id == instance_id, Instance.name == instance_id))
    )
    if instance is None:
        raise NotFound(f"no instance {instance_id!r}")
    return instance


async def create_instance(
    session: AsyncSession, redis: Redis, settings: Settings, draft: InstanceDraft
) -> Instance:
    """Insert an instance (STOPPED, desired ``stopped``) with config version 1.

    Raises:
        Invalid: bad name, env or supervision settings.
        ConfigError: the config does not parse or validate for the profile (names the key).
        UnknownProfile: no such profile.
        NotFound: no such host.
        Conflict: the name is taken.
    """
    _check_name(draft.name)
    _check_env(draft.env)
    supervision = _check_supervision(draft.supervision)
    document, source = _parse_config(draft.profile, draft.config, draft.config_text)
    host = await _host(session, draft.host)
    if await session.scalar(select(Instance.id).where(Instance.name == draft.name)):
        raise Conflict(f"an instance named {draft.name!r} exists already: pick another name", key="name")
    instance = Instance(
        name=draft.name,
        host_id=host.id,
        profile=draft.profile,
        simulated=draft.simulated,
        argv=draft.argv,
        labels=dict(draft.labels),
        env=dict(draft.env),
        supervision=supervision,
        state=InstanceState.STOPPED,
    )
    # Build the spec once now so a custom argv or a missing passivbot path fails at creation.
    process_spec(instance, document, settings)
    session.add(instance)
    await session.flush()
    version = ConfigVersion(instance_id=instance.id, version=1, document=document, source=source,
                            account=account_of(document))
    session.add(version)
    event = await record_event(
        session, kind="instance.created", instance_id=instance.id, host_id=host.id,
        data={"name": instance.name, "profile": instance.profile},
    )
    await session.commit()
    # The agent gets the config now, so that a start (of many, often) names it by digest only.
    command = _command(instance, document, settings)
    _learn_facts(version.id, instance.profile, document, command.files_digest)
    await send_command(redis, host.id, command)
    await publish_event(redis, event, maxlen=settings.events_stream_maxlen)
    await notify_hosts(session, redis, settings, [host.id])
    return instance


def process_spec(instance: Instance, document: dict[str, Any] | None, settings: Settings) -> ProcessSpec:
    """The :class:`ProcessSpec` an agent runs for ``instance`` with config ``document``: the
    profile's live command, the instance's env and supervision settings, the config written to
    ``{instance_dir}/config.json`` (no files when ``document`` is None: a spec to stop by).

    Raises:
        Invalid: the profile cannot build a command (e.g. passivbot v7 root not configured).
    """
    profile = get_profile(instance.profile)
    try:
        command = profile.live_command(
            config_path=f"{{instance_dir}}/{CONFIG_FILE}",
            simulated=instance.simulated,
            settings=settings,
            argv=instance.argv,
        )
    except ConfigError:
        raise
    except ValueError as exc:
        raise Invalid(str(exc), key="profile") from exc
    return ProcessSpec(
        argv=command.argv,
        cwd=command.cwd,
        env={**command.env, **instance.env},
        files=config_files(document) if document is not None else {},
        stop_ladder=profile.stop_ladder,
        **instance.supervision,
    )


def config_files(document: dict[str, Any]) -> dict[str, str]:
    """The files a spec carries for config ``document``: ``{CONFIG_FILE: its JSON}``, indented
    by 2 as passivbot's own example configs are."""
    return {CONFIG_FILE: json.dumps(document, indent=2)}


async def current_configs(session: AsyncSession, instances: list[Instance]) -> dict[str, ConfigVersion]:
    """Each instance's current config version, by instance id, in one query (a passivbot
    config is ~28 KB of JSON to decode: load them once per request)."""
    if not instances:
        return {}
    rows = await session.scalars(select(ConfigVersion).where(_current_versions(instances)))
    return _each_found(instances, {r.instance_id: r for r in rows})


def _current_versions(instances: list[Instance]) -> Any:
    """The WHERE clause picking ``instances``' current config versions."""
    return tuple_(ConfigVersion.instance_id, ConfigVersion.version).in_(
        [(i.id, i.config_version) for i in instances])


def _each_found(instances: list[Instance], found: dict[str, Any]) -> dict[str, Any]:
    """``found`` (by instance id), once every instance is in it. Raises NotFound for an
    instance without its current config version (the schema keeps them together)."""
    for instance in instances:
        if instance.id not in found:  # pragma: no cover - the schema keeps them together
            raise NotFound(f"instance {instance.name!r} has no config version {instance.config_version}")
    return found


@dataclass(frozen=True, slots=True)
class ConfigFacts:
    """What a start needs of an instance's current config version, without its document:
    ``files_digest`` (:func:`~botfleet.protocol.files_digest` of its :func:`config_files`),
    ``account`` (its ``live.user``, ``ConfigVersion.account``) and ``live_error`` (why the
    profile refuses it for a live run; None when it can run)."""

    files_digest: str
    account: str | None
    live_error: ConfigError | None


#: (files digest, live error's (key, message)) by (ConfigVersion.id, profile): a version row
#: never changes, and both derive from it and the profile's code alone. The error is kept as
#: its parts (an exception raised again would grow its traceback). Without this, a bulk start
#: of 100 passivbot instances decoded, validated, rendered and hashed 2.8 MB of configs that it
#: mostly does not send (the agents hold them): 135 of the request's 190 ms in the fleet
#: bench, 40-55 ms with it. Entries are ~200 bytes; 10,000 cover a large fleet.
_FACTS: LRUCache[tuple[str, str], tuple[str, tuple[str, str] | None]] = LRUCache(maxsize=10_000)


def _learn_facts(version_id: str, profile: str, document: dict[str, Any], digest: str | None = None) -> None:
    """Derive a config version's digest and live error and keep them (``_FACTS``); at the
    version's creation, so that the first start of a new instance reads no document.
    ``digest``: of :func:`config_files`, when the caller has it."""
    error = None
    try:
        get_profile(profile).validate_config(document, purpose="live")
    except ConfigError as exc:
        error = (exc.key, exc.message)
    _FACTS[version_id, profile] = (digest or files_digest(config_files(document)), error)


async def _config_facts(session: AsyncSession, instances: list[Instance]) -> dict[str, ConfigFacts]:
    """Each instance's :class:`ConfigFacts`, by instance id: one query for the versions' ids and
    accounts, and one for the documents of versions this process has not seen (``_FACTS``).

    Raises:
        NotFound: an instance without its current config version (the schema prevents it).
    """
    if not instances:
        return {}
    rows = (await session.execute(
        select(ConfigVersion.id, ConfigVersion.instance_id, ConfigVersion.account).where(
            _current_versions(instances)))).all()
    found = _each_found(instances, {r.instance_id: r for r in rows})
    unseen = {found[i.id].id: i for i in instances if (found[i.id].id, i.profile) not in _FACTS}
    if unseen:
        documents = await session.execute(
            select(ConfigVersion.id, ConfigVersion.document).where(ConfigVersion.id.in_(list(unseen))))
        for version_id, document in documents.all():
            _learn_facts(version_id, unseen[version_id].profile, document)
    facts = {}
    for instance in instances:
        row = found[instance.id]
        digest, error = _FACTS[row.id, instance.profile]
        facts[instance.id] = ConfigFacts(digest, row.account, ConfigError(*error) if error else None)
    return facts


async def check_starts(
    session: AsyncSession, instances: list[Instance],
) -> tuple[dict[str, ConfigFacts], dict[str, ConfigError]]:
    """For a start of ``instances``: their :class:`ConfigFacts`, and by instance id why its
    config cannot run live (a stored config may lack what a live run needs: e.g. a backtest
    suite config has no ``live.user``; or its account is not stored). The errors are empty
    when all can start."""
    facts = await _config_facts(session, instances)
    errors = await missing_accounts(session, instances, {k: f.account for k, f in facts.items()})
    for instance_id, fact in facts.items():
        if fact.live_error is not None:
            errors[instance_id] = fact.live_error
    return facts, errors


async def apply_command(session: AsyncSession, settings: Settings, instance: Instance, *, restart: bool = False) -> ApplyCommand:
    """The ApplyCommand for the instance's current desired state, spec and generation."""
    return (await apply_commands(session, settings, [instance], restart=restart))[0]


async def apply_commands(
    session: AsyncSession, settings: Settings, instances: list[Instance], *, restart: bool = False,
) -> list[ApplyCommand]:
    """:func:`apply_command` for many instances, their configs read in one query: each
    command carries its config files (an announce's sync brings them all)."""
    configs = await current_configs(session, instances)
    return [_command(instance, configs[instance.id].document, settings, restart=restart)
            for instance in instances]


def _command(instance: Instance, document: dict[str, Any] | None, settings: Settings, *,
             restart: bool = False, digest: str | None = None) -> ApplyCommand:
    """The instance's ApplyCommand; with ``document`` its files (and their digest), else none
    and ``digest`` (a start whose files go only where the agent lacks them, a stop)."""
    spec = process_spec(instance, document, settings)
    return ApplyCommand(
        instance_id=instance.id,
        generation=instance.generation,
        desired=DesiredState(instance.desired_state),
        spec=spec,
        restart=restart,
        files_digest=files_digest(spec.files) if spec.files else digest,
    )


#: ``files_of(instance ids)``: the config files of those instances, by instance id.
FilesOf = Callable[[list[str]], Awaitable[dict[str, dict[str, str]]]]


async def without_sent_files(redis: Redis, host_id: str, commands: list[ApplyCommand],
                             files_of: FilesOf | None = None) -> list[ApplyCommand]:
    """``commands`` as they go to ``host_id``'s agent (ApplyCommand.files_digest): one whose
    files were sent to it already (the host's ``streams.agent_files`` hash) names them by
    digest only; one without files or digest (a stop) names those sent last, which the agent
    then keeps for the next start; the others carry their files and are recorded as sent. A
    command that names its files by digest alone (a start, see :func:`record_desired`) gets
    them from ``files_of`` when they were not sent. A wrong guess (an agent that lost its
    state) costs an announce, whose sync brings every file again. One Redis round trip, two
    when some files are new."""
    if not commands:
        return commands
    key = streams.agent_files(host_id)
    sent = await redis.hmget(key, [c.instance_id for c in commands])
    out: list[ApplyCommand] = []
    new: dict[str, str] = {}
    for command, digest in zip(commands, sent, strict=True):
        if command.files_digest is None:
            if digest:
                command = command.model_copy(update={"files_digest": digest})
        elif command.files_digest == digest:
            if command.spec.files:
                command = command.model_copy(update={"spec": command.spec.model_copy(update={"files": {}})})
        else:
            new[command.instance_id] = command.files_digest
        out.append(command)
    if wanted := [c.instance_id for c in out if c.instance_id in new and not c.spec.files]:
        if files_of is None:
            raise ValueError("commands name files by digest alone and no files_of was given")
        files = await files_of(wanted)
        out = [c.model_copy(update={"spec": c.spec.model_copy(update={"files": files[c.instance_id]})})
               if c.instance_id in files else c for c in out]
    if new:
        await redis.hset(key, mapping=new)
    return out


async def record_sent_files(redis: Redis, host_id: str, commands: list[ApplyCommand]) -> None:
    """Make the host's ``streams.agent_files`` hash name exactly the files ``commands`` carry
    (an announce's sync, which carries every instance's)."""
    key = streams.agent_files(host_id)
    sent = {c.instance_id: c.files_digest for c in commands if c.files_digest and c.spec.files}
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(key)
        if sent:
            pipe.hset(key, mapping=sent)
        await pipe.execute()


async def send_command(redis: Redis, host_id: str, command: ApplyCommand | RemoveCommand) -> str:
    """Queue ``command`` on the host's command stream (an ApplyCommand
    :func:`without_sent_files`); returns its stream id."""
    if isinstance(command, ApplyCommand):
        [command] = await without_sent_files(redis, host_id, [command])
    else:  # the agent deletes the instance's files
        await redis.hdel(streams.agent_files(host_id), command.instance_id)
    return await redis.xadd(
        streams.agent_commands(host_id), {"data": command.model_dump_json()}, maxlen=10_000, approximate=True
    )


async def set_desired(
    session: AsyncSession, redis: Redis, settings: Settings, instance: Instance,
    desired: DesiredState, *, restart: bool = False, action: str,
) -> Instance:
    """Record a user's start/stop/restart of one instance (see :func:`set_desired_many`).

    Raises:
        ConfigError: a start of an instance whose config lacks what a live run needs.
    """
    await set_desired_many(session, redis, settings, [instance], desired, restart=restart, action=action)
    return instance


async def set_desired_many(
    session: AsyncSession, redis: Redis, settings: Settings, instances: list[Instance],
    desired: DesiredState, *, restart: bool = False, action: str,
) -> None:
    """Record a start/stop/restart of ``instances``: desired state, a new generation, an
    ``instance.command`` event each, and the commands to their hosts' agents (fenced by
    generation, so idempotent for the agents). One transaction and one Redis round trip for
    all of them.

    Raises:
        ConfigError: a start of an instance whose config lacks what a live run needs
            (nothing is changed then).
    """
    if not instances:
        return
    facts: dict[str, ConfigFacts] = {}
    if desired == DesiredState.RUNNING:
        facts, errors = await check_starts(session, instances)
        if errors:
            raise next(iter(errors.values()))
    await record_desired(session, redis, settings, instances, desired, facts, restart=restart, action=action)


async def record_desired(
    session: AsyncSession, redis: Redis, settings: Settings, instances: list[Instance],
    desired: DesiredState, facts: dict[str, ConfigFacts], *, restart: bool = False, action: str,
) -> None:
    """:func:`set_desired_many` without its check: for a caller that has checked each start
    itself with :func:`check_starts` (a bulk action, which leaves out the ones that fail).
    ``facts``: the instances' :class:`ConfigFacts` from it (may be empty for a stop). A start
    names its files by digest; their documents are read only for an agent that lacks them."""
    if not instances:
        return
    events = []
    now = utcnow()
    starting = desired == DesiredState.RUNNING
    for instance in instances:
        instance.desired_state = desired
        instance.generation += 1
        events.append(Event(
            time=now, kind="instance.command", instance_id=instance.id, host_id=instance.host_id,
            data={"action": action, "desired": desired, "generation": instance.generation},
        ))
    commands = [_command(instance, None, settings, restart=restart,
                         digest=facts[instance.id].files_digest if starting else None)
                for instance in instances]
    session.add_all(events)
    await session.commit()
    if starting:  # the hosts' api-keys.json before the starts
        await notify_hosts(session, redis, settings, [i.host_id for i in instances])

    async def files_of(ids: list[str]) -> dict[str, dict[str, str]]:
        wanted = set(ids)
        configs = await current_configs(session, [i for i in instances if i.id in wanted])
        return {instance_id: config_files(row.document) for instance_id, row in configs.items()}

    messages = await _command_messages(redis, instances, commands, files_of)
    async with redis.pipeline(transaction=False) as pipe:
        for host_id, message in messages:
            pipe.xadd(streams.agent_commands(host_id), {"data": message.model_dump_json()},
                      maxlen=10_000, approximate=True)
        await pipe.execute()
    await publish_events(redis, events, maxlen=settings.events_stream_maxlen)


#: Config bytes (``spec.files``) per SyncCommand of many starts. Starts of configs the agent
#: holds carry none (``without_sent_files``) and go all in one: the agent prepares every
#: start before the first bot takes the cores. Those that carry files (~28 KB per passivbot
#: config) go a few at a time: 100 in one message (2.8 MB) left the idle agent ~1 MiB larger
#: (scripts/bench/agent_resources.py, target 50 MB).
SYNC_FILES_BYTES = 700_000


async def _command_messages(
    redis: Redis, instances: list[Instance], commands: list[ApplyCommand], files_of: FilesOf,
) -> list[tuple[str, ApplyCommand | SyncCommand]]:
    """``(host id, message)`` for each command stream entry: the commands for one host (files
    :func:`without_sent_files`, read with ``files_of``) go as SyncCommands (one alone as its
    ApplyCommand), split where their files would pass ``SYNC_FILES_BYTES``. The agent takes
    each in one read: it signals the bots of a stop back to back (sent one by one, the later
    commands reached it while the first bots' exits held the cores: the last SIGINT went
    0.44 s after the first in the fleet bench), and prepares all the starts before it hands
    them to its spawner's threads (``agent.process.Spawner``)."""
    by_host: dict[str, list[ApplyCommand]] = {}
    for instance, command in zip(instances, commands, strict=True):
        by_host.setdefault(instance.host_id, []).append(command)
    chunks: list[tuple[str, list[ApplyCommand]]] = []
    for host_id, group in by_host.items():
        chunk: list[ApplyCommand] = []
        size = 0
        for command in await without_sent_files(redis, host_id, group, files_of):
            files = sum(len(text) for text in command.spec.files.values())
            if chunk and size + files > SYNC_FILES_BYTES:
                chunks.append((host_id, chunk))
                chunk, size = [], 0
            chunk.append(command)
            size += files
        chunks.append((host_id, chunk))
    return [(host_id, chunk[0] if len(chunk) == 1 else SyncCommand(instances=chunk)) for host_id, chunk in chunks]


async def update_instance(
    session: AsyncSession, redis: Redis, settings: Settings, instance: Instance, changes: dict[str, Any]
) -> Instance:
    """Change labels, env, supervision or a custom argv. The new spec reaches the agent at
    once and takes effect at the next start (restart to apply it now)."""
    if "labels" in changes:
        instance.labels = dict(changes["labels"])
    if "env" in changes:
        _check_env(changes["env"])
        instance.env = dict(changes["env"])
    if "supervision" in changes:
        instance.supervision = _check_supervision(changes["supervision"])
    if "argv" in changes:
        instance.argv = changes["argv"]
    return await _push_spec(session, redis, settings, instance, "instance.updated", {"changed": sorted(changes)})


async def _push_spec(
    session: AsyncSession, redis: Redis, settings: Settings, instance: Instance, kind: str, data: dict[str, Any]
) -> Instance:
    instance.generation += 1
    command = await apply_command(session, settings, instance)
    event = await record_event(session, kind=kind, instance_id=instance.id, host_id=instance.host_id, data=data)
    await session.commit()
    await notify_hosts(session, redis, settings, [instance.host_id])
    await send_command(redis, instance.host_id, command)
    await publish_event(redis, event, maxlen=settings.events_stream_maxlen)
    return instance


async def put_config(
    session: AsyncSession, redis: Redis, settings: Settings, instance: Instance, *,
    config: dict[str, Any] | None, config_text: str | None, comment: str = "",
) -> ConfigVersion:
    """Save a new config version (history is kept) and make it the instance's config. A
    running bot keeps its old config until it is restarted."""
    document, source = _parse_config(instance.profile, config, config_text)
    latest = await session.scalar(
        select(func.max(ConfigVersion.version)).where(ConfigVersion.instance_id == instance.id)
    )
    row = ConfigVersion(
        instance_id=instance.id, version=(latest or 0) + 1, document=document, source=source, comment=comment,
        account=account_of(document),
    )
    session.add(row)
    instance.config_version = row.version
    await session.flush()
    _learn_facts(row.id, instance.profile, document)
    await _push_spec(session, redis, settings, instance, "instance.config", {"version": row.version})
    return row


async def delete_instance(session: AsyncSession, redis: Redis, settings: Settings, instance: Instance) -> None:
    """Delete a stopped instance and tell its agent to forget it.

    Raises:
        Conflict: it should run or still has a process (stop it first).
    """
    if instance.desired_state == DesiredState.RUNNING or instance.state not in IDLE_STATES:
        raise Conflict(
            f"instance {instance.name!r} is {instance.state} (desired {instance.desired_state}): "
            "stop it and wait for STOPPED before deleting it"
        )
    instance.generation += 1
    command = RemoveCommand(instance_id=instance.id, generation=instance.generation)
    host_id = instance.host_id
    event = await record_event(
        session, kind="instance.deleted", instance_id=instance.id, host_id=host_id, data={"name": instance.name}
    )
    await session.delete(instance)
    await session.commit()
    await send_command(redis, host_id, command)
    await notify_hosts(session, redis, settings, [host_id])
    await publish_event(redis, event, maxlen=settings.events_stream_maxlen)


async def list_instances(
    session: AsyncSession, *, host: str | None = None, state: str | None = None,
    profile: str | None = None, label: str | None = None, q: str | None = None,
    limit: int = 50, offset: int = 0,
) -> tuple[list[Instance], int]:
    """Instances by name, filtered; ``label`` is ``key=value`` or ``key``; ``q`` matches the
    name. Returns (page, total)."""
    query = select(Instance)
    if host:
        host_row = await _host(session, host)
        query = query.where(Instance.host_id == host_row.id)
    if state:
        query = query.where(Instance.state == state.upper())
    if profile:
        query = query.where(Instance.profile == profile)
    if q:
        query = query.where(Instance.name.contains(q, autoescape=True))
    rows = list((await session.scalars(query.order_by(Instance.name))).all())
    if label:
        key, _, value = label.partition("=")
        rows = [r for r in rows if key in r.labels and (not value or str(r.labels[key]) == value)]
    return rows[offset : offset + limit], len(rows)
