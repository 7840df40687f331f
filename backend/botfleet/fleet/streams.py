"""Redis key names shared by the api, the worker and tests. One place, so nobody spells a
key twice. Streams hold recent events and log lines; SQL holds history."""

from __future__ import annotations

__all__ = [
    "EVENTS",
    "agent_batches",
    "agent_commands",
    "agent_files",
    "agent_take_lock",
    "instance_logs",
    "job_cancel",
    "job_events",
]

#: Fleet-wide events (state changes, job transitions, host status): ``XADD`` with field ``data``
#: (a JSON object ``{"id", "time", "kind", "host_id", "instance_id", "job_id", "data"}``).
EVENTS = "botfleet:events"


def instance_logs(instance_id: str) -> str:
    """Stream of an instance's captured lines: fields ``line`` (text with its UTC timestamp)
    and ``seq`` (the agent's line number)."""
    return f"botfleet:logs:{instance_id}"


def job_events(job_id: str) -> str:
    """Stream of one job's events (status, progress, output lines), field ``data`` (JSON)."""
    return f"botfleet:job:{job_id}:events"


def job_cancel(job_id: str) -> str:
    """Key set by the api to ask the worker running ``job_id`` to cancel it."""
    return f"botfleet:job:{job_id}:cancel"


def agent_commands(host_id: str) -> str:
    """Stream of :mod:`botfleet.protocol` commands for one host's agent, field ``data``."""
    return f"botfleet:agent:{host_id}:commands"


def agent_files(host_id: str) -> str:
    """Hash ``instance_id -> files digest`` (:func:`botfleet.protocol.files_digest`) of the
    config files last sent to the host's agent in a command; a later command with the same
    files names them by digest only."""
    return f"botfleet:agent:{host_id}:files"


def agent_batches(host_id: str) -> str:
    """Hash ``run_id -> last accepted batch seq`` for deduplicating agent event batches."""
    return f"botfleet:agent:{host_id}:batches"


def agent_take_lock(host_id: str) -> str:
    """Lock (redis-py ``Lock``) held while one of the host's event batches is applied."""
    return f"botfleet:agent:{host_id}:take-lock"
