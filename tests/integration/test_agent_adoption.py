"""Invariant 2: agent restarts (SIGKILL included) never touch bots; a new agent adopts them
(same pids, nothing restarted) and no output line is lost meanwhile."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from botfleet.agent import Supervisor
from botfleet.agent.layout import StateLayout, StateStore
from botfleet.agent.testing import Recorder, python_bot
from botfleet.protocol import ApplyCommand, DesiredState, InstanceState, ProcessSpec, StopStep
from botfleet.settings import AgentSettings

S = InstanceState

COUNTER_BOT = r"""
import signal, sys, time
progress = sys.argv[1]
stop = False
def on_int(_sig, _frame):
    global stop
    stop = True
signal.signal(signal.SIGINT, on_int)
i = 0
while not stop:
    print(f"n={i}", flush=True)
    if i % 10 == 0:
        with open(progress, "w") as f:
            f.write(str(i))
    i += 1
    time.sleep(0.005)
print("bye", flush=True)
"""


def _wait(predicate: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.02)


def _numbers(log: Path) -> list[int]:
    return [int(line.split("n=")[1]) for line in log.read_text().splitlines() if "n=" in line]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_agent_sigkill_leaves_bots_running_and_a_new_agent_adopts_them(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    progress = tmp_path / "progress"
    spec = ProcessSpec(argv=python_bot(COUNTER_BOT, str(progress)), startsecs=0.2,
                       stop_ladder=[StopStep(signal="SIGINT", timeout=10)])
    command = ApplyCommand(instance_id="bot", generation=1, desired="running", spec=spec)
    log = state / "logs" / "bot" / "output.log"

    # Agent 1: a Supervisor in its own process, which starts the bot.
    first = subprocess.Popen(  # noqa: ASYNC220 - an agent process; the test waits for it
        [sys.executable, "-m", "botfleet.agent.testing", str(state), command.model_dump_json()],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    pid = None
    assert first.stdout is not None
    for line in first.stdout:
        event = json.loads(line)
        if event.get("new") == "RUNNING":
            pid = event["pid"]
            break
    assert pid is not None
    _wait(lambda: log.exists() and len(_numbers(log)) >= 20, "bot output on disk")
    first.kill()
    first.wait(timeout=10)
    assert _alive(pid), "the bot died with its agent"

    # While no agent runs, the bot keeps writing (into the FIFO's kernel buffer).
    last_on_disk = _numbers(log)[-1]
    _wait(lambda: progress.exists() and int(progress.read_text() or 0) > last_on_disk + 50,
          "bot progress while no agent runs")
    assert _numbers(log)[-1] == last_on_disk  # nobody read the pipe meanwhile

    # Agent 2: the real daemon (run_agent) with an unreachable api; it adopts the bot.
    env = {**os.environ, "BOTFLEET_AGENT_STATE_DIR": str(state), "BOTFLEET_API_URL":
           "http://127.0.0.1:9", "BOTFLEET_HOME": str(tmp_path), "BOTFLEET_LOG_FORMAT": "json"}
    errors = tmp_path / "agent2.log"
    with errors.open("w") as err:
        second = subprocess.Popen(  # noqa: ASYNC220 - an agent process; the test waits for it
            [sys.executable, "-c", ("from botfleet.agent.main import run_agent\n"
                                    "from botfleet.settings import AgentSettings\n"
                                    "run_agent(AgentSettings())")],
            env=env, stdout=err, stderr=err, cwd=tmp_path,
        )
    _wait(lambda: "instance adopted" in errors.read_text(), "agent 2 adopting the bot")
    _wait(lambda: _numbers(log)[-1] > last_on_disk + 50, "buffered output reaching the disk")
    second.kill()
    second.wait(timeout=10)
    assert _alive(pid)

    # Agent 3 in this process: adopts again, same pid, no restart, then stops the bot.
    rec = Recorder()
    sup = Supervisor(state, AgentSettings(home=tmp_path), on_event=rec)
    await sup.start()
    (snap,) = sup.snapshot()
    assert snap.pid == pid and snap.state == S.RUNNING and snap.restart_count == 0
    assert S.STARTING not in rec.states("bot")
    await sup.apply(command.model_copy(update={"generation": 2, "desired": DesiredState.STOPPED}))
    stopped = await rec.wait_state("bot", S.STOPPED)
    assert "exit code unknown" in stopped.reason  # not our child
    await sup.close()
    assert not _alive(pid)
    numbers = _numbers(log)
    assert numbers == list(range(len(numbers))), "a line was lost or repeated"
    assert log.read_text().splitlines()[-1].endswith("Z bye")


SLEEPER = ProcessSpec(argv=python_bot("import time\nwhile True: time.sleep(1)"), startsecs=0.1,
                      stop_ladder=[StopStep(signal="SIGKILL", timeout=5)])


async def _sleeper_left_running(state: Path, home: Path) -> int:
    """Start instance ``b`` (a sleeping bot) under a Supervisor on ``state`` and close the
    Supervisor, which leaves the bot running; returns its pid."""
    rec = Recorder()
    sup = Supervisor(state, AgentSettings(home=home), on_event=rec)
    await sup.start()
    await sup.apply(ApplyCommand(instance_id="b", generation=1, desired="running", spec=SLEEPER))
    pid = (await rec.wait_state("b", S.RUNNING)).pid
    await sup.close()
    assert pid is not None and _alive(pid)  # closing the supervisor leaves bots running
    return pid


async def test_bot_that_died_while_the_agent_was_down_is_started_again(tmp_path: Path) -> None:
    state = tmp_path / "state"
    spec = SLEEPER
    old = await _sleeper_left_running(state, tmp_path)
    os.kill(old, signal.SIGKILL)
    _wait(lambda: not _alive(old), "bot gone")

    rec2 = Recorder()
    sup2 = Supervisor(state, AgentSettings(home=tmp_path), on_event=rec2)
    await sup2.start()
    gone = await rec2.wait_state("b", S.EXITED)
    assert "while the agent was down" in gone.reason
    new = await rec2.wait_state("b", S.RUNNING)
    assert new.pid != old
    await sup2.apply(ApplyCommand(instance_id="b", generation=2, desired="stopped", spec=spec))
    await rec2.wait_state("b", S.STOPPED)
    await sup2.close()


async def test_bot_started_by_an_agent_killed_before_it_recorded_the_pid_is_adopted_not_doubled(
    tmp_path: Path,
) -> None:
    """Invariant 1: an agent killed between starting a bot and storing its pid leaves a state
    document without the process; the next agent finds the bot by its stdout (the
    instance's FIFO) and adopts it instead of starting a second copy."""
    state = tmp_path / "state"
    spec = SLEEPER
    pid = await _sleeper_left_running(state, tmp_path)
    # What the disk holds when the agent dies right after the spawn: the state before it.
    store = StateStore(StateLayout(state).instance("b"))
    doc = store.read()
    store.write({**doc, "state": S.BACKOFF.value, "process": None})

    rec2 = Recorder()
    sup2 = Supervisor(state, AgentSettings(home=tmp_path), on_event=rec2)
    await sup2.start()
    (snap,) = sup2.snapshot()
    assert (snap.pid, snap.state) == (pid, S.RUNNING)
    assert S.STARTING not in rec2.states("b")  # nothing was started
    bots = [p for p in psutil.process_iter(["cmdline"]) if "while True: time.sleep(1)" in
            " ".join(p.info["cmdline"] or [])]
    assert [p.pid for p in bots] == [pid]  # one copy
    await sup2.apply(ApplyCommand(instance_id="b", generation=2, desired="stopped", spec=spec))
    await rec2.wait_state("b", S.STOPPED)
    await sup2.close()
    assert not _alive(pid)
