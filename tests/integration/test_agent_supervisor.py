"""The agent's supervision core against real bot subprocesses (small Python programs)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from botfleet.agent import Supervisor
from botfleet.agent.testing import Recorder, python_bot
from botfleet.protocol import (
    ApplyCommand,
    Autorestart,
    DesiredState,
    InstanceState,
    ProcessSpec,
    RemoveCommand,
    StopStep,
    SyncCommand,
    files_digest,
)
from botfleet.settings import AgentSettings

S = InstanceState
SLEEPER = "import time\nprint('up', flush=True)\nwhile True: time.sleep(1)"


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[tuple[Supervisor, Recorder]]:
    rec = Recorder()
    sup = Supervisor(tmp_path / "state", AgentSettings(home=tmp_path), on_event=rec)
    await sup.start()
    yield sup, rec
    # Leave no bot behind: stop everything that still runs, then close.
    gen = 10_000
    for inst in list(sup.instances.values()):
        if inst.pid is not None or inst.state == S.BACKOFF:
            kill = [StopStep(signal="SIGKILL", timeout=5)]
            spec = inst.command.spec.model_copy(update={"stop_ladder": kill})
            await sup.apply(_cmd(inst.instance_id, gen, spec, DesiredState.STOPPED))
            await rec.wait_state(inst.instance_id, S.STOPPED, after=len(rec.events) - 2)
    await sup.close()


def _cmd(iid: str, gen: int, spec: ProcessSpec, desired: DesiredState = DesiredState.RUNNING,
         restart: bool = False) -> ApplyCommand:
    return ApplyCommand(
        instance_id=iid, generation=gen, desired=desired, spec=spec, restart=restart)


def _spec(code: str, *args: str, **kw: object) -> ProcessSpec:
    base: dict[str, object] = {"startsecs": 0.3, "backoff_initial": 0.1, "backoff_max": 1.0}
    base.update(kw)
    return ProcessSpec(argv=python_bot(code, *args), **base)  # type: ignore[arg-type]


async def _wait_file(path: Path, predicate: object, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text() if path.exists() else ""
        if predicate(text):  # type: ignore[operator]
            return text
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path}: condition not met; content: {text[-2000:]!r}")
        await asyncio.sleep(0.05)


async def test_killed_bot_is_restarted_with_backoff(agent: tuple[Supervisor, Recorder]) -> None:
    sup, rec = agent
    await sup.apply(_cmd("bot", 1, _spec(SLEEPER)))
    first = await rec.wait_state("bot", S.RUNNING)
    assert first.pid is not None
    os.kill(first.pid, signal.SIGKILL)
    backoff = await rec.wait_state("bot", S.BACKOFF)
    assert backoff.exit_signal == "SIGKILL" and "killed by SIGKILL" in backoff.reason
    again = await rec.wait_state("bot", S.RUNNING, after=rec.events.index(backoff))
    assert again.pid not in (None, first.pid)
    assert again.restart_count == 1
    os.kill(again.pid, signal.SIGKILL)  # type: ignore[arg-type]
    third = await rec.wait_state("bot", S.RUNNING, after=rec.events.index(again) + 1)
    assert third.restart_count == 2
    assert rec.states("bot")[:7] == [S.STARTING, S.RUNNING, S.BACKOFF, S.STARTING, S.RUNNING,
                                     S.BACKOFF, S.STARTING]
    assert psutil.Process(third.pid).is_running()  # type: ignore[arg-type]


async def test_crash_loop_goes_fatal_after_startretries(agent: tuple[Supervisor, Recorder]) -> None:
    sup, rec = agent
    spec = _spec("import sys; sys.exit(3)", startsecs=2.0, startretries=2, backoff_initial=0.05)
    await sup.apply(_cmd("crash", 1, spec))
    fatal = await rec.wait_state("crash", S.FATAL)
    assert "exited with code 3" in fatal.reason and "startretries=2" in fatal.reason
    # The first start and two retries: three STARTING, two BACKOFF, then FATAL.
    assert rec.states("crash") == [
        S.STARTING, S.BACKOFF, S.STARTING, S.BACKOFF, S.STARTING, S.FATAL]
    # FATAL stays: an equal generation is ignored, nothing restarts by itself.
    assert not await sup.apply(_cmd("crash", 1, spec))
    seen = len(rec.events)
    with pytest.raises(TimeoutError):
        await rec.wait_for(lambda e: e.instance_id == "crash", after=seen, timeout=1.0)
    assert sup.instances["crash"].state == S.FATAL
    # A newer generation starts it again, counters reset.
    await sup.apply(_cmd("crash", 2, spec))
    started = await rec.wait_state("crash", S.STARTING, after=seen)
    assert started.generation == 2 and started.restart_count == 0


async def test_startsecs_counts_from_the_spawn_when_the_event_loop_is_late(
        agent: tuple[Supervisor, Recorder]) -> None:
    sup, rec = agent
    # A start goes to the spawner's threads; the loop then stalls for longer than startsecs.
    await sup.apply(_cmd("late", 1, _spec("import time; time.sleep(30)", startsecs=0.3)))
    for _ in range(5):
        await asyncio.sleep(0)  # the converge task submits, the spawner hands it to a thread
    time.sleep(1.0)  # noqa: ASYNC251 - the point: the loop is late while the bot runs
    starting = await rec.wait_state("late", S.STARTING)
    running = await rec.wait_state("late", S.RUNNING)
    # recorded late, RUNNING at once: startsecs were up (counted from the spawn, not from then)
    assert (running.time - starting.time).total_seconds() < 0.15
    assert running.pid is not None
    # A bot that ended meanwhile did not last startsecs: a failed start, not a run
    await sup.apply(_cmd("gone", 1, _spec("pass", startsecs=0.3, startretries=0)))
    for _ in range(5):
        await asyncio.sleep(0)
    time.sleep(1.0)  # noqa: ASYNC251
    await rec.wait_state("gone", S.FATAL)
    assert rec.states("gone") == [S.STARTING, S.FATAL]


LADDER_BOT = r"""
import os, signal, subprocess, sys, time
out = sys.argv[1]
def note(sig, _frame):
    with open(out, 'a') as f:
        f.write(signal.Signals(sig).name + '\n')
