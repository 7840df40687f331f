"""Agent building blocks without processes: spec rendering, the state document, the rotated
numbered log file, timestamping and the bounded stream queue."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from botfleet.agent.capture import OutputCapture, timestamp
from botfleet.agent.layout import SpecError, StateLayout, StateStore, demo_v7_root, render_spec
from botfleet.agent.logfile import OutputLog
from botfleet.protocol import ProcessSpec

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z $")


def test_placeholders_are_replaced_literally(tmp_path: Path) -> None:
    spec = ProcessSpec(argv=["{python}", "{demo_v7_root}/src/main.py", "{instance_dir}/c.json",
                             "{other}", "{{python}}"],
                       cwd="{demo_v7_root}", env={"A": "{instance_dir}", "B": "{x}"})
    cmd = render_spec(spec, tmp_path)
    root = str(demo_v7_root())
    assert cmd.argv == [sys.executable, f"{root}/src/main.py", f"{tmp_path}/c.json", "{other}",
                        "{" + sys.executable + "}"]
    assert str(cmd.cwd) == root and root.endswith("botfleet/demo/v7root")
    assert cmd.env["A"] == str(tmp_path) and cmd.env["B"] == "{x}"
    assert cmd.env["PYTHONUNBUFFERED"] == "1" and cmd.env["PATH"] == os.environ["PATH"]


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/../../x", ".botfleet/state.json", ""])
def test_files_outside_the_instance_dir_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(SpecError):
        render_spec(ProcessSpec(argv=["x"], files={name: "evil"}), tmp_path)


def test_files_through_a_symlink_out_are_refused(tmp_path: Path) -> None:
    inst = tmp_path / "inst"
    inst.mkdir()
    (inst / "link").symlink_to(tmp_path)
    with pytest.raises(SpecError, match="outside"):
        render_spec(ProcessSpec(argv=["x"], files={"link/x": "evil"}), inst)


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "a\0"])
def test_instance_ids_must_be_plain_names(tmp_path: Path, bad: str) -> None:
    with pytest.raises(SpecError):
        StateLayout(tmp_path).instance(bad)


def test_the_last_state_document_written_is_read_back(tmp_path: Path) -> None:
    paths = StateLayout(tmp_path).instance("i")
    store = StateStore(paths)
    assert store.read() is None
    for n in range(3):
        store.write({"state": "RUNNING", "n": n})
    assert StateStore(paths).read() == {"state": "RUNNING", "n": 2}
    assert not paths.state.exists()  # appended, not rewritten
    assert StateLayout(tmp_path).known_instance_ids() == ["i"]


def test_a_state_line_cut_by_a_crash_leaves_the_one_before(tmp_path: Path) -> None:
    paths = StateLayout(tmp_path).instance("i")
    StateStore(paths).write({"n": 1})
    with paths.state_log.open("ab") as f:  # the agent died in the middle of the next write
        f.write(b'{"n": 2, "command": {"ar')
    store = StateStore(paths)
    assert store.read() == {"n": 1}
    store.write({"n": 3})  # starts a line of its own after the cut one
    assert StateStore(paths).read() == {"n": 3}
    assert paths.state_log.read_bytes().splitlines()[-1] == b'{"n":3}'


def test_the_state_log_is_folded_into_state_json_when_it_grows(tmp_path: Path) -> None:
    paths = StateLayout(tmp_path).instance("i")
    store = StateStore(paths, compact_bytes=200)
    for n in range(12):  # about 30 bytes each
        store.write({"n": n, "pad": "x" * 16})
    assert json.loads(paths.state.read_text())["n"] <= 11
    assert not paths.state_log.exists() or paths.state_log.stat().st_size <= 200
    assert StateStore(paths).read() == {"n": 11, "pad": "x" * 16}
    # A crash after writing state.json but before removing the log: both hold the same.
    store.write({"n": 12})
    paths.state.write_text('{"n": 12}')
    assert StateStore(paths).read() == {"n": 12}


def _read_all(log_dir: Path) -> bytes:
    files = sorted(log_dir.glob("output.log.*"), key=lambda p: -int(p.suffix[1:]))
    return b"".join(p.read_bytes() for p in [*files, log_dir / "output.log"])


def test_rotation_keeps_n_backups_and_numbers_continue(tmp_path: Path) -> None:
    log = OutputLog(tmp_path, max_bytes=100, backups=2)
    for i in range(30):
        log.write(b"line %02d 01234567890\n" % i, 1, True)  # 20 bytes per line
    assert log.next_seq == 31
    assert sorted(p.name for p in tmp_path.glob("output.log*")) == [
        "output.log", "output.log.1", "output.log.2"]
    assert (tmp_path / "output.log.1").stat().st_size == 100
    log.close()
    # A new agent counts the current file's lines on top of the saved base.
    again = OutputLog(tmp_path, max_bytes=100, backups=2)
    assert again.next_seq == 31 and again.at_line_start
    kept = _read_all(tmp_path).splitlines()
    # Each file holds 5 lines; the 30th filled one, so output.log is new and empty.
    assert kept == [b"line %02d 01234567890" % i for i in range(20, 30)]


def test_a_crash_in_the_middle_of_a_rotation_keeps_numbers(tmp_path: Path) -> None:
    log = OutputLog(tmp_path, max_bytes=10**6, backups=2)
    log.write(b"a\nb\nc\n", 3, True)
    log.close()
    # The agent died after moving output.log to .1 but before writing the new base.
    os.replace(tmp_path / "output.log", tmp_path / "output.log.1")
    log = OutputLog(tmp_path, max_bytes=10**6, backups=2)
    assert log.next_seq == 4


def test_a_new_log_writes_no_sequence_file_until_it_rotates(tmp_path: Path) -> None:
    log = OutputLog(tmp_path, max_bytes=10, backups=1)
    assert log.next_seq == 1 and not (tmp_path / "output.seq").exists()
    log.write(b"0123456789\nab\n", 2, True)
    log.close()
    assert (tmp_path / "output.seq").exists()
    assert OutputLog(tmp_path, max_bytes=10, backups=1).next_seq == 3


def test_an_unfinished_line_is_continued_after_a_restart(tmp_path: Path) -> None:
    log = OutputLog(tmp_path, max_bytes=10**6, backups=1)
    log.write(b"T1 whole\nT1 half", 1, False)
    log.close()
    log = OutputLog(tmp_path, max_bytes=10**6, backups=1)
    assert not log.at_line_start and log.tail == b"T1 half" and log.next_seq == 2
    cap = OutputCapture("i", tmp_path / "fifo", log, add_timestamps=True, queue_lines=10,
                        on_output=None)
    cap.consume(b" line\nnext\n")
    lines = (tmp_path / "output.log").read_bytes().splitlines()
    assert lines[:2] == [b"T1 whole", b"T1 half line"]
    assert TS.match(lines[2][:28].decode()) and lines[2][28:] == b"next"
    (event,) = cap.take(10)
    assert event.first_seq == 2 and event.lines[0] == "T1 half line"


def test_one_timestamp_per_read_and_a_bounded_queue(tmp_path: Path) -> None:
    woken: list[int] = []
    cap = OutputCapture("i", tmp_path / "fifo", OutputLog(tmp_path, 10**6, 1),
                        add_timestamps=True, queue_lines=3, on_output=lambda _capture: woken.append(1))
    cap.consume(b"a\nb\n")
    cap.consume(b"c\nd\ne\n")  # only one fits in the queue
    cap.consume(b"f\n")
    assert woken == [1]
    disk = (tmp_path / "output.log").read_bytes().splitlines()
    assert [line[28:] for line in disk] == [b"a", b"b", b"c", b"d", b"e", b"f"]
    assert disk[0][:28] == disk[1][:28]  # one timestamp per read
    (event,) = cap.take(100)
    assert event.first_seq == 1 and [t[28:] for t in event.lines] == ["a", "b", "c"]
    assert event.dropped == 3
    cap.consume(b"g\n")
    (event,) = cap.take(100)
    assert event.first_seq == 7 and event.dropped == 0


def test_timestamp_format() -> None:
    assert TS.match(timestamp().decode())
