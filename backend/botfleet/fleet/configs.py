"""Comparing config versions (``/api/v1/instances/{id}/configs/diff``)."""

from __future__ import annotations

import difflib
import json
from typing import Any

from botfleet.db.models import ConfigVersion

__all__ = ["config_diff"]


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def config_diff(old: ConfigVersion, new: ConfigVersion) -> dict[str, Any]:
    """Differences between two versions: ``changes`` (one per dotted key: ``key``, ``from``,
    ``to``; a missing side is absent) and a unified ``diff`` of the sorted JSON texts."""
    a, b = _flatten(old.document), _flatten(new.document)
    changes = []
    for key in sorted(a.keys() | b.keys()):
        if a.get(key, ...) != b.get(key, ...):
            change: dict[str, Any] = {"key": key}
            if key in a:
                change["from"] = a[key]
            if key in b:
                change["to"] = b[key]
            changes.append(change)
    text_a = json.dumps(old.document, indent=2, sort_keys=True).splitlines(keepends=True)
    text_b = json.dumps(new.document, indent=2, sort_keys=True).splitlines(keepends=True)
    diff = "".join(difflib.unified_diff(text_a, text_b, f"v{old.version}", f"v{new.version}"))
    return {"from": old.version, "to": new.version, "changes": changes, "diff": diff}
