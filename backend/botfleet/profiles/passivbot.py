"""The passivbot profiles: ``passivbot-v7`` (scripts run from a repository checkout) and
``passivbot-v8`` (the ``passivbot`` console script). Command lines, signals and output
follow ../shared/passivbot/INTERFACE.md (passivbot v7.12.0 and v8.1.0).

``simulated=True`` runs the stand-in (:mod:`botfleet.demo`) with the same command-line shape:
v8 ``{python} -m botfleet.demo live CONFIG``, v7 ``{python} -u src/main.py CONFIG`` in
``{demo_v7_root}``; the agent or worker replaces the placeholders.

Where results go (so two jobs never overwrite each other's): the job's config gets
``backtest.base_dir = <job_dir>/backtests`` (absolute). v8 jobs run with cwd = job dir, so
``optimize_results/`` lands there too. v7 jobs must run in the repository root, where v7
writes ``optimize_results/``: :meth:`PassivbotV7.read_results` finds the run whose saved
config carries this job's ``base_dir`` and moves it into the job dir.
"""

from __future__ import annotations

import copy
from abc import abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botfleet.profiles.base import (
    Command,
    ConfigError,
    Profile,
    ProgressParser,
    Results,
    UnavailableProfile,
)
from botfleet.profiles.configs import detect_passivbot_version, parse_document
from botfleet.profiles.progress import BacktestProgress, OptimizeProgress
from botfleet.profiles.results import adopt_optimize_results, read_backtest, read_optimize
from botfleet.profiles.shape_tables import V7, V8
from botfleet.profiles.shapes import check_shapes
from botfleet.protocol import StopStep

if TYPE_CHECKING:
    from botfleet.db.models import JobKind
    from botfleet.settings import Settings

__all__ = ["PASSIVBOT_STOP_LADDER", "PassivbotProfile", "PassivbotV7", "PassivbotV8", "check_coins"]

_ENV = {"PYTHONUNBUFFERED": "1"}
#: DESIGN.md / INTERFACE.md: SIGINT 10 s -> SIGTERM 5 s -> SIGKILL.
PASSIVBOT_STOP_LADDER = [
    StopStep(signal="SIGINT", timeout=10.0),
    StopStep(signal="SIGTERM", timeout=5.0),
    StopStep(signal="SIGKILL", timeout=5.0),
]


def _kind_name(kind: Any) -> str:
    return str(getattr(kind, "value", kind))


def check_coins(live: dict[str, Any], key: str) -> None:
    """``live.approved_coins``/``live.ignored_coins`` as passivbot takes them: a list of
    coins (both sides), an object with ``long``/``short`` lists, or a string (a path to a
    coins file, comma-separated coins, or ``"all"``); per side a list or a string."""
    value = live.get(key)
    path = f"live.{key}"
    if value is None or isinstance(value, str):
        return
    if isinstance(value, list):
        sides = {"": value}
    elif isinstance(value, dict):
        sides = {f".{side}": coins for side, coins in value.items()}
        unknown = [s for s in value if s not in ("long", "short")]
        if unknown:
            raise ConfigError(f"{path}.{unknown[0]}", "sides are 'long' and 'short' only")
    else:
        raise ConfigError(
            path, 'must be a list of coins, {"long": [...], "short": [...]} or a file path'
        )
    for suffix, coins in sides.items():
        if isinstance(coins, str) or coins is None:
            continue
        if not isinstance(coins, list):
            raise ConfigError(path + suffix, 'must be a list of coins like ["BTC", "ETH"]')
        for i, coin in enumerate(coins):
            if not isinstance(coin, str) or not coin.strip():
                raise ConfigError(f"{path}{suffix}[{i}]", 'each coin must be a name like "BTC"')


class PassivbotProfile(Profile):
    """What v7 and v8 share: config checks, job configs, progress parsers, results."""

    version: str
    other_profile: str
    shapes: dict[str, str]
    supports_jobs = True

    def __init__(self) -> None:
        self.stop_ladder = list(PASSIVBOT_STOP_LADDER)

    def parse_config(self, text: str) -> dict[str, Any]:
        return parse_document(text)

    @abstractmethod
    def _wrong_version(self, seen: str) -> ConfigError:
        """The error for a config of the other passivbot version (``seen``: "v7" or "v8")."""

    def validate_config(
        self, document: dict[str, Any], *, purpose: str | None = None
    ) -> dict[str, Any]:
        if not isinstance(document, dict):
            raise ConfigError("", "the config must be a JSON object {...}")
        seen = detect_passivbot_version(document)
        if seen is not None and seen != self.version:
            raise self._wrong_version(seen)
        bot = document.get("bot")
        if not isinstance(bot, dict):
            raise ConfigError("bot", 'missing: add "bot": {"long": {...}, "short": {...}}')
        for side in ("long", "short"):
            if not isinstance(bot.get(side), dict):
                raise ConfigError(
                    f"bot.{side}", f"missing: add the {side} side's parameters as an object"
                )
        live = document.get("live")
        if not isinstance(live, dict):
            raise ConfigError(
                "live", 'missing: add "live": {"user": "<account in api-keys.json>", ...}'
            )
        needed = {"backtest": ("backtest",), "optimize": ("backtest", "optimize")}.get(
            purpose or "", ()
        )
        for section in needed:
            if not isinstance(document.get(section), dict):
                raise ConfigError(section, f"missing: a {purpose} needs the {section!r} section")
        user = live.get("user")
        if (purpose == "live" or user is not None) and (
            not isinstance(user, str) or not user.strip()
        ):
            raise ConfigError(
                "live.user", 'must name the account in api-keys.json, e.g. "binance_01"'
            )
        check_coins(live, "approved_coins")
        check_coins(live, "ignored_coins")
        check_shapes(document, self.shapes)
        if purpose in ("backtest", "optimize"):
            exchanges = document["backtest"].get("exchanges")
            if exchanges is not None and not (
                exchanges and all(isinstance(e, str) and e for e in exchanges)
            ):
                raise ConfigError("backtest.exchanges", 'must list exchanges, e.g. ["binance"]')
        if purpose == "optimize":
            iters = document["optimize"].get("iters")
            if iters is not None and (not isinstance(iters, int | float) or iters < 1):
                raise ConfigError("optimize.iters", "must be a positive number of evaluations")
        return document

    def prepare_job_config(
        self, kind: JobKind, document: dict[str, Any], *, job_dir: str
    ) -> dict[str, Any]:
        """A copy of ``document`` with ``backtest.base_dir`` set to ``<job_dir>/backtests``
        (absolute), validated for ``kind``. Raises :class:`ConfigError`."""
        config = copy.deepcopy(document)
        self.validate_config(config, purpose=_kind_name(kind))
        config["backtest"]["base_dir"] = str(Path(job_dir).resolve() / "backtests")
        return config

    def progress_parser(self, kind: JobKind, document: dict[str, Any]) -> ProgressParser:
        if _kind_name(kind) == "optimize":
            iters = (document.get("optimize") or {}).get("iters")
            return OptimizeProgress(int(iters) if isinstance(iters, int | float) else None)
        exchanges = (document.get("backtest") or {}).get("exchanges")
        return BacktestProgress(exchanges if isinstance(exchanges, list) else None)

    def read_results(self, kind: JobKind, job_dir: Path) -> Results:
        if _kind_name(kind) == "optimize":
            return read_optimize(Path(job_dir))
        return read_backtest(Path(job_dir))


