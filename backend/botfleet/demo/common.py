"""What the stand-in's commands share: config loading, switches, coins."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

__all__ = [
    "PASSIVBOT_VERSION",
    "config_seed",
    "env_float",
    "env_int",
    "exchange_of",
    "load_config",
    "section",
    "side_coins",
]

PASSIVBOT_VERSION = {"v7": "7.12.0", "v8": "8.1.0"}
_EXCHANGES = ("binance", "bybit", "okx", "bitget", "gateio", "hyperliquid", "kucoin", "defx")


def load_config(path: str) -> dict[str, Any]:
    """Read a config as passivbot does: JSON first, HJSON when that fails. Exits 1 with a
    message on stderr when the file is missing or not an object."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        sys.exit(f"error: cannot read config {path}: {exc}")
    try:
        config = json.loads(text)
    except json.JSONDecodeError:
        import hjson

        try:
            config = hjson.loads(text, object_pairs_hook=dict)
        except hjson.HjsonDecodeError as exc:
            sys.exit(f"error: config {path} is not JSON or HJSON: {exc}")
    if not isinstance(config, dict):
        sys.exit(f"error: config {path} is not an object")
    return config


def section(config: dict[str, Any], name: str) -> dict[str, Any]:
    """``config[name]`` when it is an object, else ``{}``."""
    value = config.get(name)
    return value if isinstance(value, dict) else {}


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    try:
        return float(value) if value.strip() else default
    except ValueError:
        sys.exit(f"error: {name}={value!r} is not a number")


def env_int(name: str, default: int) -> int:
    return int(env_float(name, default))


def config_seed(config: dict[str, Any]) -> int:
    """A seed from BOTFLEET_DEMO_SEED or the config's content (same config, same market)."""
    if os.environ.get("BOTFLEET_DEMO_SEED", "").strip():
        return env_int("BOTFLEET_DEMO_SEED", 0)
    import zlib

    return zlib.crc32(json.dumps(config, sort_keys=True, default=str).encode())


def exchange_of(user: str) -> str:
    """The exchange of an api-keys account, guessed from its name (``bybit_01`` -> bybit)."""
    head = user.lower().split("_", 1)[0]
    return head if head in _EXCHANGES else "binance"


def _coin(symbol: str) -> str:
    return symbol.split("/", 1)[0].strip().upper()


def side_coins(live: dict[str, Any], key: str = "approved_coins") -> dict[str, list[str]]:
    """``live.approved_coins`` (list, per-side object or string) as ``{"long": [...],
    "short": [...]}`` of bare coin names (``BTC/USDT:USDT`` -> ``BTC``); a file path or
    ``"all"`` gives empty lists (the stand-in reads no coin files)."""
    value = live.get(key)
    out: dict[str, list[str]] = {"long": [], "short": []}
    if isinstance(value, list):
        coins = [_coin(c) for c in value if isinstance(c, str)]
        return {"long": list(coins), "short": list(coins)}
    if isinstance(value, str) and "," in value:
        coins = [_coin(c) for c in value.split(",") if c.strip()]
        return {"long": list(coins), "short": list(coins)}
    if isinstance(value, dict):
        for side in out:
            listed = value.get(side)
            if isinstance(listed, list):
                out[side] = [_coin(c) for c in listed if isinstance(c, str)]
    return out
