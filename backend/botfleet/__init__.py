"""botfleet: a control panel for fleets of passivbot-style trading bots."""

__version__ = "0.1.0"
__all__ = ["__version__"]
