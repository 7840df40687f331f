"""Print the benchmark tables from scripts/bench/results/*.json, each figure beside its target
(issue 2) with PASS/FAIL for botfleet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["print_tables", "rows"]

TOOLS = ("botfleet", "supervisord", "pm2")


def _get(doc: dict[str, Any], tool: str, *path: str) -> Any:
    cur: Any = doc.get(tool)
    for key in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(key)
    return cur


def rows(docs: dict[str, dict[str, Any]]) -> list[tuple[str, list[Any], str, bool | None]]:
    """``(figure, [botfleet, supervisord, pm2], target text, botfleet passes)`` per line."""
    out: list[tuple[str, list[Any], str, bool | None]] = []

    def add(label: str, scenario: str, path: tuple[str, ...], target: str, ok: Any) -> None:
        doc = docs.get(scenario)
        if doc is None:
            return
        values = [_get(doc, t, *path) for t in TOOLS]
        mine = values[0]
        out.append((label, values, target, None if mine is None or ok is None else bool(ok(mine))))

    add("start 100 -> all RUNNING (ms)", "fleet", ("start_all_running_ms",), "<= 2000", lambda v: v <= 2000)
    add("start 100 -> all stamped (ms)", "fleet", ("start_all_stamped_ms",), "-", None)
    add("crash->restart idle p50 (ms)", "crash", ("p50",), "<= 40", lambda v: v <= 40)
    add("crash->restart idle p99 (ms)", "crash", ("p99",), "<= 80", lambda v: v <= 80)
    add("crash->restart loaded p50 (ms)", "fleet", ("crash_loaded", "p50"), "<= 40", lambda v: v <= 40)
    add("crash->restart loaded p99 (ms)", "fleet", ("crash_loaded", "p99"), "<= 80", lambda v: v <= 80)
    add("stop 100 -> gone+STOPPED (ms)", "fleet", ("stop_all_stopped_ms",), "<= 500", lambda v: v <= 500)
    add("idle 100 bots: CPU % of a core", "fleet", ("idle", "supervisor", "cpu_percent"), "<= 2",
        lambda v: v <= 2)
    # rss_mb is MiB (common.py: bytes / 2**20); the target is 50 MB = 47.7 MiB
    add("idle 100 bots: RSS (MiB)", "fleet", ("idle", "supervisor", "rss_mb"), "<= 47.7", lambda v: v <= 50e6 / 2**20)
    add("line -> follower p50 (ms)", "latency", ("p50",), "-", None)
    add("line -> follower p99 (ms)", "latency", ("p99",), "<= 50", lambda v: v <= 50)
    add("flood: landed lines/s", "flood", ("plain", "landed_rate"), ">= 500000", lambda v: v >= 500_000)
    add("flood: lines missing (worst run)", "flood", ("plain", "missing_max"), "0", lambda v: v == 0)
    add("flood: bot lines/s (no consumer)", "flood", ("plain", "bot_rate"), "-", None)
    add("flood, stalled consumer: bot lines/s", "flood", ("stalled", "bot_rate"), "unchanged", None)
    add("flood, api down: bot lines/s", "flood", ("api-down", "bot_rate"), "unchanged", None)
    add("job created -> process p50 (ms)", "jobs", ("to_process_start", "p50"), "<= 200", lambda v: v <= 200)
    add("job created -> process p95 (ms)", "jobs", ("to_process_start", "p95"), "-", None)
    return out


def print_tables(results: Path, quick: bool = False) -> None:
    """Print the table of every scenario found in ``results``."""
    suffix = "-quick" if quick else ""
    docs = {}
    for path in sorted(results.glob(f"*{suffix}.json")):
        name = path.stem.removesuffix(suffix)
        if quick or not path.stem.endswith("-quick"):
            docs[name] = json.loads(path.read_text())
    width = 40
    print(f"\n{'figure':<{width}} {'botfleet':>12} {'supervisord':>12} {'pm2':>12}  {'target':<10} botfleet")
    for label, values, target, ok in rows(docs):
        cells = " ".join(f"{'-' if v is None else v:>12}" for v in values)
        verdict = {True: "PASS", False: "FAIL", None: ""}[ok]
        print(f"{label:<{width}} {cells}  {target:<10} {verdict}")


if __name__ == "__main__":
    print_tables(Path(__file__).resolve().parent / "results")
