"""The api: a litestar app built by :func:`create_app` (``uvicorn --factory``). Stateless: any
replica serves any request or stream; state lives in SQL and Redis."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import structlog
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.static_files import create_static_files_router
from redis.asyncio import Redis

from botfleet import __version__
from botfleet.api.accounts import AccountController, AgentCredentialsController
from botfleet.api.agent import AgentController
from botfleet.api.auth import PUBLIC, AuthController, BearerAuth, auth_cache_lifespan
from botfleet.api.deps import dependencies
from botfleet.api.events import EventController
from botfleet.api.health import HealthController, MetricsController
from botfleet.api.hosts import HostController
from botfleet.api.instances import InstanceController
from botfleet.api.jobs import JobController
from botfleet.api.problems import exception_handlers
from botfleet.api.users import UserController
from botfleet.db.session import create_engine, create_sessionmaker
from botfleet.fleet.agents import mark_offline_hosts
from botfleet.logs import configure_logging
from botfleet.remote.tunnels import remote_lifespan
from botfleet.settings import Settings, get_settings
from botfleet.tasks import background

__all__ = ["create_app"]

log = structlog.get_logger(__name__)
FRONTEND = Path(__file__).resolve().parents[3] / "frontend"


async def _watch_hosts(app: Litestar) -> None:
    settings: Settings = app.state.settings
    while True:
        await asyncio.sleep(max(1.0, settings.host_offline_after / 3))
        try:
            async with app.state.sessionmaker() as session:
                await mark_offline_hosts(session, app.state.redis, settings)
        except Exception:  # noqa: BLE001 - keep watching; the next round retries
            log.exception("host watch failed")


@contextlib.asynccontextmanager
async def _lifespan(app: Litestar) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    engine = create_engine(settings.database)
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    if not settings.redis_url:
        raise RuntimeError("BOTFLEET_REDIS_URL is not set: `botfleet up` sets it, or point it at your Redis")
    app.state.redis = Redis.from_url(settings.redis_url, decode_responses=True, max_connections=1000,
                                     health_check_interval=30)
    try:
        async with background(_watch_hosts(app), "host watch"):
            yield
    finally:
        await app.state.redis.aclose()
        await engine.dispose()


def _frontend_routes() -> list:  # type: ignore[type-arg]
    dist = FRONTEND / "dist"
    directory = dist if dist.is_dir() else FRONTEND
    if not (directory / "index.html").exists():
        return []
    return [create_static_files_router(path="/", directories=[directory], html_mode=True, include_in_schema=False)]


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the api. ``settings`` defaults to :func:`get_settings` (environment)."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)
    app = Litestar(
        route_handlers=[
            HealthController, MetricsController, AuthController, InstanceController, HostController,
            EventController, JobController, AgentController, AccountController,
            AgentCredentialsController, UserController, *_frontend_routes(),
        ],
        dependencies=dependencies,
        middleware=[DefineMiddleware(BearerAuth, exclude=PUBLIC)],
        exception_handlers=exception_handlers,
        lifespan=[_lifespan, auth_cache_lifespan, remote_lifespan],
        openapi_config=OpenAPIConfig(title="botfleet", version=__version__, path="/schema"),
        cors_config=CORSConfig(allow_origins=[]),
        logging_config=None,  # structlog (botfleet.logs) formats every log line
        debug=False,
    )
    app.state.settings = settings
    return app
