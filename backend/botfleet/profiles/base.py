"""The profile contract: how to run one kind of bot (DESIGN.md, "profile").

A :class:`Profile` turns a config document into argv lists (live bot, backtest, optimize),
knows its stop ladder, validates configs, reads progress lines and results. Nothing here
starts a process: the agent and the job worker do, replacing the placeholders of
:data:`botfleet.protocol.PLACEHOLDERS` in argv, cwd and env.

Errors: :class:`ConfigError` (a bad config or override, a 4xx for the api),
:class:`UnknownProfile` (no such profile), :class:`UnavailableProfile` (the profile needs
something this installation lacks, e.g. a passivbot v7 checkout).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from botfleet.protocol import StopStep

if TYPE_CHECKING:
    from botfleet.db.models import JobKind
    from botfleet.settings import Settings

__all__ = [
    "Command",
    "ConfigError",
    "Profile",
    "ProgressParser",
    "ProgressUpdate",
    "Results",
    "UnavailableProfile",
    "UnknownProfile",
]


class ConfigError(ValueError):
    """A config document (or an override) is not acceptable.

    ``key`` is the dotted path of the offending key (``"live.user"``; ``""`` for the whole
    document), ``message`` says what is wrong and how to fix it. ``str(error)`` is
    ``"{key}: {message}"`` (just the message when ``key`` is empty).
    """

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}" if key else message)


class UnknownProfile(LookupError):
    """No profile has this name; the message lists the known ones."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"unknown profile {name!r}: use one of {', '.join(known)}")

    def __str__(self) -> str:  # LookupError would repr() a single argument
        return str(self.args[0])


class UnavailableProfile(ValueError):
    """The profile cannot run here: the message says which setting to set."""


@dataclass(frozen=True)
class Command:
    """A process to start: ``argv`` (no shell ever sees it), ``cwd`` (``None``: the caller's
    default, the instance or job directory) and extra ``env`` variables. Any element may hold
    the placeholders of :data:`botfleet.protocol.PLACEHOLDERS`."""

    argv: list[str]
    cwd: str | None
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class ProgressUpdate:
    """What one output line said about a job: ``fraction`` done (0..1, ``None`` when the
    line does not tell), ``phase`` (``"optimizing"``, ``"backtesting binance"``...),
    ``detail`` (``evaluations``, ``iters``, ``front_size``, ``generation``... when known)."""

    fraction: float | None
    phase: str | None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Results:
    """A finished job's results: a JSON-able ``summary`` and the ``artifacts`` (file paths
    relative to the job directory)."""

    summary: dict[str, Any]
    artifacts: list[str]


class ProgressParser(Protocol):
    """Fed each output line of a job (stdout and stderr, with or without a timestamp prefix);
    returns an update when the line says something about progress."""

    def feed(self, line: str) -> ProgressUpdate | None: ...


class Profile(ABC):
    """How to run one kind of bot. See the module docstring; subclasses are stateless."""

    name: str
    supports_jobs: bool
    stop_ladder: list[StopStep]
    #: Directories a job's program keeps relative to its cwd that every job should share
    #: (passivbot v8: ``caches``, its OHLCV data), linked into each job dir from
    #: ``HOME/passivbot/<name>`` so that jobs do not download the same data again.
    shared_job_dirs: tuple[str, ...] = ()

    @abstractmethod
    def parse_config(self, text: str) -> dict[str, Any]:
        """Parse config text (JSON, or HJSON when JSON fails) into an object.

        Raises :class:`ConfigError` with the line and column of a syntax error, or when the
        text is not an object."""

    @abstractmethod
    def validate_config(
        self, document: dict[str, Any], *, purpose: str | None = None
    ) -> dict[str, Any]:
        """Check a parsed document and return the document to store.

        ``purpose``: ``None`` (any stored config), ``"live"`` (to run a bot: the account must
        be named), ``"backtest"`` or ``"optimize"`` (the job's sections must be there).
        Raises :class:`ConfigError` naming the key."""

    @abstractmethod
    def live_command(
        self,
        *,
        config_path: str,
        simulated: bool,
        settings: Settings,
        argv: list[str] | None = None,
    ) -> Command:
        """The live bot's command. ``simulated=True`` runs the passivbot stand-in
        (botfleet.demo) instead of the real program. Raises :class:`UnavailableProfile` or
        :class:`ConfigError` (a bad ``argv``)."""

    def job_command(
        self,
        kind: JobKind,
        *,
        config_path: str,
        job_dir: str,
        simulated: bool,
        settings: Settings,
    ) -> Command:
        """The backtest/optimize command for a job whose config is at ``config_path``."""
        raise UnavailableProfile(f"profile {self.name!r} runs no backtest or optimize jobs")

    def prepare_job_config(
        self, kind: JobKind, document: dict[str, Any], *, job_dir: str
    ) -> dict[str, Any]:
        """The config the job runs with (results redirected into ``job_dir``)."""
        raise UnavailableProfile(f"profile {self.name!r} runs no backtest or optimize jobs")

    def progress_parser(self, kind: JobKind, document: dict[str, Any]) -> ProgressParser:
        """A fresh parser for one job's output lines."""
        raise UnavailableProfile(f"profile {self.name!r} runs no backtest or optimize jobs")

    def read_results(self, kind: JobKind, job_dir: Path) -> Results:
        """Read a finished job's results from ``job_dir``. Raises ``FileNotFoundError``
        when the job wrote none."""
        raise UnavailableProfile(f"profile {self.name!r} runs no backtest or optimize jobs")
