"""The fleet in the panel: 50 running instances stopped at once from the instances table with
a result per row, their states arriving live; hosts, settings and the dark theme render."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Panel

# a real stack and Chromium on a shared 2-core machine: deadlines, not speed, are tested
pytestmark = pytest.mark.timeout(400)

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "passivbot" / "v8" / "btc_long.json"
COUNT = 50


def _running(panel: Panel, label: str) -> int:
    with panel.api() as api:
        r = api.get("/api/v1/instances", params={"label": label, "state": "RUNNING", "limit": 1000})
        return int(r.json()["total"])


def test_bulk_stop_50_instances_with_per_row_results(panel: Panel) -> None:
    config = EXAMPLE.read_text()
    with panel.api() as api:
        for n in range(COUNT):
            r = api.post("/api/v1/instances", json={"name": f"bulk-{n:02d}", "profile": "passivbot-v8", "config_text": config,
                                                    "simulated": True, "labels": {"batch": "bulk"}})
            assert r.status_code == 201, r.text
            assert api.post(f"/api/v1/instances/{r.json()['id']}/start").status_code == 202
    deadline = time.monotonic() + 180
    while _running(panel, "batch=bulk") < COUNT:
        assert time.monotonic() < deadline, f"only {_running(panel, 'batch=bulk')} of {COUNT} instances reached RUNNING"
        time.sleep(0.5)

    page = panel.login()
    panel.shot("overview")
    page = panel.go("/instances?label=batch%3Dbulk")
    expect(page.get_by_test_id("counts")).to_contain_text(f"{COUNT} shown")
    panel.shot("instances")
    page.get_by_test_id("select-all").click()
    expect(page.get_by_test_id("counts")).to_contain_text(f"{COUNT} selected")
    page.get_by_test_id("bulk-stop").click()
    expect(page.get_by_test_id("bulk-summary")).to_have_text(f"{COUNT} done, 0 failed, 0 pending", timeout=120_000)
    expect(page.get_by_test_id("row-result").first).to_contain_text("accepted")
    panel.shot("instances-bulk-stop")

    # the states arrive live (events SSE), without reloading the page
    page.get_by_test_id("filter-state").click()
    page.get_by_role("option", name="RUNNING", exact=True).click()
    expect(page.get_by_test_id("counts")).to_contain_text("0 shown of", timeout=120_000)
    assert _running(panel, "batch=bulk") == 0


def test_hosts_settings_and_dark_theme_render(panel: Panel) -> None:
    page = panel.login()
    page = panel.go("/hosts")
    expect(page.get_by_test_id("host-local")).to_contain_text("online", timeout=60_000)
    panel.shot("hosts")
    page.get_by_test_id("host-local").get_by_role("link", name="local").click()
    expect(page.get_by_role("heading", name="Host local")).to_be_visible()
    expect(page.get_by_test_id("host-chart")).to_be_visible()
    panel.shot("host")
    page = panel.go("/settings")
    page.get_by_role("textbox", name="Token name").fill("e2e-script")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_test_id("new-token")).to_have_text(re.compile(r"\S{20,}"))
    page.get_by_role("button", name=re.compile("Switch to dark theme")).click()
    expect(page.locator("html")).to_have_attribute("data-mantine-color-scheme", "dark")
    panel.go("/")
    expect(page.get_by_role("heading", name="Fleet overview")).to_be_visible()
    page.mouse.move(600, 700)  # no tooltip in the picture
    panel.shot("overview-dark")
