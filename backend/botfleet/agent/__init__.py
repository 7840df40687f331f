"""The host side: ``botfleet agent`` supervises this host's bot instances and dials in to the
api. Imports nothing from api/, fleet/, db/ or jobs/ (it runs alone on a VPS).

Entry points: :func:`botfleet.agent.main.run_agent` (the daemon) and
:class:`botfleet.agent.supervisor.Supervisor` (the supervision core, usable without a link).
"""

from botfleet.agent.supervisor import Supervisor

__all__ = ["Supervisor"]
