"""When the agent sends an event batch (botfleet.agent.link.Batching)."""

from __future__ import annotations

from botfleet.agent.link import Batching


def test_the_first_event_after_a_quiet_spell_goes_at_once() -> None:
    batching = Batching(max_wait=0.025, quiet=0.1)
    assert batching.send_at(oldest=10.0, last_send=9.8) == 10.0
    assert batching.send_at(oldest=10.0, last_send=float("-inf")) == 10.0


def test_under_a_steady_flow_events_wait_at_most_max_wait() -> None:
    batching = Batching(max_wait=0.025, quiet=0.1)
    assert batching.send_at(oldest=10.0, last_send=9.99) == 10.025
