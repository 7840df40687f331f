"""The panel end to end in Chromium: log in, create an instance from a passivbot example
config (simulated), start it, watch it run and its log lines arrive, stop it."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import Panel


def test_create_start_watch_logs_and_stop_an_instance(panel: Panel) -> None:
    page = panel.login()
    panel.shot("overview")
    page.get_by_role("link", name="Instances").first.click()
    page.get_by_role("link", name="New instance").first.click()
    page.get_by_test_id("example").click()
    page.get_by_role("option", name="btc_long.json").click()
    expect(page.get_by_test_id("config-text")).to_have_value(re.compile(r'"live"'))
    page.get_by_test_id("name").fill("e2e-btc-long")
    panel.shot("instance-new")
    page.get_by_test_id("create").click()

    expect(page.get_by_role("heading", name="e2e-btc-long")).to_be_visible()
    page.get_by_test_id("start").click()
    expect(page.get_by_test_id("state").first).to_have_text("RUNNING", timeout=60_000)
    expect(page.get_by_test_id("log-line").first).to_be_visible(timeout=60_000)
    panel.shot("instance-logs")

    page.get_by_role("tab", name="State timeline").click()
    expect(page.get_by_test_id("timeline")).to_contain_text("RUNNING")
    panel.shot("instance-timeline")
    page.get_by_role("tab", name="Config").click()
    expect(page.get_by_test_id("config-editor")).to_have_value(re.compile(r'"bot"'))
    panel.shot("instance-config")

    page.get_by_test_id("stop").click()
    expect(page.get_by_test_id("state").first).to_have_text(re.compile("STOPPED|EXITED"), timeout=60_000)
