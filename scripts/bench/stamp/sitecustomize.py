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

# With BENCH_WRITE_STAMP=1 every line the bot writes to stdout/stderr starts with
# ``w=<time.time()> `` taken at the write, so a benchmark can time bot write -> SSE client,
# including any time the line waits in the pipe before the supervisor reads it.
if os.environ.get("BENCH_WRITE_STAMP") == "1":
    import sys

    class _Stamped:
        def __init__(self, stream):
            self._stream, self._line_start = stream, True

        def write(self, text):
            out = []
            for piece in text.splitlines(keepends=True):
                if self._line_start:
                    out.append("w=%.6f " % time.time())
                out.append(piece)
                self._line_start = piece.endswith("\n")
            self._stream.write("".join(out))
            return len(text)

        def __getattr__(self, name):
            return getattr(self._stream, name)

    sys.stdout, sys.stderr = _Stamped(sys.stdout), _Stamped(sys.stderr)
