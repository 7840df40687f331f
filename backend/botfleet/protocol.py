"""The agent protocol: the only module shared by the controller side (fleet/, api/) and the
host side (agent/).

Flow (DESIGN.md, Processes):
1. The agent ``POST /api/v1/agent/announce`` an :class:`Announce` (its snapshot) and gets an
   :class:`AnnounceReply`.
2. It follows ``GET /api/v1/agent/commands`` (SSE, resumed with ``Last-Event-ID``); each event's
   ``data`` is one :class:`Command` as JSON, its ``id`` the Redis stream id.
3. It ``POST /api/v1/agent/events`` :class:`EventBatch` es numbered by ``seq`` (per agent run,
   starting at 1 with a fresh ``run_id``) as NDJSON, one batch per line, on one long-lived
   chunked upload that the api takes line by line as it arrives; the agent ends the upload
   now and then and the :class:`EventBatchReply` says the last ``seq`` taken. The api ignores
   a batch whose (run_id, seq) it has already taken, so a resent batch is counted once.

Fencing (invariant 1): every command for an instance carries the instance's ``generation``,
which only grows. An agent ignores a command whose generation is lower than the one it has
applied for that instance.

Everything here is pydantic v2 and imports nothing from the server packages.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "COMMAND_PING",
    "COMMAND_SILENCE",
    "PLACEHOLDERS",
    "PROTOCOL_VERSION",
    "AgentEvent",
    "Announce",
    "AnnounceReply",
    "ApplyCommand",
    "Autorestart",
    "Command",
    "CredentialsCommand",
    "DesiredState",
    "EventBatch",
    "EventBatchReply",
    "HostCredentials",
    "HostMetrics",
    "InstanceSnapshot",
    "InstanceState",
    "LogLines",
    "MetricsEvent",
    "ProcessSpec",
    "RemoveCommand",
    "StateChange",
    "StopStep",
    "SyncCommand",
    "encode_batch",
    "encode_log_lines",
    "files_digest",
]

#: 2: events as a streamed NDJSON upload, EventBatchReply.last_seq; 3: command-stream pings
#: every COMMAND_PING seconds, which the agent relies on to notice a dead link; 4:
#: ApplyCommand.files_digest, commands without the files the agent holds.
PROTOCOL_VERSION = 4

#: Seconds between the api's SSE pings on an agent's command stream.
COMMAND_PING = 2.0
#: Seconds without a byte on the command stream after which the agent takes its link as lost
#: and dials again on new connections: a TCP connection through a cut network (or a dead SSH
#: tunnel) stays open for many minutes, and after the cut its data waits for the kernel's
#: retransmission backoff (up to tens of seconds). Below the api's offline limit
#: (``BOTFLEET_HOST_OFFLINE_AFTER``, 10 s), so a host marked offline is already redialing.
COMMAND_SILENCE = 3 * COMMAND_PING

#: Placeholders an agent (or a job worker) replaces in ``ProcessSpec.argv``, ``cwd`` and
#: ``env`` values by plain string replacement (never ``str.format``):
#: ``{python}`` its own interpreter, ``{instance_dir}`` the instance's directory on that host,
#: ``{demo_v7_root}`` the passivbot stand-in's v7 repository root (botfleet/demo/v7root).
PLACEHOLDERS = ("{python}", "{instance_dir}", "{demo_v7_root}")


class InstanceState(StrEnum):
    """Supervisor's process states (supervisord.org, "Process States"), plus ``UNKNOWN``
    for an instance whose host is unreachable."""

    STOPPED = "STOPPED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    BACKOFF = "BACKOFF"
    STOPPING = "STOPPING"
    EXITED = "EXITED"
    FATAL = "FATAL"
    UNKNOWN = "UNKNOWN"


class DesiredState(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"


class Autorestart(StrEnum):
    """When a process that exited on its own is started again (Supervisor's ``autorestart``:
    ``unexpected`` is spelled ``on-failure`` as in PM2/systemd)."""

    ALWAYS = "always"
    ON_FAILURE = "on-failure"
    NEVER = "never"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StopStep(_Model):
    """One rung of a stop ladder: send ``signal`` (a ``signal.Signals`` name such as
    ``"SIGINT"``) to the process group, then wait up to ``timeout`` seconds for it to exit."""

    signal: str
    timeout: float = Field(ge=0)


class ProcessSpec(_Model):
    """How to run one instance on a host. Sizes in bytes, durations in seconds.

    ``files`` maps a path relative to the instance directory to its text content; the agent
    writes them (atomically) before each start, e.g. ``{"config.json": "..."}``. A command
    names them by :func:`files_digest` too (``ApplyCommand.files_digest``) and leaves their
    content out when the agent holds them already (see there).
    """

    argv: list[str] = Field(min_length=1)
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    files: dict[str, str] = Field(default_factory=dict)
    autorestart: Autorestart = Autorestart.ALWAYS
    exitcodes: list[int] = Field(default_factory=lambda: [0])
    startsecs: float = Field(default=1.0, ge=0)
    startretries: int = Field(default=3, ge=0)
    backoff_initial: float = Field(default=1.0, ge=0)
    backoff_max: float = Field(default=60.0, ge=0)
    backoff_reset_after: float = Field(default=60.0, ge=0)
    stop_ladder: list[StopStep] = Field(
        default_factory=lambda: [
            StopStep(signal="SIGINT", timeout=10.0),
            StopStep(signal="SIGTERM", timeout=5.0),
            StopStep(signal="SIGKILL", timeout=5.0),
        ]
    )
    add_timestamps: bool = True


def files_digest(files: dict[str, str]) -> str:
    """The name of a spec's ``files`` by content: BLAKE2b with a 16-byte digest (hashlib), hex
    (32 characters), of their JSON with sorted keys and no spaces. The api and the agent
    compute it alike; it is never a secret (files hold no credentials)."""
    data = json.dumps(files, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class ApplyCommand(_Model):
    """Make an instance match ``desired`` with ``spec``. ``restart=True`` stops a running
    process and starts it again (a user's ``restart``).

    ``files_digest`` names the instance's files (:func:`files_digest` of them). With
    ``spec.files`` empty it says "the files you hold with this digest": the api sends each
    instance's files to a host once and then only their digest (a bulk start of 100 passivbot
    bots is then ~70 KB instead of 2.8 MB of configs). An agent that holds no files with that
    digest starts nothing for this generation and announces itself again; the api answers an
    announce with the host's full state, files included. A stop may name files the agent
    lacks: it stops all the same. None (and no files): the command names no files; the agent
    then has none to start with."""

    kind: Literal["apply"] = "apply"
    instance_id: str
    generation: int = Field(ge=0)
    desired: DesiredState
    spec: ProcessSpec
    restart: bool = False
    files_digest: str | None = None


class RemoveCommand(_Model):
    """Forget an instance (the api only sends it for a stopped instance)."""

    kind: Literal["remove"] = "remove"
    instance_id: str
    generation: int = Field(ge=0)


class SyncCommand(_Model):
    """The desired state of the listed instances of a host, each applied as its ApplyCommand
    alone would be (fenced by generation). Sent with the host's full desired state after each
    announce, and with the instances of a stop of many (one message: the agent signals them
    all in one pass, before any of them exits and competes with it for the cores). Instances
    the agent has that are not listed are left as they are (reported, never stopped
    implicitly)."""

    kind: Literal["sync"] = "sync"
    instances: list[ApplyCommand]


class CredentialsCommand(_Model):
    """The passivbot accounts this host needs have changed: fetch them with
    ``GET /api/v1/agent/credentials`` (secrets never travel on the command stream, which sits
    in Redis). ``version`` is the digest of the set the api has now; an agent whose file
    already has it does nothing."""

    kind: Literal["credentials"] = "credentials"
    version: str


Command = Annotated[
    ApplyCommand | RemoveCommand | SyncCommand | CredentialsCommand, Field(discriminator="kind")
]


class HostCredentials(_Model):
    """``GET /api/v1/agent/credentials``: what a host's ``api-keys.json`` holds.

    ``accounts``: passivbot's api-keys.json entries by account name (the ``live.user`` of
    the host's instances), only those used by instances on this host. ``instances``: ids of
    the host's instances that run in their instance dir (they read ``api-keys.json`` there).
    ``dirs``: other working dirs of the host's bots (a passivbot v7 checkout) that read
    ``api-keys.json`` from there. ``version``: digest of this content."""

    version: str
    accounts: dict[str, dict[str, str | bool]]
    instances: list[str] = Field(default_factory=list)
    dirs: list[str] = Field(default_factory=list)


class InstanceSnapshot(_Model):
    instance_id: str
    generation: int
    desired: DesiredState
    state: InstanceState
    pid: int | None = None
    started_at: datetime | None = None
    restart_count: int = 0
    exit_code: int | None = None
    exit_signal: str | None = None


class HostMetrics(_Model):
    """Host health. cpu_percent of all cores (0-100), memory and disk in bytes, load averages
    over 1/5/15 minutes, ``time`` the agent's clock (UTC) for the clock offset."""

    cpu_percent: float
    memory_total: int
    memory_used: int
    disk_total: int
    disk_free: int
    load: tuple[float, float, float]
    time: datetime
    agent_version: str
    agent_rss: int


