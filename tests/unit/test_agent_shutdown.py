"""The agent keeps its promises when things go on long: the redial backoff stays at its cap
however many dials fail (it overflowed a float after ~1,030), and stopping the agent ends its
link task even when one cancellation is lost (Python 3.11's TaskGroup drops a cancellation
that meets a failing child, and the link catches failures to dial again)."""

from __future__ import annotations

import asyncio

from botfleet.agent.link import Backoff
from botfleet.agent.main import cancel_until_done


def test_the_backoff_stays_at_its_cap_after_thousands_of_failures() -> None:
    backoff = Backoff(0.2, 1.0)
    delays = [backoff.next() for _ in range(5000)]
    assert max(delays) <= 1.0
    assert min(delays[-100:]) >= 0.5  # capped, jittered in [0.5, 1] x cap
    backoff.reset()
    assert backoff.next() <= 0.2


async def test_a_task_that_swallows_a_cancellation_is_cancelled_again_until_it_ends() -> None:
    swallowed = 0

    async def link() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1  # lost, as the TaskGroup loses it: the loop dials again

    task = asyncio.create_task(link())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_until_done(task, every=0.05), timeout=10)
    assert task.cancelled() and swallowed == 1