signal.signal(signal.SIGINT, note)
signal.signal(signal.SIGTERM, note)
child = subprocess.Popen([sys.executable, '-c',
    'import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n'
    'signal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True: time.sleep(1)'])
with open(out + '.child', 'w') as f:
    f.write(str(child.pid))
print('ready', flush=True)
while True:
    time.sleep(0.05)
"""


async def test_stop_ladder_escalates_to_the_whole_group(
    agent: tuple[Supervisor, Recorder], tmp_path: Path
) -> None:
    sup, rec = agent
    notes = tmp_path / "signals.txt"
    ladder = [StopStep(signal="SIGINT", timeout=0.5), StopStep(signal="SIGTERM", timeout=0.5),
              StopStep(signal="SIGKILL", timeout=5.0)]
    spec = _spec(LADDER_BOT, str(notes), stop_ladder=ladder)
    await sup.apply(_cmd("ladder", 1, spec))
    running = await rec.wait_state("ladder", S.RUNNING)
    child_file = Path(f"{notes}.child")
    await _wait_file(child_file, lambda t: t.strip().isdigit())
    child = psutil.Process(int(child_file.read_text()))
    assert os.getpgid(child.pid) == running.pid  # same process group as the bot
    await sup.apply(_cmd("ladder", 2, spec, DesiredState.STOPPED))
    stopping = await rec.wait_state("ladder", S.STOPPING)
    stopped = await rec.wait_state("ladder", S.STOPPED, after=rec.events.index(stopping))
    assert stopped.exit_signal == "SIGKILL"
    assert "SIGKILL" in stopped.reason
    assert notes.read_text().split() == ["SIGINT", "SIGTERM"]
    assert not psutil.pid_exists(running.pid) or psutil.Process(running.pid).status() == "zombie"  # type: ignore[arg-type]
    gone = not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    assert gone, "the grandchild survived the stop"


async def test_autorestart_never_and_on_failure(agent: tuple[Supervisor, Recorder]) -> None:
    sup, rec = agent
    code = "import sys, time\ntime.sleep(0.4)\nsys.exit(int(sys.argv[1]))"
    # startsecs=0: RUNNING at once, so the exit is a run ending, not a failed start.
    await sup.apply(_cmd("never", 1, _spec(code, "1", startsecs=0, autorestart=Autorestart.NEVER)))
    await sup.apply(_cmd("expected", 1, _spec(
        code, "2", startsecs=0, autorestart=Autorestart.ON_FAILURE, exitcodes=[0, 2])))
    await sup.apply(_cmd("failure", 1, _spec(
        code, "1", startsecs=0, autorestart=Autorestart.ON_FAILURE, exitcodes=[0, 2])))
    never = await rec.wait_state("never", S.EXITED)
    assert never.exit_code == 1 and "unexpected" in never.reason
    expected = await rec.wait_state("expected", S.EXITED)
    assert expected.exit_code == 2 and "(expected" in expected.reason
    restarted = await rec.wait_for(
        lambda e: e.instance_id == "failure" and e.new == S.STARTING and e.restart_count == 1)
    assert restarted.generation == 1
    assert rec.states("never") == [S.STARTING, S.RUNNING, S.EXITED]
    assert rec.states("expected") == [S.STARTING, S.RUNNING, S.EXITED]


async def test_generation_fencing(agent: tuple[Supervisor, Recorder]) -> None:
    sup, rec = agent
    spec = _spec(SLEEPER)
    assert await sup.apply(_cmd("g", 5, spec))
    first = await rec.wait_state("g", S.RUNNING)
    # Older and equal generations are ignored, a stop included; syncs repeat harmlessly.
    assert not await sup.apply(_cmd("g", 4, spec, DesiredState.STOPPED))
    assert not await sup.apply(_cmd("g", 5, spec, DesiredState.STOPPED, restart=True))
    assert not await sup.apply(SyncCommand(instances=[_cmd("g", 5, spec, DesiredState.STOPPED)]))
    assert not await sup.apply(RemoveCommand(instance_id="g", generation=5))
    assert sup.instances["g"].pid == first.pid and sup.instances["g"].generation == 5
    # A newer restart stops the process and starts a new one.
    seen = len(rec.events)
    assert await sup.apply(_cmd("g", 6, spec, restart=True))
    stopped = await rec.wait_state("g", S.STOPPED, after=seen)
    assert "restart requested" in stopped.reason
    again = await rec.wait_state("g", S.RUNNING, after=seen)
    assert again.pid != first.pid and again.generation == 6
    # A sync leaves unlisted instances alone and applies listed ones by the same rule.
    assert await sup.apply(SyncCommand(instances=[_cmd("other", 1, spec)]))
    await rec.wait_state("other", S.RUNNING)
    assert sup.instances["g"].pid == again.pid
    # Remove: stops, forgets, deletes the instance dir, keeps logs; older applies stay fenced.
    seen = len(rec.events)
    assert await sup.apply(RemoveCommand(instance_id="g", generation=7))
    await rec.wait_state("g", S.STOPPED, after=seen)
    inst_dir = sup.layout.instance("g").dir
    for _ in range(200):
        if not inst_dir.exists():
            break
        await asyncio.sleep(0.05)
    assert not inst_dir.exists()
    assert "Z up\n" in (sup.layout.instance("g").log_dir / "output.log").read_text()
    assert "g" not in sup.instances
    assert not await sup.apply(_cmd("g", 6, spec))


async def test_spec_files_outside_the_instance_dir_are_refused(
    agent: tuple[Supervisor, Recorder], tmp_path: Path
) -> None:
    sup, rec = agent
    names = ["../escape.txt", "/tmp/abs.txt", "a/../../b", ".botfleet/state.json"]
    for i, name in enumerate(names):
        spec = _spec(SLEEPER, files={"ok.txt": "x", name: "evil"})
        await sup.apply(_cmd(f"files{i}", 1, spec))
        fatal = await rec.wait_state(f"files{i}", S.FATAL)
        assert name in fatal.reason
        assert fatal.pid is None
    assert not (tmp_path / "state" / "instances" / "escape.txt").exists()
    assert not Path("/tmp/abs.txt").exists() or Path("/tmp/abs.txt").read_text() != "evil"


async def test_spec_files_are_written_and_argv_is_passed_literally(
    agent: tuple[Supervisor, Recorder]
) -> None:
    sup, rec = agent
    nasty = ["; rm -rf / $(whoami) 'x'", "`id`", "a\"b", "$HOME", "{instance_dir}/cfg.json", "*"]
    code = ("import json, os, sys\nprint(json.dumps({'argv': sys.argv[1:], 'cwd': os.getcwd(), "
            "'env': os.environ.get('BOT_ENV'), 'unbuf': os.environ.get('PYTHONUNBUFFERED'), "
            "'cfg': open('conf/cfg.json').read()}), flush=True)")
    spec = _spec(code, *nasty, startsecs=0, autorestart=Autorestart.NEVER,
                 files={"conf/cfg.json": '{"a": 1}'}, env={"BOT_ENV": "{instance_dir}!"},
                 add_timestamps=False)
    await sup.apply(_cmd("argv", 1, spec))
    await rec.wait_state("argv", S.EXITED)
    paths = sup.layout.instance("argv")
    text = await _wait_file(paths.log_dir / "output.log", lambda t: t.endswith("\n"))
    got = json.loads(text)
    inst_dir = str(paths.dir)
    assert got["argv"] == [*nasty[:4], f"{inst_dir}/cfg.json", "*"]
    assert got["cwd"] == inst_dir
    assert got["env"] == f"{inst_dir}!"
    assert got["unbuf"] == "1"
    assert got["cfg"] == '{"a": 1}'


async def test_spec_files_live_on_disk_by_generation_and_survive_an_agent_restart(
    tmp_path: Path,
) -> None:
    """A 28 KB passivbot config per instance is not held in the agent's memory: the files of
    the applied generation are in ``files.<generation>.json``, read again for each start."""
    code = "print(open('cfg.json').read(), flush=True)"
    rec = Recorder()
    sup = Supervisor(tmp_path / "state", AgentSettings(home=tmp_path), on_event=rec)
    await sup.start()
    paths = sup.layout.instance("cfg")
    spec = _spec(code, startsecs=0, autorestart=Autorestart.NEVER, files={"cfg.json": "gen-1"},
                 add_timestamps=False)
    await sup.apply(_cmd("cfg", 1, spec))
    await rec.wait_state("cfg", S.EXITED)
    assert sup.instances["cfg"].command.spec.files == {}
    assert json.loads(paths.files(1).read_text()) == {"cfg.json": "gen-1"}
    await sup.close()

    rec2 = Recorder()
    sup2 = Supervisor(tmp_path / "state", AgentSettings(home=tmp_path), on_event=rec2)
    await sup2.start()
    (paths.dir / "cfg.json").unlink()
    await sup2.instances["cfg"].converge()  # the command read back from state.json
    await rec2.wait_state("cfg", S.EXITED)
    seen = len(rec2.events)
    await sup2.apply(_cmd("cfg", 2, spec.model_copy(update={"files": {"cfg.json": "gen-2"}})))
    await rec2.wait_state("cfg", S.EXITED, after=seen)
    await _wait_file(paths.log_dir / "output.log",
                     lambda t: t.endswith("gen-1\ngen-1\ngen-2\n"))
    assert [p.name for p in paths.agent_dir.glob("files.*.json")] == ["files.2.json"]
    await sup2.close()


async def test_an_unchanged_config_is_linked_not_rewritten_for_a_new_generation(
    agent: tuple[Supervisor, Recorder],
) -> None:
    """A stop or restart carries the same 28 KB config: the new generation's files are the
    previous generation's file under a new name, and a start does not rewrite config.json."""
    sup, rec = agent
    spec = _spec(SLEEPER, files={"cfg.json": "x" * 28_000})
    await sup.apply(_cmd("cfg", 1, spec))
    await rec.wait_state("cfg", S.RUNNING)
    paths = sup.layout.instance("cfg")
    files_ino = paths.files(1).stat().st_ino
    config_ino = (paths.dir / "cfg.json").stat().st_ino
    await sup.apply(_cmd("cfg", 2, spec, DesiredState.STOPPED))
    await rec.wait_state("cfg", S.STOPPED)
    assert paths.files(2).stat().st_ino == files_ino and not paths.files(1).exists()
    seen = len(rec.events)
    await sup.apply(_cmd("cfg", 3, spec))
    await rec.wait_state("cfg", S.RUNNING, after=seen)
    assert (paths.dir / "cfg.json").stat().st_ino == config_ino
    changed = spec.model_copy(update={"files": {"cfg.json": "y"}})
    seen = len(rec.events)
    await sup.apply(_cmd("cfg", 4, changed, restart=True))
    await rec.wait_state("cfg", S.RUNNING, after=seen)  # the restart is over
    assert (paths.dir / "cfg.json").read_text() == "y"
    assert json.loads(paths.files(4).read_text()) == {"cfg.json": "y"}


