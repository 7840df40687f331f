"""``/api/v1/hosts``: the machines that run bots (``local`` always exists), VPSes reached over
SSH with a pinned host key, their test, provisioning and rescue. Logic lives in
:mod:`botfleet.fleet.hosts` and :mod:`botfleet.remote.operations`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from litestar import Controller, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.params import Parameter
from pydantic import BaseModel, Field
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from botfleet.db.models import Host, Instance, User
from botfleet.fleet import hosts as service
from botfleet.fleet import metrics as host_metrics
from botfleet.remote import operations as ops
from botfleet.remote.pool import SSHPool
from botfleet.settings import Settings

__all__ = ["HostController", "provide_pool"]


def provide_pool(state: State) -> SSHPool:
    """The process's SSH pool (made by the remote lifespan, or on first use)."""
    pool = state.get("ssh_pool")
    if pool is None:
        pool = state.ssh_pool = SSHPool()
    return pool


class HostOut(BaseModel):
    id: str
    name: str
    address: str | None
    port: int
    username: str | None
    status: str
    agent_version: str | None
    last_seen_at: datetime | None
    metrics: dict[str, Any] | None
    labels: dict[str, Any]
    instances: dict[str, int]
    connect_mode: str
    tunnel_port: int
    base_dir: str
    host_key_fingerprint: str | None = Field(description="Pinned SSH host key (SHA256), None until accepted.")
    has_ssh_key: bool = Field(description="An uploaded private key is stored (encrypted; never returned).")
    ssh_key_path: str | None
    provisioned_at: datetime | None


class HostIn(BaseModel):
    name: str
    address: str
    port: int = 22
    username: str = "root"
    labels: dict[str, str] = Field(default_factory=dict)
    ssh_key: str | None = Field(default=None, description="Private key text (OpenSSH/PEM); stored encrypted.")
    ssh_key_path: str | None = Field(default=None, description="Or a private key file on the controller.")
    ssh_passphrase: str | None = None
    connect_mode: str = Field(default="direct", description="direct | tunnel (reverse SSH port forward).")
    tunnel_port: int = 18750
    base_dir: str = Field(default="botfleet", description="botfleet's directory on the host (relative: under home).")


class HostPatch(BaseModel):
    address: str | None = None
    port: int | None = None
    username: str | None = None
    labels: dict[str, str] | None = None
    ssh_key: str | None = None
    ssh_key_path: str | None = None
    ssh_passphrase: str | None = None
    connect_mode: str | None = None
    tunnel_port: int | None = None
    base_dir: str | None = None


class ScanOut(BaseModel):
    fingerprint: str
    key_type: str
    accepted: str | None
    matches: bool | None


class AcceptIn(BaseModel):
    fingerprint: str = Field(description="The SHA256 fingerprint shown by scan, e.g. 'SHA256:...'.")


class ProvisionIn(BaseModel):
    wheelhouse: str | None = Field(default=None, description="Controller directory of wheels for offline hosts.")
    wait: float = Field(default=60.0, ge=0, le=600, description="Seconds to wait for the agent to announce.")
    force: bool = False


class ForceIn(BaseModel):
    force: bool = False


async def _out(session: AsyncSession, host: Host) -> HostOut:
    counts = dict((await session.execute(
        select(Instance.state, func.count()).where(Instance.host_id == host.id).group_by(Instance.state)
    )).all())
    return HostOut(
        id=host.id, name=host.name, address=host.address, port=host.port, username=host.username,
        status=host.status, agent_version=host.agent_version, last_seen_at=host.last_seen_at,
        metrics=host.metrics, labels=host.labels, instances={str(k): int(v) for k, v in counts.items()},
        connect_mode=host.connect_mode, tunnel_port=host.tunnel_port, base_dir=host.base_dir,
        host_key_fingerprint=host.host_key_fingerprint, has_ssh_key=host.ssh_key_encrypted is not None,
        ssh_key_path=host.ssh_key_path, provisioned_at=host.provisioned_at,
    )


