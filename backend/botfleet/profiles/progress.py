"""Progress of passivbot backtest and optimize runs, read from their output lines.

Line formats (passivbot v7.12/v8.1, ../shared/passivbot/INTERFACE.md). Optimize logs
``%(asctime)s %(processName)-12s %(levelname)-8s %(message)s`` on stdout; the messages:

- ``Starting optimize...``
- ``Evaluated i/N starting configs``
- ``Iter: N | Pareto ↑ | +a/-r | size:S | metric:(min,max)...``
- ``Pareto update | eval=N | front=F | objectives=[...]``
- ``Gen g complete | evals=e | total=T | front=F | elapsed=Xs`` (DEAP backend)
- ``Optimization complete.``

Backtest prints ``Backtesting <exchange>...`` then ``seconds elapsed for backtest: X``.

Lines are matched anywhere (``re.search``), so any prefix (passivbot's log format, the
agent's capture timestamp) is fine. Fractions never go down within one parser.
"""

from __future__ import annotations

import re
from typing import Any

from botfleet.profiles.base import ProgressUpdate

__all__ = ["BacktestProgress", "OptimizeProgress"]

_STARTING = re.compile(r"Evaluated\s+(\d+)\s*/\s*(\d+)\s+starting configs")
_ITER = re.compile(r"Iter:\s*(\d+)\s*\|.*?size:\s*(\d+)")
_PARETO = re.compile(r"Pareto update\s*\|\s*eval=(\d+)\s*\|\s*front=(\d+)")
_GEN = re.compile(
    r"Gen\s+(\d+)\s+complete\s*\|\s*evals=(\d+)\s*\|\s*total=(\d+)\s*\|\s*front=(\d+)"
    r"(?:\s*\|\s*elapsed=([\d.]+)s)?"
)
_BACKTESTING = re.compile(r"Backtesting\s+(\S+?)\s*\.\.\.")
_ELAPSED = re.compile(r"seconds elapsed for backtest:\s*([\d.]+)")
_DOWNLOAD = re.compile(r"(download\w*)\b.*?(\d{1,3}(?:\.\d+)?)\s*%", re.IGNORECASE)


class OptimizeProgress:
    """Parser for one optimize run; ``iters`` is the config's ``optimize.iters`` (the
    number of evaluations the run makes). ``fraction = evaluations / iters``, clamped to 1."""

    def __init__(self, iters: int | None) -> None:
        self.iters = iters if isinstance(iters, int) and iters > 0 else None
        self.fraction = 0.0
        self.detail: dict[str, Any] = {"iters": self.iters}

    def _update(self, phase: str, evaluations: int | None, **detail: Any) -> ProgressUpdate:
        if evaluations is not None:
            self.detail["evaluations"] = evaluations
            if self.iters:
                self.fraction = max(self.fraction, min(1.0, evaluations / self.iters))
        self.detail.update({k: v for k, v in detail.items() if v is not None})
        fraction = self.fraction if self.iters else None
        return ProgressUpdate(fraction=fraction, phase=phase, detail=dict(self.detail))

    def feed(self, line: str) -> ProgressUpdate | None:
        """The update this line gives, if any."""
        if m := _ITER.search(line):
            return self._update("optimizing", int(m[1]), front_size=int(m[2]))
        if m := _PARETO.search(line):
            return self._update("optimizing", int(m[1]), front_size=int(m[2]))
        if m := _GEN.search(line):
            elapsed = float(m[5]) if m[5] else None
            return self._update(
                "optimizing",
                int(m[3]),
                generation=int(m[1]),
                front_size=int(m[4]),
                elapsed=elapsed,
            )
        if m := _STARTING.search(line):
            done, total = int(m[1]), int(m[2])
            return self._update(
                "starting configs", None, starting_configs=done, starting_configs_total=total
            )
        if "Starting optimize" in line:
            return self._update("optimizing", None)
        if "Optimization complete" in line:
            self.fraction = 1.0
            return ProgressUpdate(fraction=1.0, phase="complete", detail=dict(self.detail))
        return None


class BacktestProgress:
    """Parser for one backtest run. A backtest tells no fraction while it simulates; the
    phases are ``downloading`` (with the download percent in detail), ``backtesting
    <exchange>`` and ``analysis``. ``exchanges`` (from ``backtest.exchanges``) lets the
    fraction advance per exchange when passivbot backtests them one by one."""

    def __init__(self, exchanges: list[str] | None = None) -> None:
        self.exchanges = [e for e in (exchanges or []) if isinstance(e, str)]
        self.done: list[str] = []

    def feed(self, line: str) -> ProgressUpdate | None:
        """The update this line gives, if any."""
        if m := _BACKTESTING.search(line):
            exchange = m[1]
            self.done.append(exchange)
            fraction = None
            if exchange in self.exchanges and exchange != "combined":
                fraction = (len(self.done) - 1) / len(self.exchanges)
            return ProgressUpdate(fraction, f"backtesting {exchange}", {"exchange": exchange})
        if m := _ELAPSED.search(line):
            seconds = float(m[1])
            return ProgressUpdate(None, "analysis", {"backtest_seconds": seconds})
        if m := _DOWNLOAD.search(line):
            return ProgressUpdate(None, "downloading", {"download_percent": float(m[2])})
        return None