async def test_files_named_by_digest_are_taken_from_the_held_generation_or_asked_for(
    agent: tuple[Supervisor, Recorder],
) -> None:
    """ApplyCommand.files_digest without files: the agent uses the files it holds with that
    digest (linked to the new generation, also through a stop), refuses a start of files it
    does not hold (``files_wanted``: the link announces again) and still takes such a stop."""
    sup, rec = agent
    code = "print(open('cfg.json').read(), flush=True)\nimport time\nwhile True: time.sleep(1)"
    spec = _spec(code, files={"cfg.json": "held"}, add_timestamps=False)
    digest = files_digest(spec.files)
    bare = spec.model_copy(update={"files": {}})

    def by_digest(gen: int, desired: DesiredState, named: str = digest, iid: str = "cfg") -> ApplyCommand:
        return _cmd(iid, gen, bare, desired).model_copy(update={"files_digest": named})

    await sup.apply(_cmd("cfg", 1, spec, DesiredState.STOPPED))  # as at creation
    paths = sup.layout.instance("cfg")
    assert sup.instances["cfg"].command.files_digest == digest
    held = paths.files(1).stat().st_ino
    assert await sup.apply(by_digest(2, DesiredState.RUNNING))
    await rec.wait_state("cfg", S.RUNNING)
    assert paths.files(2).stat().st_ino == held and not paths.files(1).exists()
    seen = len(rec.events)
    assert await sup.apply(by_digest(3, DesiredState.STOPPED))
    await rec.wait_state("cfg", S.STOPPED, after=seen)
    seen = len(rec.events)
    assert await sup.apply(by_digest(4, DesiredState.RUNNING))
    await rec.wait_state("cfg", S.RUNNING, after=seen)
    await _wait_file(paths.log_dir / "output.log", lambda t: t.count("held\n") == 2)
    assert not sup.files_wanted

    # Files it does not hold: a start is refused (nothing stored, nothing started) ...
    other = files_digest({"cfg.json": "never sent"})
    assert not await sup.apply(by_digest(5, DesiredState.RUNNING, other))
    assert sup.files_wanted and sup.instances["cfg"].generation == 4
    assert not await sup.apply(by_digest(1, DesiredState.RUNNING, iid="new"))
    assert "new" not in sup.instances and not sup.layout.instance("new").files(1).exists()
    sup.files_wanted = False
    # ... a stop is taken, and then holds no files: a start by digest is refused again.
    seen = len(rec.events)
    assert await sup.apply(by_digest(5, DesiredState.STOPPED, other))
    await rec.wait_state("cfg", S.STOPPED, after=seen)
    assert sup.instances["cfg"].command.files_digest is None and not sup.files_wanted
    assert not await sup.apply(by_digest(6, DesiredState.RUNNING))
    assert sup.files_wanted
    assert await sup.apply(_cmd("cfg", 6, spec))  # what the announce's sync brings
    seen = len(rec.events)
    await rec.wait_state("cfg", S.RUNNING, after=seen - 1)


