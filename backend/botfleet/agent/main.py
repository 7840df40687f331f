"""``botfleet agent``: supervise this host's bots and dial in to the api."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal

import structlog

from botfleet.agent import process
from botfleet.agent.link import Link
from botfleet.agent.outbox import Outbox
from botfleet.agent.supervisor import Supervisor
from botfleet.logs import configure_logging
from botfleet.settings import AgentSettings

__all__ = ["cancel_until_done", "run_agent", "serve"]

log = structlog.get_logger(__name__)


async def serve(settings: AgentSettings, stop: asyncio.Event) -> None:
    """Run the supervisor and the link until ``stop`` is set; then stop watching and return,
    leaving every bot running (DESIGN.md invariant 2)."""
    outbox = Outbox()
    supervisor = Supervisor(
        settings.state_dir, settings, on_event=outbox.add_state, on_output=outbox.wake,
        on_settled=outbox.flush,
    )
    await supervisor.start()
    # What exists now (modules, pydantic schemas, adopted instances) lives as long as the
    # agent: keep it out of the collector's full passes.
    gc.freeze()
    link = Link(settings, supervisor, outbox)
    task = asyncio.create_task(link.run(), name="link")
    stopped = asyncio.create_task(stop.wait(), name="stop")
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        await cancel_until_done(task)
        await supervisor.close()
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]


async def cancel_until_done(task: asyncio.Task[object], every: float = 1.0) -> None:
    """Cancel ``task`` and wait for it to end, cancelling it again every ``every`` seconds
    until it does. Python 3.11's TaskGroup drops a cancellation that arrives while one of its
    tasks fails (it raises the failure instead), and the link catches failures to dial again:
    one cancel could be lost, and the agent then ignored SIGTERM for good (seen after a test's
    api went away). The task's own result or exception is not raised here."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=every)
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()


def run_agent(settings: AgentSettings) -> None:
    """Run the agent in the foreground until SIGINT or SIGTERM (blocking). Those signals end
    the agent without touching bots; so does SIGKILL.

    The event loop is asyncio's own. uvloop was tried (and is installed in a server venv, by
    uvicorn): with 100 bots at 1 line/s it used as much CPU (1.47-1.52 % of a core against
    1.48-1.55 %) and 2-3 MiB more RSS (48.7-49.8 MiB against 46.8-46.9; the target is 50 MB),
    measured back to back with scripts/bench/agent_resources.py (docs/benchmarks.md)."""
    configure_logging(settings.log_level, settings.log_format)
    process.one_malloc_arena()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        log.info("agent starting", host=settings.agent_host, api=settings.api_url,
                 state_dir=str(settings.state_dir))
        await serve(settings, stop)
        log.info("agent stopped; bots left running")

    asyncio.run(main())
