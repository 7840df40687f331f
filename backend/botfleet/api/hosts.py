"""``/api/v1/hosts``: the machines that run bots and their health (``local`` always exists;
adding VPSes over SSH comes with the remote-hosts work)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Controller, get
from pydantic import BaseModel
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from botfleet.db.models import Host, Instance, User
from botfleet.fleet.errors import NotFound

__all__ = ["HostController"]


class HostOut(BaseModel):
    id: str
    name: str
    address: str | None
    status: str
    agent_version: str | None
    last_seen_at: datetime | None
    metrics: dict[str, Any] | None
    labels: dict[str, Any]
    instances: dict[str, int]


async def _out(session: AsyncSession, host: Host) -> HostOut:
    counts = dict((await session.execute(
        select(Instance.state, func.count()).where(Instance.host_id == host.id).group_by(Instance.state)
    )).all())
    return HostOut(id=host.id, name=host.name, address=host.address, status=host.status,
                   agent_version=host.agent_version, last_seen_at=host.last_seen_at, metrics=host.metrics,
                   labels=host.labels, instances={str(k): int(v) for k, v in counts.items()})


class HostController(Controller):
    path = "/api/v1/hosts"
    tags = ["hosts"]

    @get("/", operation_id="listHosts")
    async def list_hosts(self, session: AsyncSession, user: User) -> list[HostOut]:
        return [await _out(session, h) for h in await session.scalars(select(Host).order_by(Host.name))]

    @get("/{host_id:str}", operation_id="getHost")
    async def get_host(self, host_id: str, session: AsyncSession, user: User) -> HostOut:
        host = await session.scalar(select(Host).where(or_(Host.id == host_id, Host.name == host_id)))
        if host is None:
            raise NotFound(f"no host {host_id!r}")
        return await _out(session, host)
