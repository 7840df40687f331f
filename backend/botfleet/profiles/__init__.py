"""Profiles: how to run one kind of bot (DESIGN.md). Built in: ``passivbot-v7``,
``passivbot-v8`` and ``custom``.

>>> profile = get_profile("passivbot-v8")
>>> document = profile.validate_config(profile.parse_config(text), purpose="live")
>>> command = profile.live_command(config_path="config.json", simulated=False, settings=s)

Importable without the server extras (no litestar, no arq).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from botfleet.profiles.base import (
    Command,
    ConfigError,
    Profile,
    ProgressParser,
    ProgressUpdate,
    Results,
    UnavailableProfile,
    UnknownProfile,
)
from botfleet.profiles.configs import apply_overrides, detect_passivbot_version, parse_document
from botfleet.profiles.custom import CustomProfile
from botfleet.profiles.passivbot import PASSIVBOT_STOP_LADDER, PassivbotV7, PassivbotV8
from botfleet.profiles.progress import BacktestProgress, OptimizeProgress

__all__ = [
    "PASSIVBOT_STOP_LADDER",
    "PROFILES",
    "BacktestProgress",
    "Command",
    "ConfigError",
    "CustomProfile",
    "OptimizeProgress",
    "PassivbotV7",
    "PassivbotV8",
    "Profile",
    "ProgressParser",
    "ProgressUpdate",
    "Results",
    "UnavailableProfile",
    "UnknownProfile",
    "apply_overrides",
    "detect_passivbot_version",
    "get_profile",
    "parse_document",
]

#: The built-in profiles by name (read-only).
PROFILES: Mapping[str, Profile] = MappingProxyType(
    {p.name: p for p in (PassivbotV7(), PassivbotV8(), CustomProfile())}
)


def get_profile(name: str) -> Profile:
    """The profile called ``name``. Raises :class:`UnknownProfile` listing the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise UnknownProfile(name, sorted(PROFILES)) from None
