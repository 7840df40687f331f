"""Type shapes of passivbot config keys, learned from passivbot's own example configs.

A *shape table* maps a dotted key path to the JSON kinds passivbot's examples use there.
``*`` in a path stands for a position side (``long``/``short``). Kind letters:
``n`` number (int or float, never a bool), ``b`` bool (or an int, which passivbot coerces),
``s`` string, ``l`` list, ``d`` object, ``z`` null.

Only keys present in a table are checked: unknown keys always pass (passivbot accepts many
optional keys and adds new ones every release). The tables live in
:mod:`botfleet.profiles.shape_tables` and are regenerated from the example configs with::

    python -m botfleet.profiles.shapes tests/data/passivbot/v7 > v7.txt
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from botfleet.profiles.base import ConfigError

__all__ = ["FREE_FORM", "SECTIONS", "check_shapes", "kind_of", "learn_shapes"]

#: Top-level sections whose keys are checked.
SECTIONS = ("backtest", "bot", "live", "logging", "monitor", "optimize")

#: Paths whose children are free-form (coin names, metric names, bounds): only the node's
#: own kind is checked, never its children.
FREE_FORM = frozenset(
    {
        "backtest.aggregate",
        "backtest.coin_sources",
        "backtest.market_settings_sources",
        "backtest.reducer",
        "backtest.suite.aggregate",
        "live.approved_coins",
        "live.ignored_coins",
        "optimize.bounds",
        "optimize.fixed_runtime_overrides",
        "optimize.limits",
        "optimize.pymoo",
        "optimize.scoring",
    }
)

_NAMES = {
    "n": "a number",
    "b": "true or false",
    "s": "a string",
    "l": "a list",
    "d": "an object",
    "z": "null",
}


def kind_of(value: Any) -> str:
    """The kind letter of a JSON value (see the module docstring)."""
    if value is None:
        return "z"
    if isinstance(value, bool):
        return "b"
    if isinstance(value, int | float):
        return "n"
    if isinstance(value, str):
        return "s"
    if isinstance(value, list):
        return "l"
    if isinstance(value, dict):
        return "d"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _pattern(path: str) -> str:
    parts = path.split(".")
    if len(parts) > 1 and parts[0] == "bot" and parts[1] in ("long", "short"):
        parts[1] = "*"
    return ".".join(parts)


def _walk(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    yield path, node
    if isinstance(node, dict) and _pattern(path) not in FREE_FORM:
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")


def _accepts(kinds: str, value: Any) -> bool:
    kind = kind_of(value)
    if kind in kinds:
        return True
    # passivbot coerces 0/1 to bools; a bool is never accepted as a number.
    return kind == "n" and "b" in kinds and isinstance(value, int)


def check_shapes(document: Mapping[str, Any], table: Mapping[str, str]) -> None:
    """Check every key of ``document`` found in ``table``; raise :class:`ConfigError` naming
    the first key whose value has a kind passivbot does not use there."""
    for section in SECTIONS:
        if section not in document:
            continue
        for path, value in _walk(document[section], section):
            kinds = table.get(_pattern(path))
            if kinds is None or _accepts(kinds, value):
                continue
            wanted = " or ".join(_NAMES[k] for k in kinds)
            raise ConfigError(
                path, f"must be {wanted}, got {json.dumps(value)[:60]}: fix the value type"
            )


def learn_shapes(documents: list[dict[str, Any]]) -> dict[str, str]:
    """Build a shape table from example configs (paths seen only as null are left out)."""
    seen: dict[str, set[str]] = {}
    for document in documents:
        for section in SECTIONS:
            if section in document:
                for path, value in _walk(document[section], section):
                    seen.setdefault(_pattern(path), set()).add(kind_of(value))
    order = "nbsldz"
    return {
        path: "".join(sorted(kinds, key=order.index))
        for path, kinds in sorted(seen.items())
        if kinds != {"z"}
    }


def _main(directory: str) -> None:
    docs = [json.loads(p.read_text()) for p in sorted(Path(directory).glob("*.json"))]
    for path, kinds in learn_shapes(docs).items():
        print(f'    "{path}": "{kinds}",')


if __name__ == "__main__":
    _main(sys.argv[1])
