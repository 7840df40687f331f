"""The ``botfleet`` command (console script ``botfleet.cli:main``; also ``python -m botfleet``).

Subcommands: ``up`` (all of botfleet on this machine), ``api``, ``worker``, ``agent``,
``migrate``, ``demo``, ``create-user``, ``token create``. Settings come from ``BOTFLEET_*``
environment variables and ``.env`` (:mod:`botfleet.settings`).

Server-side modules are imported inside the subcommands: an agent on a VPS has only the base
install (DESIGN.md, Packaging), and ``botfleet --help`` must work everywhere.

Exit codes: 0 success (and Ctrl-C of ``up``), 1 failure (one line on stderr, no traceback for
expected errors), 2 bad usage (argparse).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Callable, Sequence

from botfleet import __version__

__all__ = ["CommandError", "build_parser", "main"]


class CommandError(RuntimeError):
    """An expected failure: printed as ``botfleet: <message>``, exit code 1."""


def _settings():  # type: ignore[no-untyped-def]
    from botfleet.settings import get_settings

    return get_settings()


def _configure_logging(settings) -> None:  # type: ignore[no-untyped-def]
    from botfleet.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)


def _port(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    return int(settings.api_port if args.port is None else args.port)


def cmd_up(args: argparse.Namespace) -> int:
    from botfleet.fleet.up import run_up

    settings = _settings()
    _configure_logging(settings)
    return run_up(settings, host=args.host or settings.api_host, port=_port(args, settings))


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings()
    _configure_logging(settings)
    # Graceful shutdown: uvicorn stops accepting, sse-starlette ends open streams on SIGTERM,
    # then uvicorn waits up to 10 s for responses in flight (TRAPS.md, sse-starlette).
    uvicorn.run(
        "botfleet.api.app:create_app", factory=True,
        host=args.host or settings.api_host, port=_port(args, settings),
        log_config=None, timeout_graceful_shutdown=10, proxy_headers=False,
    )
    return 0


def cmd_worker(_args: argparse.Namespace) -> int:
    from botfleet.jobs.worker import run_worker

    settings = _settings()
    _configure_logging(settings)
    run_worker(settings)
    return 0


def cmd_agent(_args: argparse.Namespace) -> int:
    # structlog imports optional packages at import time when they are installed, as in a
    # server venv: rich and through it pygments (structlog.dev; litestar brings them), +3.8
    # MiB of RSS, for its default exception formatter only, which
    # botfleet.logs.configure_logging replaces with plain tracebacks; and greenlet
    # (structlog.threadlocal, deprecated; SQLAlchemy[asyncio] brings it), +1.7 MiB, for
    # greenlet-local context the agent never has. Both against the agent's 50 MB target. A
    # None entry in sys.modules makes `import x` raise ImportError (Python's import system,
    # "The module cache"); structlog then takes the branch it has for them not being
    # installed. Only in this process (the agent), and before anything imports structlog.
    for optional in ("rich", "greenlet"):
        sys.modules.setdefault(optional, None)  # type: ignore[arg-type]
    from botfleet.agent.main import run_agent
    from botfleet.settings import get_agent_settings

    settings = get_agent_settings()
    _configure_logging(settings)
    run_agent(settings)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from botfleet.fleet.migrate import redact, upgrade

    settings = _settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    revision = upgrade(settings.database, args.revision)
    print(f"database {redact(settings.database)} is at revision {revision or 'base (empty)'}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from botfleet.fleet.bootstrap import read_cli_token
    from botfleet.fleet.demo_seed import seed_demo

    settings = _settings()
    token = args.token or read_cli_token(settings.home)
    if not token:
        raise CommandError(
            f"no API token: pass --token, or run `botfleet up` once (it writes "
            f"{settings.home.resolve() / 'cli.token'})"
        )
    fleet = seed_demo(args.url or settings.api_public_url, token, settings.home / "demo.json")
    print(f"demo fleet on {fleet.url} (open it in a browser):")
    for item in fleet.items:
        what = "created" if item.created else "exists "
        print(f"  {what} {item.kind:<9} {item.name:<20} {item.id}")
    print("\nwatch them (server-sent events):")
    if not args.token:
        print(f"  TOKEN=$(cat {settings.home.resolve() / 'cli.token'})")
    for item in fleet.items:
        print(f"  curl -N -H \"Authorization: Bearer $TOKEN\" {item.watch}")
    print(f"  curl -N -H \"Authorization: Bearer $TOKEN\" {fleet.url}/api/v1/events")
    return 0


def cmd_create_user(args: argparse.Namespace) -> int:
    from botfleet.fleet.auth import create_user

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise CommandError("the passwords differ")
    else:
        raise CommandError("no terminal to ask for a password: use --password-stdin")

    async def create(session) -> str:  # type: ignore[no-untyped-def]
        await create_user(session, args.name, password, admin=args.admin)
        return f"user {args.name} created" + (" (admin)" if args.admin else "")

    print(_with_session(create))
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from botfleet.db.models import User
    from botfleet.fleet.auth import create_api_token

    owner = args.user or _settings().admin_user

    async def create(session) -> str:  # type: ignore[no-untyped-def]
        user = await session.scalar(select(User).where(User.username == owner))
        if user is None:
            raise CommandError(f"no user {owner!r}: pass --user NAME of an existing user")
        token, _ = await create_api_token(session, user, args.name)
        return token

    print(_with_session(create))
    return 0


def _with_session(fn: Callable) -> str:  # type: ignore[type-arg]
    """Run ``fn(session)`` against the migrated database and commit."""
    from botfleet.db.session import create_engine, create_sessionmaker
    from botfleet.fleet.migrate import current_revision, head_revision

    url = _settings().database

    async def run() -> str:
        revision = await current_revision(url)
        if revision != head_revision():
            raise CommandError(
                f"the database is at revision {revision or 'base (empty)'}, botfleet needs "
                f"{head_revision()}: run `botfleet migrate` first"
            )
        engine = create_engine(url)
        try:
            async with create_sessionmaker(engine)() as session:
                result = await fn(session)
                await session.commit()
                return result  # type: ignore[no-any-return]
        finally:
            await engine.dispose()

    return asyncio.run(run())


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``botfleet`` (each subparser sets ``func``)."""
    parser = argparse.ArgumentParser(
        prog="botfleet",
        description="A control panel for fleets of passivbot trading bots.",
        epilog="Settings: BOTFLEET_* environment variables or .env (see README.md).",
    )
    parser.add_argument("--version", action="version", version=f"botfleet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int], text: str,
            parent=sub) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
        p = parent.add_parser(name, help=text, description=text)
        p.set_defaults(func=func)
        return p

    def listen(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", help="address to listen on (default: BOTFLEET_API_HOST)")
        p.add_argument("--port", type=int, help="port to listen on (default: BOTFLEET_API_PORT)")

    listen(add("up", cmd_up, "Run botfleet on this machine: embedded Redis when none is "
               "configured, migrations, api, worker and the local agent. Ctrl-C stops "
               "botfleet; bots keep running."))
    listen(add("api", cmd_api, "Serve the REST + SSE api (uvicorn)."))
    add("worker", cmd_worker, "Run backtest and optimize jobs (arq worker).")
    add("agent", cmd_agent, "Supervise this host's bots (dials in to BOTFLEET_API_URL).")
    p = add("migrate", cmd_migrate, "Upgrade the database schema (alembic).")
    p.add_argument("--revision", default="head", help="target revision (default: head)")
    p = add("demo", cmd_demo, "Create simulated demo bots, a backtest and an optimize job "
            "on a running botfleet.")
    p.add_argument("--url", help="api URL (default: BOTFLEET_PUBLIC_URL or the api address)")
    p.add_argument("--token", help="API token (default: the one in HOME/cli.token)")
    p = add("create-user", cmd_create_user, "Create a user (asks for the password).")
    p.add_argument("name")
    p.add_argument("--admin", action="store_true", help="make the user an admin")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of stdin")
    token = add("token", lambda _a: 0, "API tokens for scripts.")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    p = add("create", cmd_token_create, "Create an API token and print it (once).", token_sub)
    p.add_argument("name", help="what the token is for, e.g. 'grafana'")
    p.add_argument("--user", help="owner (default: BOTFLEET_ADMIN_USER)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the subcommand and exit with its code."""
    args = build_parser().parse_args(argv)
    sys.exit(_run(args))


#: Errors that are expected failures, by module (checked only once a module is loaded, so the
#: agent-only install and `botfleet --help` import no server code).
_EXPECTED = {
    "botfleet.fleet.bootstrap": "BootstrapError",
    "botfleet.fleet.demo_seed": "DemoError",
    "botfleet.fleet.errors": "FleetError",
    "botfleet.fleet.migrate": "MigrationError",
    "botfleet.fleet.up": "UpError",
    "pydantic": "ValidationError",
}


def _is_expected(exc: BaseException) -> bool:
    if isinstance(exc, CommandError):
        return True
    return any(
        (module := sys.modules.get(name)) is not None and isinstance(exc, getattr(module, cls))
        for name, cls in _EXPECTED.items()
    )


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if not _is_expected(exc):
            raise
        message = getattr(exc, "message", None) or str(exc)
        if type(exc).__name__ == "ValidationError" and hasattr(exc, "errors"):
            message = "invalid settings: " + "; ".join(
                f"BOTFLEET_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
                for e in exc.errors()
            )
        print(f"botfleet: {message}", file=sys.stderr)
        return 1