class HostController(Controller):
    path = "/api/v1/hosts"
    tags = ["hosts"]
    dependencies = {"pool": Provide(provide_pool, sync_to_thread=False)}

    @get("/", operation_id="listHosts")
    async def list_hosts(self, session: AsyncSession, user: User) -> list[HostOut]:
        return [await _out(session, h) for h in await session.scalars(select(Host).order_by(Host.name))]

    @get("/{host_id:str}", operation_id="getHost")
    async def get_host(self, host_id: str, session: AsyncSession, user: User) -> HostOut:
        return await _out(session, await service.get_host(session, host_id))

    @get("/{host_id:str}/metrics", operation_id="listHostMetrics")
    async def metrics(self, host_id: str, session: AsyncSession, redis: Redis, user: User,
                      since: datetime | None = None,
                      max_points: int = Parameter(default=2000, ge=2, le=20_000)) -> list[host_metrics.MetricsPoint]:
        """The host's metrics samples received after ``since`` (ISO 8601; default: all kept, up
        to a day), oldest first; long ranges are averaged down to ``max_points``."""
        host = await service.get_host(session, host_id)
        return await host_metrics.history(redis, host.id, since, max_points)

    @post("/", operation_id="createHost")
    async def create_host(self, data: HostIn, session: AsyncSession, redis: Redis, settings: Settings,
                          user: User) -> HostOut:
        host = await service.create_host(session, redis, settings, service.HostDraft(**data.model_dump()))
        return await _out(session, host)

    @patch("/{host_id:str}", operation_id="updateHost")
    async def update_host(self, host_id: str, data: HostPatch, session: AsyncSession, redis: Redis,
                          settings: Settings, user: User, pool: SSHPool) -> HostOut:
        host = await service.get_host(session, host_id)
        await service.update_host(session, redis, settings, host, data.model_dump(exclude_unset=True))
        pool.drop(host.id)
        return await _out(session, host)

    @delete("/{host_id:str}", operation_id="deleteHost")
    async def delete_host(self, host_id: str, session: AsyncSession, redis: Redis, settings: Settings,
                          user: User, pool: SSHPool) -> None:
        host = await service.get_host(session, host_id)
        await service.delete_host(session, redis, settings, host)
        pool.drop(host.id)

    @post("/{host_id:str}/scan", operation_id="scanHostKey", status_code=200)
    async def scan(self, host_id: str, session: AsyncSession, user: User) -> ScanOut:
        return ScanOut(**await service.scan_host(await service.get_host(session, host_id)))

    @post("/{host_id:str}/accept", operation_id="acceptHostKey", status_code=200)
    async def accept(self, host_id: str, data: AcceptIn, session: AsyncSession, redis: Redis,
                     settings: Settings, user: User, pool: SSHPool) -> HostOut:
        host = await service.get_host(session, host_id)
        await service.accept_host_key(session, redis, settings, host, data.fingerprint)
        pool.drop(host.id)
        return await _out(session, host)

    @post("/{host_id:str}/test", operation_id="testHost", status_code=200)
    async def test(self, host_id: str, session: AsyncSession, redis: Redis, settings: Settings, user: User,
                   pool: SSHPool) -> dict[str, Any]:
        host = await service.get_host(session, host_id)
        return await ops.test_host(session, redis, settings, pool, host)

    @post("/{host_id:str}/provision", operation_id="provisionHost", status_code=200)
    async def provision(self, host_id: str, data: ProvisionIn, session: AsyncSession, redis: Redis,
                        settings: Settings, user: User, pool: SSHPool) -> dict[str, Any]:
        host = await service.get_host(session, host_id)
        return await ops.provision_host(session, redis, settings, pool, host, wait=data.wait,
                                        wheelhouse=Path(data.wheelhouse) if data.wheelhouse else None)

    @post("/{host_id:str}/upgrade", operation_id="upgradeHost", status_code=200)
    async def upgrade(self, host_id: str, data: ProvisionIn, session: AsyncSession, redis: Redis,
                      settings: Settings, user: User, pool: SSHPool) -> dict[str, Any]:
        host = await service.get_host(session, host_id)
        return await ops.provision_host(session, redis, settings, pool, host, wait=data.wait, upgrade=True,
                                        force=data.force,
                                        wheelhouse=Path(data.wheelhouse) if data.wheelhouse else None)

    @post("/{host_id:str}/uninstall", operation_id="uninstallHost", status_code=200)
    async def uninstall(self, host_id: str, data: ForceIn, session: AsyncSession, redis: Redis,
                        settings: Settings, user: User, pool: SSHPool) -> dict[str, Any]:
        host = await service.get_host(session, host_id)
        return await ops.uninstall_host(session, redis, settings, pool, host, force=data.force)

    @post("/{host_id:str}/agent/restart", operation_id="restartHostAgent", status_code=200)
    async def restart_agent(self, host_id: str, session: AsyncSession, redis: Redis, settings: Settings,
                            user: User, pool: SSHPool) -> dict[str, Any]:
        host = await service.get_host(session, host_id)
        return await ops.restart_agent(session, redis, settings, pool, host)

    @get("/{host_id:str}/agent/log", operation_id="getHostAgentLog")
    async def agent_log(self, host_id: str, session: AsyncSession, redis: Redis, settings: Settings,
                        user: User, pool: SSHPool, max_bytes: int = 65536) -> dict[str, str]:
        host = await service.get_host(session, host_id)
        text = await ops.agent_log(session, redis, settings, pool, host, max(1, min(max_bytes, 4 << 20)))
        return {"log": text}

    @post("/{host_id:str}/stop-all", operation_id="stopAllHostBots", status_code=200)
    async def stop_all(self, host_id: str, session: AsyncSession, redis: Redis, settings: Settings,
                       user: User, pool: SSHPool) -> dict[str, Any]:
        host = await service.get_host(session, host_id)
        return await ops.stop_all_bots(session, redis, settings, pool, host)
