"""Database migrations, run from code (``botfleet migrate``, ``botfleet up``).

The migration scripts live in ``alembic/`` at the root of the botfleet checkout (DESIGN.md,
Layout), next to ``alembic.ini`` for developers. This module finds that directory from the
package's own location (``backend/botfleet/fleet/migrate.py`` -> ``../../../alembic``), so
``botfleet migrate`` works from any working directory as long as botfleet is installed from a
checkout (``pip install -e``: what ``scripts/run.sh`` and ``docker/Dockerfile`` do). See
docs/operations.md, "Database migrations".

On PostgreSQL an advisory lock serialises concurrent upgrades (two ``botfleet migrate`` or
``up`` started at once); SQLite serialises writers itself.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from botfleet.db.session import create_engine

__all__ = [
    "MigrationError",
    "alembic_config",
    "alembic_dir",
    "current_revision",
    "downgrade_async",
    "head_revision",
    "redact",
    "upgrade",
    "upgrade_async",
]

#: Arbitrary constant key of the PostgreSQL advisory lock held while migrating.
_PG_LOCK_KEY = 0x626F7466  # "botf"


class MigrationError(RuntimeError):
    """A migration could not run: database unreachable, bad URL, scripts missing, SQL error.
    The message is one line meant for the user."""


def alembic_dir() -> Path:
    """The ``alembic/`` directory of the checkout botfleet runs from.

    Raises:
        MigrationError: it is missing (botfleet installed from a wheel, not a checkout).
    """
    path = Path(__file__).resolve().parents[3] / "alembic"
    if not (path / "env.py").is_file():
        raise MigrationError(
            f"migration scripts not found at {path}: install botfleet from a source checkout "
            "(pip install -e '.[server]', as scripts/run.sh does)"
        )
    return path


def alembic_config(url: str) -> Config:
    """An Alembic :class:`Config` for ``url`` that does not read alembic.ini (so it leaves the
    process's logging alone)."""
    config = Config()
    config.set_main_option("script_location", str(alembic_dir()))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logging"] = False
    return config


def redact(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid database URL>"


def head_revision() -> str | None:
    """The newest revision the scripts know."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


async def upgrade_async(url: str, revision: str = "head") -> str | None:
    """Upgrade the database at ``url`` (async SQLAlchemy URL) to ``revision``; returns the
    revision it is at afterwards.

    Raises:
        MigrationError: unreachable database, bad URL, missing scripts or failing SQL.
    """
    return await _migrate(url, revision, command.upgrade)


async def downgrade_async(url: str, revision: str) -> str | None:
    """Downgrade the database at ``url`` to ``revision`` (``"base"``: drop everything).
    Raises as :func:`upgrade_async`."""
    return await _migrate(url, revision, command.downgrade)


async def _migrate(url, revision, step):  # type: ignore[no-untyped-def]
    config = alembic_config(url)
    postgres = url.startswith("postgresql")

    def run(connection: Connection) -> str | None:
        if postgres:
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        config.attributes["connection"] = connection
        step(config, revision)
        return MigrationContext.configure(connection).get_current_revision()

    return await _with_connection(url, run, commit=True)


def upgrade(url: str, revision: str = "head") -> str | None:
    """Blocking form of :func:`upgrade_async` (not from inside a running event loop)."""
    return asyncio.run(upgrade_async(url, revision))


async def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at (None: never migrated).

    Raises:
        MigrationError: unreachable database or bad URL.
    """

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    return await _with_connection(url, read, commit=False)


async def _with_connection(url, fn, *, commit: bool):  # type: ignore[no-untyped-def]
    try:
        engine = create_engine(url)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise MigrationError(f"invalid database URL {redact(url)}: {exc}") from None
    try:
        async with engine.connect() as connection:
            if url.startswith("sqlite"):
                # Batch migrations copy tables; with foreign keys on, dropping the old copy
                # would cascade (https://alembic.sqlalchemy.org/en/latest/batch.html).
                await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            result = await connection.run_sync(fn)
            if commit:
                await connection.commit()
            return result
    except (OSError, DBAPIError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        if isinstance(exc, OSError) or "connect" in reason.lower() or _is_connect_error(exc):
            raise MigrationError(f"database is not reachable: {redact(url)}: {reason}") from None
        raise MigrationError(f"migration failed on {redact(url)}: {reason}") from None
    finally:
        await engine.dispose()


def _is_connect_error(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", None)
    return type(orig).__name__ in {"InvalidCatalogNameError", "InvalidPasswordError"} or (
        isinstance(getattr(orig, "__cause__", None), OSError)
    )