class PassivbotV8(PassivbotProfile):
    """passivbot v8: ``passivbot live|backtest|optimize CONFIG``; jobs run in the job dir."""

    shared_job_dirs = ("caches",)

    name = "passivbot-v8"
    version = "v8"
    shapes = V8

    def _wrong_version(self, seen: str) -> ConfigError:
        return ConfigError(
            "",
            "this looks like a passivbot v7 config (flat bot.long parameters or config_version "
            "v7.x): use profile passivbot-v7, or migrate it with "
            "`passivbot tool migrate-config-v7 IN OUT`",
        )

    def live_command(
        self,
        *,
        config_path: str,
        simulated: bool,
        settings: Settings,
        argv: list[str] | None = None,
    ) -> Command:
        if simulated:
            return Command(
                ["{python}", "-m", "botfleet.demo", "live", config_path], None, dict(_ENV)
            )
        return Command([settings.passivbot_v8_command, "live", config_path], None, dict(_ENV))

    def job_command(
        self, kind: JobKind, *, config_path: str, job_dir: str, simulated: bool, settings: Settings
    ) -> Command:
        action = _kind_name(kind)
        head = ["{python}", "-m", "botfleet.demo"] if simulated else [settings.passivbot_v8_command]
        return Command([*head, action, config_path], job_dir, dict(_ENV))


class PassivbotV7(PassivbotProfile):
    """passivbot v7: ``python -u src/main.py|backtest.py|optimize.py CONFIG`` from the
    repository root (``BOTFLEET_PASSIVBOT_V7_ROOT``)."""

    name = "passivbot-v7"
    version = "v7"
    shapes = V7

    def _wrong_version(self, seen: str) -> ConfigError:
        return ConfigError(
            "",
            "this looks like a passivbot v8 config (bot.long.risk/strategy sections or "
            "config_version v8.x): use profile passivbot-v8",
        )

    def _root(self, settings: Settings) -> str:
        if settings.passivbot_v7_root is None:
            raise UnavailableProfile(
                "passivbot-v7 needs a passivbot v7 checkout: set BOTFLEET_PASSIVBOT_V7_ROOT "
                "to your passivbot v7 checkout (and BOTFLEET_PASSIVBOT_V7_PYTHON to its python)"
            )
        return str(settings.passivbot_v7_root)

    def _command(
        self, script: str, config_path: str, simulated: bool, settings: Settings
    ) -> Command:
        if simulated:
            return Command(["{python}", "-u", script, config_path], "{demo_v7_root}", dict(_ENV))
        argv = [settings.passivbot_v7_python, "-u", script, config_path]
        return Command(argv, self._root(settings), dict(_ENV))

    def live_command(
        self,
        *,
        config_path: str,
        simulated: bool,
        settings: Settings,
        argv: list[str] | None = None,
    ) -> Command:
        return self._command("src/main.py", config_path, simulated, settings)

    def job_command(
        self, kind: JobKind, *, config_path: str, job_dir: str, simulated: bool, settings: Settings
    ) -> Command:
        script = f"src/{_kind_name(kind)}.py"
        return self._command(script, config_path, simulated, settings)

    def read_results(
        self, kind: JobKind, job_dir: Path, *, roots: list[Path] | None = None
    ) -> Results:
        """As :meth:`PassivbotProfile.read_results`; for optimize, a run still under a v7
        root (``roots``, default: the configured checkout and the stand-in's) is first moved
        into the job dir (see the module docstring)."""
        if _kind_name(kind) == "optimize" and not any(Path(job_dir).glob("optimize_results/*/")):
            if roots is None:
                from botfleet.settings import get_settings

                configured = get_settings().passivbot_v7_root
                roots = [p for p in (configured, _demo_v7_root()) if p is not None]
            adopt_optimize_results(Path(job_dir), roots)
        return super().read_results(kind, job_dir)


def _demo_v7_root() -> Path:
    from botfleet.demo import V7_ROOT

    return Path(V7_ROOT)
