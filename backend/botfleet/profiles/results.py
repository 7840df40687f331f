"""Reading passivbot's results layout (INTERFACE.md, "Output").

- Backtest: ``<base_dir>/{exchange|combined}/{YYYY-MM-DDTHH_MM_SS}/`` holding
  ``analysis.json``, ``config.json``, ``fills.csv``, ``balance_and_equity.csv.gz``, ``*.png``;
  suites: ``<base_dir>/suite_runs/<ts>/.../suite_summary.json``.
- Optimize: ``optimize_results/<ts>_<exchanges>_<n_days>days_<coins>_<hash>/`` holding
  ``all_results.bin`` and ``pareto/<hash>.json`` (a config with its ``analysis``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from botfleet.profiles.base import Results

__all__ = ["adopt_optimize_results", "read_backtest", "read_optimize"]


def _rel(path: Path, job_dir: Path) -> str:
    return path.relative_to(job_dir).as_posix()


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def read_backtest(job_dir: Path) -> Results:
    """Results of a backtest whose results went anywhere under ``job_dir``.

    ``summary``: the metrics of ``analysis.json`` plus ``exchange`` and ``results_dir``
    (relative to ``job_dir``); with several results dirs (one per exchange) the first one
    (``combined`` first) is at the top level and all are under ``runs``. A suite gives
    ``{"suite": <suite_summary.json>, "results_dir": ...}``. ``artifacts``: every file of
    those dirs. Raises ``FileNotFoundError`` when there is no ``analysis.json`` nor
    ``suite_summary.json``."""
    job_dir = Path(job_dir)
    suites = sorted(job_dir.rglob("suite_summary.json"))
    if suites:
        suite_dir = suites[-1].parent
        files = sorted(p for p in suite_dir.rglob("*") if p.is_file())
        summary = {"suite": _load(suites[-1]), "results_dir": _rel(suite_dir, job_dir)}
        return Results(summary=summary, artifacts=[_rel(p, job_dir) for p in files])
    analyses = sorted(
        job_dir.rglob("analysis.json"), key=lambda p: (p.parent.parent.name != "combined", str(p))
    )
    if not analyses:
        raise FileNotFoundError(f"no analysis.json under {job_dir}: the backtest wrote no results")
    runs: list[dict[str, Any]] = []
    artifacts: list[str] = []
    for analysis in analyses:
        metrics = _load(analysis)
        run = dict(metrics) if isinstance(metrics, dict) else {"analysis": metrics}
        run["exchange"] = analysis.parent.parent.name
        run["results_dir"] = _rel(analysis.parent, job_dir)
        runs.append(run)
        artifacts += [_rel(p, job_dir) for p in sorted(analysis.parent.iterdir()) if p.is_file()]
    summary = dict(runs[0])
    if len(runs) > 1:
        summary["runs"] = runs
    return Results(summary=summary, artifacts=artifacts)


def read_optimize(job_dir: Path) -> Results:
    """Results of an optimize run whose ``optimize_results/<dir>/`` is under ``job_dir``.

    ``summary``: ``{"results_dir": ..., "pareto": [{"hash", "analysis" and/or "metrics" as
    present, "config_path"}...]}`` (paths relative to ``job_dir``), ``artifacts``: the pareto
    files and ``all_results.bin``. Raises ``FileNotFoundError`` when there is no results dir.
    """
    job_dir = Path(job_dir)
    dirs = sorted(
        p.parent for p in job_dir.glob("**/optimize_results/*/all_results.bin")
    ) or sorted(p.parent.parent for p in job_dir.glob("**/optimize_results/*/pareto/"))
    if not dirs:
        raise FileNotFoundError(f"no optimize_results/<run>/ under {job_dir}: nothing to read")
    results_dir = dirs[-1]
    pareto: list[dict[str, Any]] = []
    artifacts: list[str] = []
    for path in sorted((results_dir / "pareto").glob("*.json")):
        member: dict[str, Any] = {"hash": path.stem}
        try:
            config = _load(path)
        except (OSError, ValueError):
            config = {}
        for key in ("analysis", "metrics"):
            if isinstance(config, dict) and key in config:
                member[key] = config[key]
        member["config_path"] = _rel(path, job_dir)
        pareto.append(member)
        artifacts.append(member["config_path"])
    everything = results_dir / "all_results.bin"
    if everything.is_file():
        artifacts.append(_rel(everything, job_dir))
    summary = {"results_dir": _rel(results_dir, job_dir), "pareto": pareto}
    return Results(summary=summary, artifacts=artifacts)


def _config_marker(results_dir: Path) -> Any:
    for candidate in [
        results_dir / "initial_config.json",
        *sorted((results_dir / "pareto").glob("*.json")),
    ]:
        try:
            config = _load(candidate)
        except (OSError, ValueError):
            continue
        backtest = config.get("backtest") if isinstance(config, dict) else None
        if isinstance(backtest, dict):
            return backtest.get("base_dir")
    return None


def adopt_optimize_results(job_dir: Path, roots: list[Path]) -> Path | None:
    """Find this job's results dir among ``<root>/optimize_results/*`` and move it to
    ``<job_dir>/optimize_results/``; returns its new path.

    passivbot v7 writes optimize results under its repository root (the cwd), not where
    the config says. :meth:`PassivbotProfile.prepare_job_config` sets ``backtest.base_dir``
    to ``<job_dir>/backtests``, and passivbot copies the config into ``initial_config.json``
    and every pareto member: a results dir belongs to this job when that ``base_dir`` says so.
    """
    job_dir = Path(job_dir).resolve()
    marker = str(job_dir / "backtests")
    for root in roots:
        for candidate in sorted(Path(root).glob("optimize_results/*/")):
            if candidate.is_dir() and _config_marker(candidate) == marker:
                target = job_dir / "optimize_results" / candidate.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(candidate), str(target))
                return target
    return None
