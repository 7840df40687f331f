"""``botfleet demo``: fill a running botfleet with simulated bots and jobs, over its REST API.

It creates, from passivbot's own example configs shipped beside this module
(``demo_configs/``, public domain, licence file beside them):
- three simulated ``passivbot-v8`` instances on host ``local`` (``demo-btc-long``,
  ``demo-majors-long``, ``demo-xmr-long-short``) and starts them;
- one simulated backtest and one simulated optimize job.

Idempotent: an instance whose name exists (409) is reused; job ids are remembered in a state
file (``HOME/demo.json``) and reused while the api still knows them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import httpx

__all__ = ["DEMO_INSTANCES", "DemoError", "DemoFleet", "DemoItem", "load_demo_config", "seed_demo"]

#: instance name -> example config file in demo_configs/
DEMO_INSTANCES = {
    "demo-btc-long": "btc_long.json",
    "demo-majors-long": "BTC_ETH_XRP_SOL_ADA_long.json",
    "demo-xmr-long-short": "xmr_long_short.json",
}
PROFILE = "passivbot-v8"
#: Dotted-key overrides so the simulated optimize ends in minutes (the example asks 300 000).
OPTIMIZE_OVERRIDES = {"optimize.iters": 2000}


class DemoError(RuntimeError):
    """The api refused or could not be reached; the message is one line for the user."""


@dataclass(frozen=True)
class DemoItem:
    """One thing the demo made (or found): ``kind`` is ``instance``, ``backtest`` or
    ``optimize``; ``watch`` the SSE URL to follow it."""

    kind: str
    name: str
    id: str
    created: bool
    watch: str


@dataclass(frozen=True)
class DemoFleet:
    url: str
    items: list[DemoItem]


def load_demo_config(filename: str) -> dict[str, Any]:
    """A shipped example config document (parsed JSON)."""
    text = resources.files("botfleet.fleet").joinpath("demo_configs", filename).read_text()
    return json.loads(text)  # type: ignore[no-any-return]


def seed_demo(url: str, token: str, state_file: Path, *, timeout: float = 30.0) -> DemoFleet:
    """Create (or find) the demo instances and jobs on the api at ``url``.

    Raises:
        DemoError: the api is unreachable, refuses the token, or answers an error.
    """
    base = url.rstrip("/")
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=timeout) as api:
            items = [_instance(api, base, name, file) for name, file in DEMO_INSTANCES.items()]
            items += _jobs(api, base, state_file)
    except httpx.TransportError as exc:
        raise DemoError(
            f"botfleet api is not reachable at {base} ({exc}): start it with `botfleet up`"
        ) from None
    return DemoFleet(url=base, items=items)


def _instance(api: httpx.Client, base: str, name: str, filename: str) -> DemoItem:
    body = {
        "name": name, "profile": PROFILE, "config": load_demo_config(filename),
        "simulated": True, "host": "local", "labels": {"demo": "true"},
    }
    response = api.post("/api/v1/instances", json=body)
    created = response.status_code != 409
    if created:
        instance = _ok(response)
    else:
        found = _ok(api.get("/api/v1/instances", params={"q": name, "limit": 100}))
        matches = [item for item in found.get("items", []) if item.get("name") == name]
        if not matches:
            raise DemoError(f"instance {name!r} exists but the list does not show it")
        instance = matches[0]
    start = api.post(f"/api/v1/instances/{instance['id']}/start")
    if start.status_code != 409:  # 409: it runs already
        _ok(start)
    return DemoItem("instance", name, instance["id"], created,
                    f"{base}/api/v1/instances/{instance['id']}/logs")


def _jobs(api: httpx.Client, base: str, state_file: Path) -> list[DemoItem]:
    try:
        remembered: dict[str, dict[str, str]] = json.loads(state_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        remembered = {}
    known = remembered.get(base, {})
    items = []
    for kind, overrides in (("backtest", {}), ("optimize", OPTIMIZE_OVERRIDES)):
        job_id = known.get(kind)
        created = job_id is None or api.get(f"/api/v1/jobs/{job_id}").status_code == 404
        if created:
            body = {"kind": kind, "profile": PROFILE, "config": load_demo_config("btc_long.json"),
                    "overrides": overrides, "simulated": True}
            job_id = _ok(api.post("/api/v1/jobs", json=body))["id"]
            known[kind] = job_id
        items.append(DemoItem(kind, f"demo {kind}", str(job_id), created,
                              f"{base}/api/v1/jobs/{job_id}/events"))
    remembered[base] = known
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps(remembered, indent=2) + "\n")
    return items


def _ok(response: httpx.Response) -> dict[str, Any]:
    if response.status_code == 401:
        raise DemoError("the api refused the token: pass --token or check HOME/cli.token")
    if response.is_error:
        try:
            detail = response.json().get("detail") or response.text
        except ValueError:
            detail = response.text
        request = response.request
        raise DemoError(f"{request.method} {request.url.path} failed "
                        f"({response.status_code}): {detail}")
    return response.json()  # type: ignore[no-any-return]
