"""``optimize``: passivbot's optimizer output, faked with a real worker pool.

Logs ``%(asctime)s %(processName)-12s %(levelname)-8s %(message)s`` on stdout with
passivbot's progress lines (see :mod:`botfleet.profiles.progress`). Evaluations are counted
at ``BOTFLEET_DEMO_EVALS_PER_SEC`` up to ``optimize.iters``; worker processes (forked, in the
same process group, ignoring SIGINT like a pool's workers) score sampled candidates.

Results: ``optimize_results/<ts>_<exchanges>_<n_days>days_<coins>_<hash>/`` with
``initial_config.json``, ``pareto/<hash>.json`` (a config plus its ``analysis``) and
``all_results.bin``. The real ``all_results.bin`` is msgpack; the stand-in's holds JSON
lines (one sampled candidate each) under the same name.

SIGINT: the workers are terminated, results flushed, exit 0 (a second SIGINT: exit 130).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import logging
import multiprocessing
import os
import random
import signal
import sys
import time
import uuid
from typing import Any

from botfleet.demo.backtest import fake_metrics
from botfleet.demo.common import (
    config_seed,
    env_float,
    env_int,
    load_config,
    section,
    side_coins,
)

__all__ = ["run_optimize"]


class _UTCFormatter(logging.Formatter):
    """passivbot's ``%(asctime)s`` as UTC ``2026-08-22T12:34:56Z``."""

    converter = staticmethod(time.gmtime)


OPTIMIZE_FORMAT = "%(asctime)s %(processName)-12s %(levelname)-8s %(message)s"
_MINIMIZE = ("drawdown", "loss", "hours", "days", "shortfall", "stuck", "recovery")


