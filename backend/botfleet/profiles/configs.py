"""Config documents: parsing (JSON or HJSON), dotted-key overrides, passivbot version sniffing.

passivbot reads its configs with ``json`` and falls back to ``hjson``
(passivbot ``src/config/load.py``); so does :func:`parse_document`.
"""

from __future__ import annotations

import copy
import difflib
import json
from typing import Any

import hjson

from botfleet.profiles.base import ConfigError
from botfleet.profiles.shapes import kind_of

__all__ = ["apply_overrides", "detect_passivbot_version", "parse_document"]

#: v8 nests each position side's parameters in these sections (bot.long.risk.n_positions);
#: v7 keeps them flat (bot.long.n_positions). Taken from the example configs of both.
V8_BOT_SECTIONS = frozenset({"forager", "hsl", "risk", "strategy", "unstuck"})
V7_FLAT_MARKERS = frozenset(
    {
        "n_positions",
        "total_wallet_exposure_limit",
        "ema_span_0",
        "ema_span_1",
        "entry_initial_qty_pct",
        "entry_initial_ema_dist",
        "close_grid_markup_start",
        "close_grid_qty_pct",
        "unstuck_threshold",
        "unstuck_close_pct",
        "filter_volume_ema_span",
    }
)


def parse_document(text: str) -> dict[str, Any]:
    """Parse config text: JSON first, HJSON (comments, unquoted keys and strings, trailing
    commas) when JSON fails. Returns a plain ``dict``.

    Raises :class:`ConfigError` (key ``""``) with ``line L column C`` of a syntax error, or
    when the top level is not an object."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        try:
            document = hjson.loads(text, object_pairs_hook=dict)
        except hjson.HjsonDecodeError as exc:
            raise ConfigError(
                "",
                f"not valid JSON or HJSON: {exc.msg} at line {exc.lineno} column {exc.colno}: "
                "fix the syntax there",
            ) from None
    if not isinstance(document, dict):
        raise ConfigError(
            "", f"the config must be a JSON object {{...}}, not {type(document).__name__}"
        )
    return document


def detect_passivbot_version(document: dict[str, Any]) -> str | None:
    """``"v7"``, ``"v8"`` or ``None`` (cannot tell).

    ``config_version`` decides when present (v7.12 writes ``"v7.12.0"``, v8 ``"v8.2.0"``);
    otherwise the shape of ``bot.long``/``bot.short``: v8 nests parameters in sections
    (``risk``, ``strategy``, ``forager``, ``hsl``, ``unstuck``), v7 keeps them flat."""
    version = document.get("config_version")
    if isinstance(version, str):
        major = version.strip().lower().removeprefix("v").split(".", 1)[0]
        if major in ("7", "8"):
            return f"v{major}"
    bot = document.get("bot")
    if not isinstance(bot, dict):
        return None
    sides = [bot[s] for s in ("long", "short") if isinstance(bot.get(s), dict)]
    if any(isinstance(side.get(k), dict) for side in sides for k in V8_BOT_SECTIONS):
        return "v8"
    if any(k in side for side in sides for k in V7_FLAT_MARKERS):
        return "v7"
    return None


def _same_kind(old: Any, new: Any) -> bool:
    if old is None or new is None:
        return True
    old_kind, new_kind = kind_of(old), kind_of(new)
    return old_kind == new_kind or (old_kind == "b" and new_kind == "n" and new in (0, 1))


def _paths(node: Any, prefix: str = "") -> list[str]:
    if not isinstance(node, dict):
        return []
    out: list[str] = []
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        out.append(path)
        out.extend(_paths(value, path))
    return out


def _merge(target: dict[str, Any], key: str, value: Any, root: dict[str, Any]) -> None:
    parts = key.split(".")
    node = target
    for depth, part in enumerate(parts):
        path = ".".join(parts[: depth + 1])
        if not isinstance(node, dict) or part not in node:
            close = difflib.get_close_matches(path, _paths(root), n=1)
            hint = f": did you mean {close[0]!r}?" if close else ": check the spelling"
            raise ConfigError(path, f"no such key in the config{hint}")
        if depth < len(parts) - 1:
            node = node[part]
    last, old = parts[-1], node[parts[-1]]
    if isinstance(old, dict) and isinstance(value, dict):
        for sub_key, sub_value in value.items():
            _merge(target, f"{key}.{sub_key}", sub_value, root)
        return
    if not _same_kind(old, value):
        raise ConfigError(
            key,
            f"override {json.dumps(value)[:60]} does not match the config's "
            f"{json.dumps(old)[:60]}: give a value of the same type",
        )
    node[last] = copy.deepcopy(value)


def apply_overrides(document: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of ``document`` with ``overrides`` deep-merged in.

    Keys are dotted paths (``{"backtest.start_date": "2024-01-01", "optimize.iters": 100}``)
    or nested objects (``{"backtest": {"start_date": ...}}``). Each path must already exist
    in the document, and a new value must have the kind of the old one (numbers stay
    numbers; anything may replace or become null). Raises :class:`ConfigError` naming the
    path, with the nearest existing key as a hint."""
    result = copy.deepcopy(document)
    for key, value in overrides.items():
        if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
            raise ConfigError(str(key), "override keys are dotted paths like backtest.start_date")
        _merge(result, key, value, result)
    return result
