"""botfleet vs Supervisor 4.3 vs PM2 7 on this machine (issue 2). Run through run.sh, which
installs the anchors first::

    scripts/bench/run.sh all                 # every scenario, all three tools (~16 min)
    scripts/bench/run.sh fleet               # start 100 / idle CPU+RSS / crash under load / stop 100
    scripts/bench/run.sh crash|latency|flood|jobs [--tools botfleet,pm2] [--quick]

Each scenario writes ``scripts/bench/results/<scenario>.json`` (figures, settings, machine
facts, the command line) and prints a table. ``start``, ``stop`` and ``idle`` are names of
the ``fleet`` scenario (they share one set of 100 running bots); ``--window 0`` leaves out its
idle minute (for work on start and stop only).

``BENCH_PROFILE_DIR=DIR`` runs botfleet's api and agent under cProfile and writes
``DIR/<name>.prof`` when they exit (slower: for finding where time goes, not for figures).
``BENCH_AGENT_PYTHONPATH=DIR`` runs botfleet's agent from another checkout's ``backend``
(A/B of an agent change; the api and the bots stay on this one).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scenarios  # noqa: E402
from anchors import PM2, Supervisord  # noqa: E402
from botfleet_tool import Botfleet  # noqa: E402
from common import BENCH_DIR, interpreter_baseline, machine_facts  # noqa: E402

__all__ = ["main"]

RESULTS = BENCH_DIR / "results"
TOOLS = {"botfleet": Botfleet, "supervisord": Supervisord, "pm2": PM2}
SCENARIOS = ("fleet", "crash", "latency", "flood", "jobs")
ALIASES = {"start": "fleet", "stop": "fleet", "idle": "fleet", "sse": "latency"}
LOG_MAX_BYTES = 50 * 1024 * 1024
LOG_BACKUPS = 5


def _run_tool(name: str, workdir: Path, body: Any) -> dict[str, Any]:
    """Bring up tool ``name``, run ``body(tool)``, tear it down; errors are recorded."""
    tool = None
    started = time.monotonic()
    try:
        tool = TOOLS[name](workdir, LOG_MAX_BYTES, LOG_BACKUPS)
        result = body(tool)
    except Exception as exc:  # noqa: BLE001 - one tool failing must not hide the others
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        if tool is not None:
            tool.close()
    result["wall_s"] = round(time.monotonic() - started, 1)
    result["ran_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(f"  {name}: {json.dumps(result)}", flush=True)
    return result


def _median_flood(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median landed rate, with every run's rates and the worst loss."""
    ordered = sorted(runs, key=lambda r: r["landed_rate"])
    out = dict(ordered[len(ordered) // 2])
    out["landed_rates"] = [r["landed_rate"] for r in runs]
    out["bot_rates"] = [r["bot_rate"] for r in runs]
    out["missing_max"] = max(r["missing"] for r in runs)
    return out


def _flood_variants(tool: Any, workdir: Path, n: int, variants: tuple[str, ...], reps: int) -> dict[str, Any]:
    """Variants interleaved (A B C A B C ...) so that a change in the machine's load during
    the run falls on all of them alike; the median run of each is kept."""
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for k in range(reps):
        for v in variants:
            runs[v].append(scenarios.flood(tool, workdir, n, v, k))
    return {v: _median_flood(r) for v, r in runs.items()}


def run_scenario(scenario: str, tools: list[str], args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    q = args.quick
    out: dict[str, Any] = {}
    if scenario == "fleet":
        n, window, samples = args.bots, (10 if q else args.window), (10 if q else args.samples)
        out["settings"] = {"bots": n, "idle_window_s": window, "crash_samples": samples, "startsecs": 1,
                           "bot": "python -m botfleet.demo live btc_long.json, 1 line/s"}
        out["bare"] = scenarios.bare_start(workdir, n)
        print(f"  bare: {json.dumps(out['bare'])}", flush=True)
        for name in tools:
            out[name] = _run_tool(name, workdir, lambda t: scenarios.fleet(t, workdir, n, window, samples))
    elif scenario == "crash":
        samples = 10 if q else args.samples
        out["settings"] = {"samples": samples, "startsecs": 0, "backoff": 0,
                           "kill": "once reported RUNNING, after 0.5-1.5 s (random) of run"}
        out["interpreter_start"] = interpreter_baseline(workdir / "baseline-stamps.txt")
        for name in tools:
            out[name] = _run_tool(name, workdir, lambda t: scenarios.crash_idle(t, workdir, samples))
    elif scenario == "latency":
        samples = 100 if q else args.latency_samples
        out["settings"] = {"samples": samples, "rate_per_s": args.rate}
        for name in tools:
            out[name] = _run_tool(name, workdir, lambda t: scenarios.log_latency(t, workdir, samples, args.rate))
    elif scenario == "flood":
        n = 300_000 if q else args.flood_lines
        out["settings"] = {"lines": n, "log_max_bytes": LOG_MAX_BYTES, "log_backups": LOG_BACKUPS}
        reps = 1 if q else args.flood_repeats
        out["settings"]["repeats"] = reps
        out["bare"] = {"plain": _median_flood([scenarios.flood(None, workdir, n, "plain", k) for k in range(reps)])}
        print(f"  bare: {json.dumps(out['bare'])}", flush=True)
        for name in tools:
            variants = ("plain", "stalled", "api-down") if name == "botfleet" else ("plain", "stalled")
            out[name] = _run_tool(name, workdir, lambda t, vs=variants: _flood_variants(t, workdir, n, vs, reps))
    elif scenario == "jobs":
        samples = 10 if q else args.job_samples
        out["settings"] = {"samples": samples, "job": "backtest, passivbot-v8 simulated, 0.3 s"}
        if "botfleet" in tools:
            out["botfleet"] = _run_tool("botfleet", workdir, lambda t: scenarios.jobs(t, workdir, samples))
        out["note"] = "supervisord and PM2 have no job queue: botfleet only"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=(*SCENARIOS, *ALIASES, "all"))
    parser.add_argument("--tools", default="botfleet,supervisord,pm2")
    parser.add_argument("--bots", type=int, default=100)
    parser.add_argument("--window", type=float, default=60.0, help="idle CPU window, s (0: no idle window)")
    parser.add_argument("--samples", type=int, default=50, help="crash samples")
    parser.add_argument("--latency-samples", type=int, default=500)
    parser.add_argument("--rate", type=float, default=25.0, help="ticker lines/s")
    parser.add_argument("--flood-lines", type=int, default=2_000_000)
    parser.add_argument("--flood-repeats", type=int, default=3, help="runs per flood variant (median kept)")
    parser.add_argument("--job-samples", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="few samples, short windows (a smoke run)")
    parser.add_argument("--workdir", default="/tmp/botfleet-bench/run")
    args = parser.parse_args(argv)
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    chosen = SCENARIOS if args.scenario == "all" else (ALIASES.get(args.scenario, args.scenario),)
    RESULTS.mkdir(exist_ok=True)
    facts = machine_facts()
    print(f"machine: {json.dumps(facts)}", flush=True)
    for scenario in chosen:
        workdir = Path(args.workdir) / scenario
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        print(f"== {scenario}", flush=True)
        started = time.monotonic()
        load_before = [round(x, 2) for x in os.getloadavg()]
        result = run_scenario(scenario, tools, args, workdir)
        doc = {"scenario": scenario, "machine": facts, "command": " ".join(["scripts/bench/run.sh", *sys.argv[1:]]),
               "wall_s": round(time.monotonic() - started, 1),
               "loadavg_before_after": [load_before, [round(x, 2) for x in os.getloadavg()]], **result}
        name = f"{scenario}{'-quick' if args.quick else ''}.json"
        old = json.loads((RESULTS / name).read_text()) if (RESULTS / name).exists() else {}
        kept = [t for t in TOOLS if t not in tools and t in old]
        if kept:  # a run of some tools only keeps the others' last figures (each has ran_at)
            doc.update({t: old[t] for t in kept})
            doc["kept_from_earlier_run"] = kept
        (RESULTS / name).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"   -> {RESULTS / name} ({doc['wall_s']} s)", flush=True)
    from report import print_tables

    print_tables(RESULTS, quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
