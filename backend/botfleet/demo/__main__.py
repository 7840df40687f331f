"""``python -m botfleet.demo live|backtest|optimize|download CONFIG [flags]``: the stand-in's
command line, shaped like passivbot v8's (see :mod:`botfleet.demo`)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="passivbot", description="botfleet's passivbot stand-in")
    sub = parser.add_subparsers(dest="command", required=True)
    live = sub.add_parser("live", help="run a fake live bot")
    live.add_argument("config")
    live.add_argument("--log-level", default="info", choices=["warning", "info", "debug", "trace"])
    live.add_argument("--fail-on-stale-rust", action="store_true")
    backtest = sub.add_parser("backtest", help="run a fake backtest")
    backtest.add_argument("config")
    backtest.add_argument("-dp", "--disable-plotting", action="store_true")
    backtest.add_argument("--suite", choices=["y", "n"], default=None)
    optimize = sub.add_parser("optimize", help="run a fake optimization")
    optimize.add_argument("config")
    optimize.add_argument("-t", "--start", dest="starting_configs", default=None)
    optimize.add_argument("--resume", default=None)
    download = sub.add_parser("download", help="fake an OHLCV download")
    download.add_argument("config")
    return parser


def main(argv: list[str] | None = None, *, version: str = "v8") -> int:
    """Run one stand-in command; returns its exit code."""
    args = _parser().parse_args(argv)
    if args.command == "live":
        from botfleet.demo.live import run_live

        return run_live(args.config, log_level=args.log_level, version=version)
    if args.command == "backtest":
        from botfleet.demo.backtest import run_backtest

        suite = None if args.suite is None else args.suite == "y"
        return run_backtest(args.config, suite=suite, version=version)
    if args.command == "optimize":
        from botfleet.demo.optimize import run_optimize

        return run_optimize(
            args.config, starting_configs=args.starting_configs, resume=args.resume, version=version
        )
    from botfleet.demo.backtest import run_download

    return run_download(args.config)


if __name__ == "__main__":
    sys.exit(main())
