"""passivbot v7's `src/backtest.py`, as the botfleet stand-in: run `python -u src/backtest.py CONFIG`
from this v7root directory (see botfleet.demo)."""

import os
import sys

try:
    import botfleet.demo  # noqa: F401
except ImportError:  # run from a source checkout without the package installed
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))))

from botfleet.demo.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["backtest", *sys.argv[1:]], version="v7"))
