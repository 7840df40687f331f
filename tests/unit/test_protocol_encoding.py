"""The agent's hand-made JSON of event batches (protocol.encode_batch/encode_log_lines) reads
back, through the api's own model, as the same EventBatch pydantic would have written."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from botfleet.agent.capture import OutputCapture
from botfleet.agent.logfile import OutputLog
from botfleet.protocol import (
    EventBatch,
    InstanceState,
    LogLines,
    StateChange,
    encode_batch,
    encode_log_lines,
)

AWKWARD = ['plain', 'quote " backslash \\ tab \t', "ctrl \x01\x1f del \x7f", "é ü 中文 🚀",
           "\ufffd replaced", ""]


def test_a_batch_reads_back_as_the_model_it_stands_for() -> None:
    state = StateChange(instance_id="b-1", generation=3, old=InstanceState.STARTING,
                        new=InstanceState.RUNNING, time=datetime(2026, 11, 26, tzinfo=UTC), pid=42)
    logs = LogLines(instance_id="b-1", first_seq=7, lines=AWKWARD, dropped=2)
    line = encode_batch("run-x", 5, [state.model_dump_json().encode(),
                                     encode_log_lines("b-1", 7, AWKWARD, 2)])
    assert line.endswith(b"\n") and line.count(b"\n") == 1  # one NDJSON line
    expected = EventBatch(run_id="run-x", seq=5, events=[state, logs])
    assert EventBatch.model_validate_json(line) == expected
    assert line[:-1] == expected.model_dump_json().encode()  # byte for byte, as pydantic


def test_take_json_pops_what_take_would_have(tmp_path: Path) -> None:
    def capture(name: str) -> OutputCapture:
        return OutputCapture("i", tmp_path / name / "fifo", OutputLog(tmp_path / name, 10**6, 1),
                             add_timestamps=False, queue_lines=3, on_output=None)

    a, b = capture("a"), capture("b")
    for cap in (a, b):
        cap.consume(b"x\ny\n")
        cap.consume(b"z\nw\n")  # one over the bound: dropped
    events, taken = a.take_json(100)
    assert taken == 3
    assert [LogLines.model_validate_json(e) for e in events] == b.take(100)
    assert a.take_json(100) == ([], 0) and b.take(100) == []