def _objectives(opt: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for item in opt.get("scoring") or []:
        if isinstance(item, dict) and isinstance(item.get("metric"), str):
            out.append((item["metric"], str(item.get("goal", "max"))))
        elif isinstance(item, str):
            out.append((item, "min" if any(w in item for w in _MINIMIZE) else "max"))
    return out or [("adg", "max"), ("drawdown_worst", "min")]


def _worker(tasks: Any, results: Any, objectives: list[tuple[str, str]]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while (task := tasks.get()) is not None:
        seed, count = task
        rng = random.Random(seed)
        batch = []
        for _ in range(count):
            metrics = fake_metrics(rng)
            for name, _goal in objectives:
                metrics.setdefault(name, round(rng.uniform(0, 1), 8))
            batch.append({"seed": rng.getrandbits(48), "metrics": metrics})
        results.put(batch)


def _jitter(node: Any, rng: random.Random) -> None:
    """Nudge the numeric bot parameters (in place) so each Pareto member is its own config."""
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if isinstance(value, float):
            node[key] = round(value * rng.uniform(0.9, 1.1), 6)
        else:
            _jitter(value, rng)


def _dominates(a: list[float], b: list[float]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and a != b


class _Run:
    def __init__(self, config: dict[str, Any], results_dir: str, log: logging.Logger) -> None:
        self.config, self.dir, self.log = config, results_dir, log
        opt = config.get("optimize") or {}
        self.objectives = _objectives(opt)
        self.max_front = max(1, int(opt.get("pareto_max_size") or 300))
        self.front: dict[str, tuple[list[float], dict[str, Any]]] = {}
        self.pending: list[bytes] = []
        os.makedirs(os.path.join(results_dir, "pareto"), exist_ok=True)

    def _costs(self, metrics: dict[str, float]) -> list[float]:
        return [metrics[m] if g == "min" else -metrics[m] for m, g in self.objectives]

    def add(self, candidate: dict[str, Any]) -> tuple[int, int]:
        """Add one candidate; returns (added, removed) front members."""
        self.pending.append(json.dumps(candidate, sort_keys=True).encode() + b"\n")
        costs = self._costs(candidate["metrics"])
        if any(_dominates(c, costs) or c == costs for c, _ in self.front.values()):
            return 0, 0
        beaten = [h for h, (c, _) in self.front.items() if _dominates(costs, c)]
        for h in beaten:
            del self.front[h]
            os.remove(os.path.join(self.dir, "pareto", f"{h}.json"))
        if len(self.front) >= self.max_front:
            return 0, len(beaten)
        member = copy.deepcopy(self.config)
        _jitter(member.get("bot"), random.Random(candidate["seed"]))
        member["analysis"] = candidate["metrics"]
        digest = hashlib.sha256(json.dumps(candidate, sort_keys=True).encode()).hexdigest()[:16]
        with open(os.path.join(self.dir, "pareto", f"{digest}.json"), "w") as fh:
            json.dump(member, fh, indent=4)
        self.front[digest] = (costs, candidate["metrics"])
        return 1, len(beaten)

    def ranges(self) -> str:
        parts = []
        for name, _goal in self.objectives:
            values = [m[name] for _, m in self.front.values()]
            parts.append(f"{name}:({min(values):.4g},{max(values):.4g})")
        return " | ".join(parts)

    def flush(self) -> None:
        with open(os.path.join(self.dir, "all_results.bin"), "ab") as fh:
            fh.write(b"".join(self.pending))
        self.pending.clear()


def _results_dir(config: dict[str, Any], resume: str | None) -> str:
    if resume:
        return resume
    bt = section(config, "backtest")
    exchanges = "_".join(e for e in bt.get("exchanges") or ["binance"] if isinstance(e, str))

    def day(value: Any) -> dt.date:
        try:
            return dt.date.fromisoformat(str(value)[:10])
        except ValueError:
            return dt.datetime.now(dt.UTC).date()

    n_days = (day(bt.get("end_date")) - day(bt.get("start_date"))).days
    coins = side_coins(section(config, "live"))["long"] or ["BTC"]
    coins_name = "_".join(coins) if len(coins) <= 6 else f"{len(coins)}_coins"
    stamp = time.strftime("%Y-%m-%dT%H_%M_%S", time.gmtime())
    return os.path.join(
        "optimize_results", f"{stamp}_{exchanges}_{n_days}days_{coins_name}_{uuid.uuid4().hex[:8]}"
    )


def _count_starting(path: str | None) -> int:
    if not path:
        return 0
    if os.path.isdir(path):
        return sum(1 for n in os.listdir(path) if n.endswith((".json", ".hjson")))
    return 1


def run_optimize(
    config_path: str,
    *,
    starting_configs: str | None = None,
    resume: str | None = None,
    version: str = "v8",
) -> int:
    """Fake an optimize run of ``config_path``; returns the exit code."""
    config = load_config(config_path)
    sys.stdout.reconfigure(encoding="utf-8", errors="replace")  # type: ignore[union-attr]
    log = logging.getLogger("optimize")
    log.setLevel(logging.INFO)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_UTCFormatter(OPTIMIZE_FORMAT, datefmt="%Y-%m-%dT%H:%M:%SZ"))
    log.addHandler(handler)
    log.propagate = False
    opt = config.setdefault("optimize", {})
    iters = max(1, int(opt.get("iters") or 1000))
    rate = env_float("BOTFLEET_DEMO_EVALS_PER_SEC", 0.0) or iters / max(
        env_float("BOTFLEET_DEMO_JOB_SECONDS", 2.0), 0.01
    )
    n_workers = max(1, env_int("BOTFLEET_DEMO_WORKERS", min(int(opt.get("n_cpus") or 2), 2)))
    interrupted = 0

    def on_sigint(signum: int, frame: object) -> None:
        nonlocal interrupted
        interrupted += 1
        if interrupted > 1:
            os._exit(130)

    signal.signal(signal.SIGINT, on_sigint)
    results_dir = _results_dir(config, resume)
    run = _Run(config, results_dir, log)
    with open(os.path.join(results_dir, "initial_config.json"), "w") as fh:
        json.dump(config, fh, indent=4)
    ctx = multiprocessing.get_context("fork")
    tasks, results = ctx.Queue(), ctx.Queue()
    workers = [
        ctx.Process(
            target=_worker, args=(tasks, results, run.objectives), name=f"ForkPoolWorker-{i + 1}"
        )
        for i in range(n_workers)
    ]
    for w in workers:
        w.start()
    log.info("Starting optimize...")
    log.info("Started %d worker processes: %s", n_workers, " ".join(str(w.pid) for w in workers))
    rng = random.Random(config_seed(config))
    n_starting = 1 + _count_starting(starting_configs)
    for i in range(1, n_starting + 1):
        tasks.put((rng.getrandbits(48), 1))
        for candidate in results.get():
            run.add(candidate)
        log.info("Evaluated %d/%d starting configs", i, n_starting)
    started, evals, last_log, gen = time.monotonic(), n_starting, 0.0, 0
    pop = max(1, int(opt.get("population_size") or 100))
    in_flight = 0
    while evals < iters and not interrupted:
        time.sleep(0.05)
        # at most 1/20 of the run per tick: progress shows steps even on a slow machine
        by_clock = n_starting + int((time.monotonic() - started) * rate)
        target = min(iters, by_clock, evals + max(1, iters // 20))
        if in_flight < n_workers:
            tasks.put((rng.getrandbits(48), 4))
            in_flight += 1
        added = removed = 0
        while not results.empty():
            for candidate in results.get():
                a, r = run.add(candidate)
                added, removed = added + a, removed + r
            in_flight -= 1
        previous, evals = evals, target
        if added or removed:
            log.info(
                "Iter: %d | Pareto ↑ | +%d/-%d | size:%d | %s",
                evals,
                added,
                removed,
                len(run.front),
                run.ranges(),
            )
            log.info(
                "Pareto update | eval=%d | front=%d | objectives=[%s]",
                evals,
                len(run.front),
                ", ".join(f"{m} ({g})" for m, g in run.objectives),
            )
        if opt.get("backend", "deap") != "pymoo" and evals // pop > previous // pop:
            gen = evals // pop
            log.info(
                "Gen %d complete | evals=%d | total=%d | front=%d | elapsed=%.1fs",
                gen,
                evals - previous,
                evals,
                len(run.front),
                time.monotonic() - started,
            )
        elif time.monotonic() - last_log > 0.5:
            last_log = time.monotonic()
            log.info(
                "Iter: %d | Pareto = | +0/-0 | size:%d | %s", evals, len(run.front), run.ranges()
            )
    if interrupted:
        log.info("Optimization interrupted by user (SIGINT): terminating workers")
    for w in workers:
        w.terminate()
    for w in workers:
        w.join()
    tasks.cancel_join_thread()
    results.cancel_join_thread()
    run.flush()
    log.info(
        "Results saved to %s (%d Pareto members)", os.path.abspath(results_dir), len(run.front)
    )
    if not interrupted:
        log.info("Optimization complete.")
    return 0