async def test_a_bot_running_past_startsecs_is_adopted_running_without_an_event(
    tmp_path: Path,
) -> None:
    """RUNNING is not stored (it follows from startsecs): a new agent that finds the stored
    STARTING of a process older than startsecs adopts it as RUNNING and reports nothing."""
    rec = Recorder()
    sup = Supervisor(tmp_path / "state", AgentSettings(home=tmp_path), on_event=rec)
    await sup.start()
    await sup.apply(_cmd("up", 1, _spec(SLEEPER, startsecs=0.2)))
    running = await rec.wait_state("up", S.RUNNING)
    await sup.close()
    doc = sup.instances["up"].store.read()
    assert doc["state"] == "STARTING" and doc["process"]["pid"] == running.pid

    rec2 = Recorder()
    sup2 = Supervisor(tmp_path / "state", AgentSettings(home=tmp_path), on_event=rec2)
    await sup2.start()
    (snap,) = sup2.snapshot()
    assert snap.state == S.RUNNING and snap.pid == running.pid
    assert rec2.events == []
    kill = _spec(SLEEPER, stop_ladder=[StopStep(signal="SIGKILL", timeout=5)])
    await sup2.apply(_cmd("up", 2, kill, DesiredState.STOPPED))
    await rec2.wait_state("up", S.STOPPED)
    await sup2.close()


