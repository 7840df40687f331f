"""Alembic environment of botfleet (async SQLAlchemy; SQLite and PostgreSQL).

Two ways in:
- ``botfleet migrate`` / ``botfleet up`` (:mod:`botfleet.fleet.migrate`) open the connection
  themselves and hand it over in ``config.attributes["connection"]``;
- the ``alembic`` command in a checkout (``alembic upgrade head``): the URL is ``-x url=...``,
  else ``sqlalchemy.url`` from alembic.ini, else botfleet's settings.

SQLite runs in batch mode (``render_as_batch``): it cannot ALTER most things in place, so
Alembic copies the table (https://alembic.sqlalchemy.org/en/latest/batch.html).
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator

from botfleet.db.models import Base

config = context.config
target_metadata = Base.metadata

if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if url:
        return url
    from botfleet.settings import get_settings

    return get_settings().database


def _render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    """Render botfleet's column types (TypeDecorators such as ``UTCDateTime``) as the type
    they store, so a migration never imports model code that may change later."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl_instance!r}"
    return False


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=True,
        render_item=_render_item,
        **kwargs,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``alembic upgrade head --sql``)."""
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    from botfleet.db.session import create_engine

    engine = create_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
