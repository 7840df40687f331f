"""Background tasks that live as long as a block (an app's lifespan, a service)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any

__all__ = ["background"]


@contextlib.asynccontextmanager
async def background(coro: Coroutine[Any, Any, Any], name: str) -> AsyncIterator[asyncio.Task[Any]]:
    """Run ``coro`` as a task named ``name`` while the block runs; on leaving it, cancel the
    task and wait for it to end. The task's own exception, if it failed earlier, is not
    raised here (a background loop logs its failures itself)."""
    task = asyncio.create_task(coro, name=name)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
