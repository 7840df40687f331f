"""Benchmark start stamp: imported by Python at start-up when this folder is on PYTHONPATH.
Appends ``<BENCH_BOT or BOTFLEET_JOB_ID> <pid> <time.time()>`` to ``BENCH_STAMP_FILE`` (one
O_APPEND write, so concurrent bots never interleave). Does nothing without that variable."""

import os
import time

_path = os.environ.get("BENCH_STAMP_FILE")
if _path:
    _name = os.environ.get("BENCH_BOT") or os.environ.get("BOTFLEET_JOB_ID") or "-"
    _fd = os.open(_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_fd, f"{_name} {os.getpid()} {time.time():.6f}\n".encode())
    os.close(_fd)
