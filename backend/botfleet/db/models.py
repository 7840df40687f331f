"""SQL schema (SQLAlchemy 2 declarative). Alembic migrations in ``alembic/versions`` follow it.

Ids are UUID4 strings except ``events.id``, an ever-growing integer. Times are timezone-aware
UTC. State columns hold :class:`botfleet.protocol.InstanceState` / :class:`JobStatus` values.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, orm_insert_sentinel
from sqlalchemy.types import TypeDecorator

__all__ = [
    "Account",
    "ApiToken",
    "Base",
    "ConfigVersion",
    "Event",
    "Host",
    "Instance",
    "Job",
    "JobKind",
    "JobStatus",
    "UTCDateTime",
    "User",
    "new_id",
    "utcnow",
]


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class JobKind(StrEnum):
    BACKTEST = "backtest"
    OPTIMIZE = "optimize"


class JobStatus(StrEnum):
    """``queued -> running -> succeeded | failed | cancelled``; ``cancelling`` while a running
    job's process tree is being stopped."""

    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone: it gets naive UTC
    in, aware UTC out)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; botfleet stores UTC-aware datetimes only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A login session (``kind="session"``, expires) or a long-lived API token (``"api"``).
    Only the SHA-256 of the token is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    kind: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)


class Host(Base):
    """A machine that runs bots. ``local`` always exists. ``agent_token_hash`` is the SHA-256
    of the host's agent token."""

    __tablename__ = "hosts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    address: Mapped[str | None] = mapped_column(String(255), default=None)
    port: Mapped[int] = mapped_column(Integer, default=22)
    username: Mapped[str | None] = mapped_column(String(64), default=None)
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    agent_token_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    status: Mapped[str] = mapped_column(String(16), default="unknown")
    agent_version: Mapped[str | None] = mapped_column(String(32), default=None)
    agent_run_id: Mapped[str | None] = mapped_column(String(64), default=None)
    instances_dir: Mapped[str | None] = mapped_column(Text, default=None)
    last_seen_at: Mapped[datetime | None] = mapped_column(default=None)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # SSH (remote hosts, botfleet.remote). Secrets are Fernet tokens, never returned.
    ssh_key_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    ssh_key_path: Mapped[str | None] = mapped_column(Text, default=None)
    ssh_passphrase_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    #: The pinned server key, OpenSSH public key format (``ssh-ed25519 AAAA...``).
    host_key: Mapped[str | None] = mapped_column(Text, default=None)
    host_key_fingerprint: Mapped[str | None] = mapped_column(String(128), default=None)
    #: ``direct`` (the agent dials the api's public URL) or ``tunnel`` (reverse SSH forward).
    connect_mode: Mapped[str] = mapped_column(String(16), default="direct")
    #: Loopback port on the host that the reverse tunnel listens on (``tunnel`` mode).
    tunnel_port: Mapped[int] = mapped_column(Integer, default=18750)
    #: botfleet's directory on the host (relative paths are under the SSH user's home).
    base_dir: Mapped[str] = mapped_column(Text, default="botfleet")
    provisioned_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Account(Base):
    """A passivbot account (one entry of ``api-keys.json``, keyed by ``name``): ``secret`` is
    the Fernet token of the entry's JSON object (``exchange``, ``key``, ``secret``, ...)."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    exchange: Mapped[str] = mapped_column(String(32))
    secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Instance(Base):
    """One long-running bot. ``generation`` grows with every command sent for it (fencing,
    invariant 1). ``supervision`` holds the :class:`botfleet.protocol.ProcessSpec` supervision
    fields the user set (autorestart, exitcodes, startsecs, startretries, backoff_*)."""

    __tablename__ = "instances"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    host_id: Mapped[str] = mapped_column(ForeignKey("hosts.id"), index=True)
    profile: Mapped[str] = mapped_column(String(32))
    simulated: Mapped[bool] = mapped_column(Boolean, default=False)
    argv: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    env: Mapped[dict[str, Any]] = mapped_column(default=dict)
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    supervision: Mapped[dict[str, Any]] = mapped_column(default=dict)
    desired_state: Mapped[str] = mapped_column(String(16), default="stopped")
    generation: Mapped[int] = mapped_column(Integer, default=0)
    config_version: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(16), default="STOPPED", index=True)
    pid: Mapped[int | None] = mapped_column(Integer, default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    state_changed_at: Mapped[datetime | None] = mapped_column(default=None)
    restart_count: Mapped[int] = mapped_column(Integer, default=0)
    exit_code: Mapped[int | None] = mapped_column(Integer, default=None)
    exit_signal: Mapped[str | None] = mapped_column(String(16), default=None)
    state_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ConfigVersion(Base):
    """One saved version of an instance's config document. ``source`` is the text as uploaded
    (JSON or HJSON), ``document`` the parsed object."""

    __tablename__ = "config_versions"
    __table_args__ = (UniqueConstraint("instance_id", "version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    instance_id: Mapped[str] = mapped_column(
        ForeignKey("instances.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column()
    source: Mapped[str] = mapped_column(Text)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: ``live.user`` of ``document`` (the passivbot account it names), kept beside it so a
    #: host's credential set is one query, not a parse of every config on the host.
    account: Mapped[str | None] = mapped_column(String(128), default=None)


class Event(Base):
    """A persisted fact: ``kind`` is e.g. ``instance.state``, ``instance.created``,
    ``job.status``, ``host.status``; ``data`` its details."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    time: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    host_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    instance_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    job_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Lets SQLAlchemy insert many events in one statement and still give each its id
    #: (insertmanyvalues with ordered RETURNING). SQLite cannot tie new rowids to the order
    #: of the rows otherwise, and SQLAlchemy then sends one INSERT per event: 43 state changes
    #: in one agent batch were 43 round trips through the driver's thread, each waiting for a
    #: core while the bots of a bulk start took them. NULL outside an insert of many.
    _sentinel: Mapped[int | None] = orm_insert_sentinel()


class Job(Base):
    """One backtest or optimize run. ``config`` is the effective config document (instance
    config or uploaded document with ``overrides`` applied). ``progress`` is 0..1."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED, index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    profile: Mapped[str] = mapped_column(String(32))
    simulated: Mapped[bool] = mapped_column(Boolean, default=False)
    instance_id: Mapped[str | None] = mapped_column(
        ForeignKey("instances.id", ondelete="SET NULL"), default=None, index=True
    )
    config: Mapped[dict[str, Any]] = mapped_column()
    overrides: Mapped[dict[str, Any]] = mapped_column(default=dict)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    progress_detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    job_dir: Mapped[str | None] = mapped_column(Text, default=None)
    worker: Mapped[str | None] = mapped_column(String(128), default=None)
    pid: Mapped[int | None] = mapped_column(Integer, default=None)
    exit_code: Mapped[int | None] = mapped_column(Integer, default=None)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
