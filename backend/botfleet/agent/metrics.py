"""Host metrics for heartbeats (psutil)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import psutil

import botfleet
from botfleet.protocol import HostMetrics

__all__ = ["host_metrics"]

_SELF = psutil.Process()


def host_metrics(state_dir: Path) -> HostMetrics:
    """This host now: CPU % of all cores since the previous call (the first call says 0.0),
    memory and the state dir's disk in bytes, load averages, the agent's clock (UTC) and
    resident memory (bytes)."""
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(str(state_dir if state_dir.exists() else Path("/")))
    return HostMetrics(
        cpu_percent=psutil.cpu_percent(interval=None),
        memory_total=memory.total,
        memory_used=memory.total - memory.available,
        disk_total=disk.total,
        disk_free=disk.free,
        load=os.getloadavg(),
        time=datetime.now(UTC),
        agent_version=botfleet.__version__,
        agent_rss=_SELF.memory_info().rss,
    )
