"""The host side: ``botfleet agent`` supervises this host's bot instances and dials in to the
api. Imports nothing from api/, fleet/, db/ or jobs/ (it runs alone on a VPS).

Entry points: :func:`botfleet.agent.main.run_agent` (the daemon) and
:class:`botfleet.agent.supervisor.Supervisor` (the supervision core, usable without a link).
"""

import sys

# httpx/__init__ imports its command-line client (httpx._main) when rich, click and pygments
# are installed (a server venv): ~6 MiB the agent never uses. A None entry in sys.modules
# makes that import raise ImportError (Python's import system, "The module cache"), which
# httpx catches: its CLI entry point then prints how to install it. Set here, before any
# agent module imports httpx; a server process that imports the agent package (the api's
# tests) only loses httpx's CLI.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

from botfleet.agent.supervisor import Supervisor

__all__ = ["Supervisor"]
