"""The ``custom`` profile: any program, started from a user's argv list (never a shell).

The config is any JSON object; the agent writes it to the instance dir and ``{config}`` in
any argv element is replaced by its path. No jobs. Stop ladder: SIGTERM 10 s -> SIGKILL
(what most programs handle, unlike passivbot's SIGINT).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botfleet.profiles.base import Command, ConfigError, Profile
from botfleet.profiles.configs import parse_document
from botfleet.protocol import StopStep

if TYPE_CHECKING:
    from botfleet.settings import Settings

__all__ = ["CustomProfile"]


class CustomProfile(Profile):
    """Runs ``argv`` as given: shell metacharacters stay literal (no shell sees them)."""

    name = "custom"
    supports_jobs = False

    def __init__(self) -> None:
        self.stop_ladder = [
            StopStep(signal="SIGTERM", timeout=10.0),
            StopStep(signal="SIGKILL", timeout=5.0),
        ]

    def parse_config(self, text: str) -> dict[str, Any]:
        return parse_document(text)

    def validate_config(
        self, document: dict[str, Any], *, purpose: str | None = None
    ) -> dict[str, Any]:
        if not isinstance(document, dict):
            raise ConfigError("", "the config must be a JSON object {...}")
        if purpose not in (None, "live"):
            raise ConfigError("", f"profile custom runs no {purpose} jobs")
        return document

    def live_command(
        self,
        *,
        config_path: str,
        simulated: bool,
        settings: Settings,
        argv: list[str] | None = None,
    ) -> Command:
        """``argv`` with ``{config}`` replaced by ``config_path`` in every element.
        ``simulated`` changes nothing. Raises :class:`ConfigError` (key ``argv``) for a
        missing or empty argv or an element that is not a non-empty string."""
        if not isinstance(argv, list) or not argv:
            raise ConfigError("argv", 'a custom profile needs argv, e.g. ["./mybot", "{config}"]')
        for i, word in enumerate(argv):
            if not isinstance(word, str) or not word:
                raise ConfigError(f"argv[{i}]", "each argv element must be a non-empty string")
        return Command([w.replace("{config}", config_path) for w in argv], None, {})
