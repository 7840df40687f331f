"""When the agent sends an event batch (botfleet.agent.outbox: Batching, Outbox)."""

from __future__ import annotations

import asyncio

import pytest

from botfleet.agent.outbox import Batching, Outbox


def test_the_first_event_after_a_quiet_spell_goes_at_once() -> None:
    batching = Batching(max_wait=0.03, quiet=0.1, early=0.02)
    assert batching.send_at(oldest=10.0, last_send=9.8) == 10.0
    assert batching.send_at(oldest=10.0, last_send=float("-inf")) == 10.0


def test_under_a_steady_flow_events_wait_at_most_max_wait() -> None:
    batching = Batching(max_wait=0.03, quiet=0.1, early=0.02)
    assert batching.send_at(oldest=10.0, last_send=9.99) == 10.03


def test_an_event_arriving_after_early_sends_the_batch_on_its_own_wake_up() -> None:
    batching = Batching(max_wait=0.03, quiet=0.1, early=0.02)
    assert not batching.send_now(oldest=10.0, now=10.01)
    assert batching.send_now(oldest=10.0, now=10.025)


def test_early_beyond_max_wait_is_refused() -> None:
    with pytest.raises(ValueError, match="early"):
        Batching(max_wait=0.01, early=0.02)


async def test_a_lone_event_is_due_at_once_and_the_next_one_after_max_wait() -> None:
    loop = asyncio.get_running_loop()
    outbox = Outbox(Batching(max_wait=0.05, quiet=10.0, early=0.05))
    outbox.wake()
    assert await outbox.due(loop.time() + 1)  # nothing sent for `quiet`: at once
    start = loop.time()
    outbox.wake()
    assert await outbox.due(start + 1)
    assert loop.time() - start >= 0.045  # the timer, max_wait after the event


async def test_a_later_event_sends_the_batch_before_the_timer() -> None:
    loop = asyncio.get_running_loop()
    outbox = Outbox(Batching(max_wait=5.0, quiet=10.0, early=0.02))
    outbox.last_send = loop.time()  # a batch just went: the next one is held back
    start = loop.time()
    outbox.wake()
    loop.call_later(0.03, outbox.wake)  # output of another bot
    assert await outbox.due(start + 2)
    assert loop.time() - start < 1.0


async def test_due_gives_up_at_the_deadline_when_nothing_waits() -> None:
    loop = asyncio.get_running_loop()
    outbox = Outbox()
    assert not await outbox.due(loop.time() + 0.02)


async def test_flush_makes_what_waits_due_at_once_and_nothing_when_empty() -> None:
    loop = asyncio.get_running_loop()
    outbox = Outbox(Batching(max_wait=5.0, quiet=10.0, early=5.0))
    outbox.flush()  # nothing waits: no batch
    assert not await outbox.due(loop.time() + 0.02)
    outbox.last_send = loop.time()  # a batch just went: the next would wait for the timer
    outbox.wake()
    outbox.flush()  # the last stop of a burst has ended
    start = loop.time()
    assert await outbox.due(start + 2)
    assert loop.time() - start < 1.0
