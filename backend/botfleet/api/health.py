"""``/api/v1/health/live`` (the process answers) and ``/ready`` (database and Redis answer),
the only calls without authentication; ``/api/v1/metrics`` in Prometheus' text format."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.datastructures import State
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from redis.asyncio import Redis
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from botfleet import __version__
from botfleet.db.models import Host, Instance, Job, User

__all__ = ["HealthController", "MetricsController"]


class HealthController(Controller):
    path = "/api/v1/health"
    tags = ["health"]

    @get("/live", operation_id="healthLive")
    async def live(self) -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @get("/ready", operation_id="healthReady")
    async def ready(self, state: State) -> Response[dict[str, str]]:
        checks: dict[str, str] = {}
        try:
            async with state.sessionmaker() as session:
                await session.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready; say which
            checks["database"] = f"error: {exc}"
        try:
            await state.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["redis"] = f"error: {exc}"
        ok = all(v == "ok" for v in checks.values())
        return Response({"status": "ok" if ok else "unavailable", **checks}, status_code=200 if ok else 503)


class MetricsController(Controller):
    path = "/api/v1/metrics"
    tags = ["health"]

    @get("/", operation_id="metrics", media_type=CONTENT_TYPE_LATEST)
    async def metrics(self, session: AsyncSession, redis: Redis, user: User) -> Response[bytes]:
        """Fleet gauges: instances by state, jobs by status and kind, hosts by status."""
        registry = CollectorRegistry()
        instances = Gauge("botfleet_instances", "Instances by process state", ["state"], registry=registry)
        for state, count in await session.execute(select(Instance.state, func.count()).group_by(Instance.state)):
            instances.labels(state).set(count)
        jobs = Gauge("botfleet_jobs", "Jobs by status and kind", ["status", "kind"], registry=registry)
        for status, kind, count in await session.execute(select(Job.status, Job.kind, func.count()).group_by(Job.status, Job.kind)):
            jobs.labels(status, kind).set(count)
        hosts = Gauge("botfleet_hosts", "Hosts by status", ["status"], registry=registry)
        for status, count in await session.execute(select(Host.status, func.count()).group_by(Host.status)):
            hosts.labels(status).set(count)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