async def test_a_stop_of_many_stores_every_stopping_before_the_first_signal_and_settles_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One SyncCommand stopping several bots: every STOPPING is stored and reported before the
    # first bot is signalled (then all are signalled back to back, before any exit competes
    # with the agent for the cores), and on_settled comes once, after the last STOPPED.
    from botfleet.agent import process

    order: list[str] = []
    signal_group = process.signal_group

    def recorded_signal(pgid: int, sig: signal.Signals) -> bool:
        order.append(f"signal {sig.name}")
        return signal_group(pgid, sig)

    monkeypatch.setattr(process, "signal_group", recorded_signal)
    rec = Recorder()

    def on_event(event: object) -> None:
        rec(event)  # type: ignore[arg-type]
        order.append(f"{event.new.value} {event.instance_id}")  # type: ignore[attr-defined]

    sup = Supervisor(tmp_path / "state", AgentSettings(home=tmp_path), on_event=on_event,
                     on_settled=lambda: order.append("settled"))
    await sup.start()
    try:
        names = [f"bot{i}" for i in range(5)]
        spec = _spec(SLEEPER)
        assert await sup.apply(SyncCommand(instances=[_cmd(n, 1, spec) for n in names]))
        for name in names:
            await rec.wait_state(name, S.RUNNING)
        mark = len(rec.events)
        order.clear()
        stop = SyncCommand(instances=[_cmd(n, 2, spec, DesiredState.STOPPED) for n in names])
        assert await sup.apply(stop)
        for name in names:
            stopped = await rec.wait_state(name, S.STOPPED, after=mark)
            assert stopped.exit_code == 0 or stopped.exit_signal == "SIGINT"
        first_signal = order.index("signal SIGINT")
        assert sorted(order[:first_signal]) == [f"STOPPING {n}" for n in names]
        assert order[first_signal:first_signal + len(names)] == ["signal SIGINT"] * len(names)
        assert order.count("settled") == 1 and order[-1] == "settled"
    finally:
        await sup.close()