class Announce(_Model):
    host: str
    agent_version: str
    protocol_version: int = PROTOCOL_VERSION
    run_id: str
    instances_dir: str
    instances: list[InstanceSnapshot]
    metrics: HostMetrics | None = None


class AnnounceReply(_Model):
    """``resume_from`` is the command-stream id to follow from (exclusive) when the agent has
    no id of its own: the entry just before the :class:`SyncCommand` queued for this announce."""

    host_id: str
    server_time: datetime
    resume_from: str


class StateChange(_Model):
    """An instance moved from ``old`` to ``new``; ``reason`` is human-readable
    (``"exited with code 1"``, ``"killed by SIGKILL after stop ladder"``)."""

    kind: Literal["state"] = "state"
    instance_id: str
    generation: int
    old: InstanceState
    new: InstanceState
    time: datetime
    pid: int | None = None
    restart_count: int = 0
    exit_code: int | None = None
    exit_signal: str | None = None
    reason: str = ""


class LogLines(_Model):
    """Captured output lines of one instance, each already timestamped as written to disk
    (``2026-08-22T12:34:56.123456Z <line>``). ``first_seq`` numbers the first line; lines are
    numbered consecutively per instance on that host. ``dropped`` counts lines written to disk
    but not streamed because the stream could not keep up (they are only on the host's disk)."""

    kind: Literal["log"] = "log"
    instance_id: str
    first_seq: int
    lines: list[str]
    dropped: int = 0


