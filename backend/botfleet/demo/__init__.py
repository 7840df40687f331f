"""The passivbot stand-in: speaks passivbot's real interface (../shared/passivbot/INTERFACE.md)
without exchanges, data or the Rust extension, for tests, benchmarks and ``botfleet demo``.

Entry points, as passivbot has them::

    python -m botfleet.demo live CONFIG [--log-level warning|info|debug|trace]
    python -m botfleet.demo backtest CONFIG [-dp] [--suite y|n]
    python -m botfleet.demo optimize CONFIG [-t STARTING_CONFIGS] [--resume RESULTS_DIR]
    python -m botfleet.demo download CONFIG
    cd botfleet/demo/v7root && python -u src/main.py|src/backtest.py|src/optimize.py CONFIG

Behaviour switches (environment variables; durations in seconds):

- ``BOTFLEET_DEMO_LINES_PER_SEC`` live log lines per second (default 1; 0 = boot lines only).
- ``BOTFLEET_DEMO_LOG_FILE=0`` live: do not also write ``logs/{user}.log`` (default: written,
  rotating 10 MB x 5, as passivbot does).
- ``BOTFLEET_DEMO_CRASH_AFTER=T`` live: after T s log an error and a traceback, exit with
  ``BOTFLEET_DEMO_EXIT_CODE`` (default 1).
- ``BOTFLEET_DEMO_IGNORE_SIGINT=1`` live: log each SIGINT and keep running.
- ``BOTFLEET_DEMO_SHUTDOWN_SECONDS`` live: how long a graceful shutdown takes (default 0.2).
- ``BOTFLEET_DEMO_FLOOD=N`` live: right after boot write N lines ``flood <i>`` (i = 1..N) to
  stdout as fast as the pipe takes them, then carry on; ``BOTFLEET_DEMO_FLOOD_EXIT=1`` exits 0
  after the flood; ``BOTFLEET_DEMO_FLOOD_PAD=B`` pads each line with B bytes of ``x``.
- ``BOTFLEET_DEMO_SPAWN_CHILD=1`` live: start a sleeping child process in the bot's process
  group (logged as ``[boot] helper process pid=N``), to test process-group stops.
- ``BOTFLEET_DEMO_SEED`` seed of the fake market (default: derived from the config).
- ``BOTFLEET_DEMO_BALANCE`` starting balance in USDT (default 1000).
- ``BOTFLEET_DEMO_JOB_SECONDS`` how long a backtest or (default-speed) optimize takes
  (default 2).
- ``BOTFLEET_DEMO_EVALS_PER_SEC`` optimize speed (default: ``optimize.iters / JOB_SECONDS``);
  a run advances at most 1/20 of ``optimize.iters`` per 50 ms tick, so progress always shows.
- ``BOTFLEET_DEMO_WORKERS`` optimize worker processes (default ``min(optimize.n_cpus, 2)``).

Only the standard library is used (``hjson`` only for a config that is not JSON), and this
package imports nothing at import time: 100 stand-ins start quickly.
"""

import os

__all__ = ["V7_ROOT"]

#: The stand-in's passivbot v7 repository root (what ``{demo_v7_root}`` stands for).
V7_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "v7root")
