"""A throwaway botfleet database for tests and benchmarks: the schema, an admin with a known
password and an API token, and the host ``local`` with an agent token. Never for real use:
``botfleet up`` bootstraps with :mod:`botfleet.fleet.bootstrap`."""

from __future__ import annotations

from botfleet.db import Base, Host, create_engine, create_sessionmaker
from botfleet.fleet import auth
from botfleet.fleet.credentials import hash_token, new_token

__all__ = ["SCRATCH_ADMIN", "SCRATCH_PASSWORD", "prepare_scratch_database"]

SCRATCH_ADMIN = "admin"
SCRATCH_PASSWORD = "admin-password"


async def prepare_scratch_database(url: str, *, token_name: str = "tests") -> tuple[str, str]:
    """Create the schema at ``url`` (from the models), the admin and the ``local`` host.
    Returns (the admin's API token, the local host's agent token)."""
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with create_sessionmaker(engine)() as session:
        user = await auth.create_user(session, SCRATCH_ADMIN, SCRATCH_PASSWORD, admin=True)
        token, _ = await auth.create_api_token(session, user, token_name)
        agent_token = new_token()
        session.add(Host(name="local", agent_token_hash=hash_token(agent_token)))
        await session.commit()
    await engine.dispose()
    return token, agent_token
