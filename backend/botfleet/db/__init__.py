"""Persistence: SQLAlchemy models, engine and session factory, migrations runner."""

from botfleet.db.models import *
from botfleet.db.models import __all__ as _models_all
from botfleet.db.session import create_engine, create_sessionmaker

__all__ = [*_models_all, "create_engine", "create_sessionmaker"]
