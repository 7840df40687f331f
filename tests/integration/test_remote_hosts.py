"""Hosts over SSH against a real api process and real OpenSSH sshds (tests/integration/sshd.py):
CRUD, secrets never returned, host key pinning and a changed key refused, the host test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Stack
from tests.integration.sshd import SSHD


@pytest.fixture
def vps(tmp_path: Path) -> Iterator[SSHD]:
    server = SSHD(tmp_path / "vps").start()
    try:
        yield server
    finally:
        server.stop()


def host_body(name: str, server: SSHD, base: Path, **extra: object) -> dict[str, object]:
    return {"name": name, "address": "127.0.0.1", "port": server.port, "username": server.user,
            "ssh_key": server.client_private, "base_dir": str(base), **extra}


async def events_of(api: httpx.AsyncClient, kind: str) -> list[dict[str, object]]:
    r = await api.get("/api/v1/events/history", params={"kind": kind, "limit": 100})
    assert r.status_code == 200, r.text
    body = r.json()
    return [e for e in (body["items"] if isinstance(body, dict) else body) if e["kind"] == kind]


async def test_hosts_crud_never_returns_secrets_and_local_stays(api: httpx.AsyncClient, vps: SSHD,
                                                                tmp_path: Path) -> None:
    r = await api.post("/api/v1/hosts", json=host_body("vps-1", vps, tmp_path / "b", labels={"dc": "fra"}))
    assert r.status_code == 201, r.text
    host = r.json()
    assert host["has_ssh_key"] is True and host["host_key_fingerprint"] is None
    assert vps.client_private not in r.text and "ssh_key\"" not in r.text.replace("has_ssh_key", "")
    listing = (await api.get("/api/v1/hosts")).json()
    assert {h["name"] for h in listing} == {"local", "vps-1"}
    assert vps.client_private.splitlines()[1] not in (await api.get("/api/v1/hosts/vps-1")).text

    assert (await api.post("/api/v1/hosts", json=host_body("vps-1", vps, tmp_path / "b"))).status_code == 409
    bad = await api.post("/api/v1/hosts", json=host_body("bad name;$(x)", vps, tmp_path / "b"))
    assert bad.status_code == 422 and bad.json()["key"] == "name"
    nokey = await api.post("/api/v1/hosts", json={**host_body("k", vps, tmp_path / "b"), "ssh_key": "nope"})
    assert nokey.status_code == 422 and nokey.json()["key"] == "ssh_key"
    dots = await api.post("/api/v1/hosts", json=host_body("d", vps, Path("../etc")))
    assert dots.status_code == 422 and dots.json()["key"] == "base_dir"

    r = await api.patch("/api/v1/hosts/vps-1", json={"labels": {"dc": "ams"}, "port": vps.port})
    assert r.status_code == 200 and r.json()["labels"] == {"dc": "ams"}
    local = await api.delete("/api/v1/hosts/local")
    assert local.status_code == 409 and "always exists" in local.json()["detail"]
    assert (await api.delete("/api/v1/hosts/vps-1")).status_code == 204
    assert (await api.get("/api/v1/hosts/vps-1")).status_code == 404


async def test_host_key_is_pinned_and_a_changed_key_is_refused(api: httpx.AsyncClient, vps: SSHD,
                                                               tmp_path: Path) -> None:
    assert (await api.post("/api/v1/hosts", json=host_body("vps-1", vps, tmp_path / "b"))).status_code == 201
    not_accepted = await api.post("/api/v1/hosts/vps-1/test")
    assert not_accepted.status_code == 409 and "accept" in not_accepted.json()["detail"]

    scan = (await api.post("/api/v1/hosts/vps-1/scan")).json()
    assert scan["fingerprint"] == vps.fingerprint and scan["accepted"] is None and scan["matches"] is None
    wrong = await api.post("/api/v1/hosts/vps-1/accept", json={"fingerprint": "SHA256:" + "A" * 43})
    assert wrong.status_code == 409
    assert (await api.get("/api/v1/hosts/vps-1")).json()["host_key_fingerprint"] is None
    ok = await api.post("/api/v1/hosts/vps-1/accept", json={"fingerprint": scan["fingerprint"]})
    assert ok.status_code == 200 and ok.json()["host_key_fingerprint"] == vps.fingerprint

    report = await api.post("/api/v1/hosts/vps-1/test")
    assert report.status_code == 200, report.text
    facts = report.json()
    assert facts["python"].startswith("3.") and facts["disk_free"] > 0 and facts["memory_total"] > 0
    assert facts["systemd_user"] in (True, False) and facts["agent_installed"] is False
    assert facts["agent_running"] is None and facts["os"]

    vps.rekey()  # a reinstalled server, or someone in the middle
    refused = await api.post("/api/v1/hosts/vps-1/test")
    assert refused.status_code == 409, refused.text
    assert "not the accepted one" in refused.json()["detail"]
    mismatches = await events_of(api, "host.key_mismatch")
    assert mismatches and mismatches[-1]["data"]["accepted"] == scan["fingerprint"]
    rescan = (await api.post("/api/v1/hosts/vps-1/scan")).json()
    assert rescan["matches"] is False and rescan["fingerprint"] == vps.fingerprint


async def test_unreachable_host_is_a_clear_502(api: httpx.AsyncClient, stack: Stack, tmp_path: Path) -> None:
    dead = SSHD(tmp_path / "dead")  # never started: nothing listens on its port
    assert (await api.post("/api/v1/hosts", json=host_body("gone", dead, tmp_path / "b"))).status_code == 201
    r = await api.post("/api/v1/hosts/gone/scan")
    assert r.status_code == 502 and "cannot reach" in r.json()["detail"]
