"""passivbot v7's `src/backtest.py`, played by the botfleet stand-in.

Run `python -u src/backtest.py CONFIG` from the v7root directory, as passivbot v7 is run from
its repository root (see botfleet.demo).
"""

import os
import sys

try:
    import botfleet.demo  # noqa: F401
except ImportError:  # a source checkout without the package installed: backend/ on sys.path
    here = os.path.abspath(__file__)
    sys.path.insert(0, os.path.join(os.path.dirname(here), *[os.pardir] * 4))

from botfleet.demo.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["backtest", *sys.argv[1:]], version="v7"))