class MetricsEvent(_Model):
    kind: Literal["metrics"] = "metrics"
    metrics: HostMetrics


AgentEvent = Annotated[StateChange | LogLines | MetricsEvent, Field(discriminator="kind")]


class EventBatch(_Model):
    run_id: str
    seq: int = Field(ge=1)
    events: list[AgentEvent]


class EventBatchReply(_Model):
    """The end of an event upload: ``accepted`` batches were new (the others had been taken
    before: resends, ignored); ``last_seq`` is the highest seq of the upload's run the api
    has taken (0 when the upload held no batch)."""

    accepted: int = Field(ge=0)
    last_seq: int = Field(ge=0)


# -- the agent's hot path: the JSON of EventBatch and LogLines without building models -------

_json_str = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def encode_log_lines(instance_id: str, first_seq: int, lines: list[str], dropped: int) -> bytes:
    """The JSON (UTF-8) of ``LogLines(instance_id=..., first_seq=..., lines=..., dropped=...)``
    as its ``model_dump_json`` would write it (same keys, same order), through the standard
    library's C encoder: the agent does this ~30 times a second when idle, where building and
    dumping the models cost a fifth of its Python time (docs/benchmarks.md)."""
    return b'{"kind":"log","instance_id":%s,"first_seq":%d,"lines":%s,"dropped":%d}' % (
        _json_str(instance_id).encode(), first_seq, _json_str(lines).encode(), dropped)


def encode_batch(run_id: str, seq: int, events: list[bytes]) -> bytes:
    """One NDJSON line (ending in ``\\n``) of an :class:`EventBatch` whose ``events`` are
    already JSON (``model_dump_json().encode()`` of a StateChange/MetricsEvent, or
    :func:`encode_log_lines`). The api reads it with ``EventBatch`` as any other line."""
    return b'{"run_id":%s,"seq":%d,"events":[%s]}\n' % (
        _json_str(run_id).encode(), seq, b",".join(events))
