"""``backtest`` and ``download``: passivbot's backtest output and results layout, faked.

Prints ``Backtesting <exchange>...`` per run, ``seconds elapsed for backtest: X`` and the
metrics; writes ``<base_dir>/{exchange|combined}/{YYYY-MM-DDTHH_MM_SS}/`` with
``analysis.json``, ``config.json``, ``fills.csv``, ``balance_and_equity.csv.gz`` and
``balance_and_equity.png``; a suite writes ``<base_dir>/suite_runs/<ts>/<label>/...`` and
``suite_summary.json``. Like passivbot's backtest it installs no signal handler.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import struct
import sys
import time
import zlib
from typing import Any

from botfleet.demo.common import config_seed, env_float, load_config, section, side_coins

__all__ = ["fake_metrics", "run_backtest", "run_download", "tiny_png"]

_METRICS = (
    "adg",
    "adg_w",
    "mdg",
    "mdg_w",
    "gain",
    "drawdown_worst",
    "drawdown_worst_mean_1pct",
    "expected_shortfall_1pct",
    "sharpe_ratio",
    "sortino_ratio",
    "calmar_ratio",
    "omega_ratio",
    "sterling_ratio",
    "loss_profit_ratio",
    "position_held_hours_max",
    "position_held_hours_mean",
    "positions_held_per_day",
    "volume_pct_per_day_avg",
    "equity_balance_diff_neg_max",
    "peak_recovery_hours_equity",
)


def _say(message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f"{stamp} INFO     {message}", flush=True)


def fake_metrics(rng: random.Random) -> dict[str, float]:
    """Plausible passivbot analysis metrics (names as in analysis.json), from ``rng``."""
    adg = rng.uniform(-0.0005, 0.004)
    drawdown = min(0.95, abs(adg) * rng.uniform(40, 160) + rng.uniform(0.01, 0.1))
    values = {name: rng.uniform(0.0, 2.0) for name in _METRICS}
    values.update(
        adg=adg,
        adg_w=adg * rng.uniform(0.8, 1.2),
        mdg=adg * rng.uniform(0.6, 1.0),
        mdg_w=adg * rng.uniform(0.5, 1.0),
        gain=(1 + adg) ** 365 - 1,
        drawdown_worst=drawdown,
        drawdown_worst_mean_1pct=drawdown * rng.uniform(0.5, 0.9),
        sharpe_ratio=adg * rng.uniform(10, 40),
        loss_profit_ratio=rng.uniform(0.05, 0.9),
        position_held_hours_max=rng.uniform(24, 2000),
    )
    return {k: round(v, 8) for k, v in values.items()}


def tiny_png(width: int, height: int, ys: list[float]) -> bytes:
    """A small valid PNG (grayscale) plotting ``ys`` as a line: built with zlib and struct."""
    lo, hi = min(ys), max(ys)
    span = (hi - lo) or 1.0
    rows = [bytearray(b"\xff" * width) for _ in range(height)]
    for x in range(width):
        y = ys[int(x * (len(ys) - 1) / max(width - 1, 1))]
        rows[height - 1 - int((y - lo) / span * (height - 1))][x] = 0
    raw = b"".join(b"\x00" + bytes(r) for r in rows)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _write_run(
    path: str, config: dict[str, Any], rng: random.Random, coins: list[str]
) -> dict[str, float]:
    os.makedirs(path, exist_ok=True)
    metrics = fake_metrics(rng)
    balance = float(section(config, "backtest").get("starting_balance") or 1000)
    equity = [balance]
    for _ in range(199):
        equity.append(equity[-1] * (1 + metrics["adg"] / 10 + rng.gauss(0, 0.003)))
    with open(os.path.join(path, "analysis.json"), "w") as fh:
        json.dump(metrics, fh, indent=4)
    with open(os.path.join(path, "config.json"), "w") as fh:
        json.dump(config, fh, indent=4)
    with open(os.path.join(path, "fills.csv"), "w") as fh:
        fh.write(",minute,coin,pnl,fee_paid,balance,qty,price,psize,pprice,type\n")
        for i in range(20):
            coin = coins[i % len(coins)]
            fh.write(
                f"{i},{i * 600},{coin},{rng.uniform(-1, 3):.4f},{rng.uniform(0, 0.1):.4f},"
                f"{equity[i * 10]:.2f},0.01,{rng.uniform(1, 100):.4f},0.01,0,entry_grid_normal_long\n"
            )
    with gzip.open(os.path.join(path, "balance_and_equity.csv.gz"), "wt") as fh:
        fh.write(",balance,equity\n")
        fh.writelines(f"{i},{e:.4f},{e * 1.001:.4f}\n" for i, e in enumerate(equity))
    with open(os.path.join(path, "balance_and_equity.png"), "wb") as fh:
        fh.write(tiny_png(160, 60, equity))
    return metrics


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H_%M_%S", time.gmtime())


def _unique(path: str) -> str:
    candidate, n = path, 1
    while os.path.exists(candidate):
        candidate, n = f"{path}_{n}", n + 1
    return candidate


def run_backtest(config_path: str, *, suite: bool | None = None, version: str = "v8") -> int:
    """Fake a backtest of ``config_path``; returns the exit code (0)."""

    config = load_config(config_path)
    bt = section(config, "backtest")
    base_dir = str(bt.get("base_dir") or "backtests")
    exchanges = [e for e in bt.get("exchanges") or ["binance"] if isinstance(e, str)]
    live = section(config, "live")
    coins = side_coins(live)["long"] or side_coins(live)["short"] or ["BTC"]
    rng = random.Random(config_seed(config))
    scenarios = [s for s in bt.get("scenarios") or [] if isinstance(s, dict)]
    use_suite = bool(scenarios) and (suite if suite is not None else bool(bt.get("suite_enabled")))
    combine = len(exchanges) > 1 and (version == "v8" or bt.get("combine_ohlcvs", True))
    runs = ["combined"] if combine else exchanges
    if use_suite:
        runs = [str(s.get("label") or f"scenario_{i}") for i, s in enumerate(scenarios)]
    pause = env_float("BOTFLEET_DEMO_JOB_SECONDS", 2.0) / max(len(runs), 1)
    started = time.monotonic()
    results: dict[str, dict[str, float]] = {}
    root = _unique(os.path.join(base_dir, "suite_runs", _stamp())) if use_suite else ""
    for run in runs:
        _say(f"Backtesting {run}...")
        t0 = time.monotonic()
        time.sleep(pause)
        _say(f"seconds elapsed for backtest: {time.monotonic() - t0:.4f}")
        path = (
            os.path.join(root, run) if use_suite else _unique(os.path.join(base_dir, run, _stamp()))
        )
        results[run] = _write_run(path, config, rng, coins)
        for name, value in results[run].items():
            print(f"{name:<32}{value:.8g}", flush=True)
        _say(f"dumping results to {os.path.abspath(path)}")
    if use_suite:
        summary = {
            "scenarios": results,
            "aggregate": {
                m: sum(r[m] for r in results.values()) / len(results) for m in results[runs[0]]
            },
        }
        with open(os.path.join(root, "suite_summary.json"), "w") as fh:
            json.dump(summary, fh, indent=4)
        _say(f"suite summary written to {os.path.abspath(root)}/suite_summary.json")
    _say(f"backtest finished in {time.monotonic() - started:.2f} seconds")
    return 0


def run_download(config_path: str) -> int:
    """Fake ``passivbot download``: a few progress lines, exit 0."""

    config = load_config(config_path)
    bt = section(config, "backtest")
    live = section(config, "live")
    coins = side_coins(live)["long"] or ["BTC"]
    for exchange in bt.get("exchanges") or ["binance"]:
        for pct in (0, 50, 100):
            _say(f"downloading ohlcvs {exchange} {','.join(coins[:6])} {pct}%")
            time.sleep(0.05)
    _say("download complete")
    sys.stdout.flush()
    return 0
