"""Where the agent's time goes when it starts (or stops) N bots, without the api.

    .venv/bin/python scripts/bench/agent_spawn.py [--bots 100] [--profile FILE.prof]

A :class:`~botfleet.agent.supervisor.Supervisor` (asyncio's loop, as the agent runs it) takes N
ApplyCommands (desired running, ``startsecs`` 1, a 28 KB config file each, as the stand-in's)
for a bot that sleeps and exits on SIGINT; prints the time from the first command to the
last STARTING event (every Popen done) and to the last RUNNING, then from N stop commands to
the last STOPPED, with the agent's CPU for each phase. ``--profile`` writes cProfile stats of
both phases. The bots are ``python -S -c`` sleepers (their own start-up is not measured).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import resource
import tempfile
import time
from pathlib import Path

from botfleet.agent.supervisor import Supervisor
from botfleet.protocol import ApplyCommand, DesiredState, InstanceState, ProcessSpec, StateChange
from botfleet.settings import AgentSettings

BOT = "import signal,time\ntry:\n    time.sleep(600)\nexcept KeyboardInterrupt:\n    pass\n"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def run(n: int, profile: cProfile.Profile | None) -> None:
    events: list[tuple[float, StateChange]] = []
    with tempfile.TemporaryDirectory(prefix="agent-spawn-") as tmp:
        settings = AgentSettings(home=Path(tmp))
        sup = Supervisor(Path(tmp) / "agent", settings,
                         on_event=lambda e: events.append((time.perf_counter(), e)))
        await sup.start()
        config = "x" * 28_000
        ids = [f"bot{i:03d}" for i in range(n)]

        def cmd(i: str, gen: int, desired: DesiredState) -> ApplyCommand:
            spec = ProcessSpec(argv=["{python}", "-S", "-c", BOT], files={"config.json": config})
            return ApplyCommand(instance_id=i, generation=gen, desired=desired, spec=spec)

        async def phase(name: str, gen: int, desired: DesiredState,
                        until: InstanceState) -> None:
            events.clear()
            if profile:
                profile.enable()
            cpu0, t0 = _cpu(), time.perf_counter()
            for i in ids:
                await sup.apply(cmd(i, gen, desired))
            while sum(1 for _, e in events if e.new == until) < n:
                await asyncio.sleep(0.005)
            cpu = _cpu() - cpu0
            if profile:
                profile.disable()
            marks = {}
            for state in (InstanceState.STARTING, InstanceState.STOPPING, until):
                times = [t for t, e in events if e.new == state]
                if times:
                    marks[state.value] = round((max(times) - t0) * 1000, 1)
            print(f"{name}: last {marks} ms after the first command; agent CPU "
                  f"{cpu * 1000:.0f} ms", flush=True)

        await phase("start", 1, DesiredState.RUNNING, InstanceState.RUNNING)
        await asyncio.sleep(1.0)
        await phase("stop", 2, DesiredState.STOPPED, InstanceState.STOPPED)
        await sup.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bots", type=int, default=100)
    parser.add_argument("--profile", type=Path, default=None)
    args = parser.parse_args()
    profile = cProfile.Profile() if args.profile else None
    asyncio.run(run(args.bots, profile))
    if profile and args.profile:
        profile.dump_stats(args.profile)


if __name__ == "__main__":
    main()
