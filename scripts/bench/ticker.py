"""A bench bot for log latency: prints ``tick <n> <time.time()>`` RATE times a second
(``BENCH_TICK_RATE``, default 25) on stdout until killed; the reader subtracts the embedded
time from the time it received the line. Exits 0 on SIGINT/SIGTERM."""

import os
import signal
import sys
import time

rate = float(os.environ.get("BENCH_TICK_RATE", "25"))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
n = 0
next_at = time.monotonic()
try:
    while True:
        n += 1
        sys.stdout.write(f"tick {n} {time.time():.6f}\n")
        sys.stdout.flush()
        next_at += 1.0 / rate
        time.sleep(max(0.0, next_at - time.monotonic()))
except KeyboardInterrupt:
    sys.exit(0)
