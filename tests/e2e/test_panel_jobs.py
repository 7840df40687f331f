"""Jobs in the panel: queue an optimize from an instance's config, watch its progress move,
cancel it; the jobs queue and a finished backtest's results page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Panel

# a real stack and Chromium on a shared 2-core machine: deadlines, not speed, are tested
pytestmark = pytest.mark.timeout(400)


def test_optimize_progress_moves_then_cancel(panel: Panel) -> None:
    instance_id = str(panel.create_instance("e2e-optimize-source")["id"])
    panel.login()
    page = panel.go(f"/jobs?instance={instance_id}")
    page.get_by_test_id("job-kind").get_by_text("Optimize").click()
    page.get_by_test_id("job-iters").fill("200000")
    page.get_by_test_id("job-submit").click()
    expect(page.get_by_test_id("job-title")).to_be_visible()  # the job's own page (not the list)

    expect(page.get_by_test_id("job-status")).to_have_text("running", timeout=60_000)
    progress = page.get_by_test_id("job-progress")
    expect(progress).not_to_have_attribute("data-value", "0", timeout=90_000)
    first = progress.get_attribute("data-value") or ""
    expect(progress).not_to_have_attribute("data-value", first, timeout=90_000)
    panel.shot("job-running")
    page.get_by_test_id("job-cancel").click()
    expect(page.get_by_test_id("job-status")).to_have_text("cancelled", timeout=60_000)

    page = panel.go("/jobs")
    expect(page.get_by_test_id("job-row").first).to_contain_text(re.compile("cancelled"))
    panel.shot("jobs")


def test_backtest_results_show_metrics(panel: Panel) -> None:
    instance_id = str(panel.create_instance("e2e-backtest-source")["id"])
    panel.login()
    page = panel.go(f"/jobs?instance={instance_id}")
    page.get_by_test_id("job-submit").click()
    expect(page.get_by_test_id("job-title")).to_be_visible()  # the job's own page (not the list)
    expect(page.get_by_test_id("job-status")).to_have_text("succeeded", timeout=120_000)
    expect(page.get_by_test_id("metrics")).to_contain_text("adg")
    equity = page.get_by_test_id("equity-chart")
    expect(equity.locator("path.recharts-line-curve")).to_have_count(2)  # balance and equity
    expect(equity).to_have_attribute("data-points", "200")  # the stand-in's whole series
    expect(page.get_by_role("img", name=re.compile("balance_and_equity.png"))).to_be_visible()
    panel.shot("job-backtest-results")

    first = page.url.rsplit("/", 1)[-1]
    page = panel.go(f"/jobs?instance={instance_id}")
    page.get_by_test_id("job-submit").click()
    expect(page.get_by_test_id("job-title")).to_be_visible()  # the new job's own page
    expect(page.get_by_test_id("job-status")).to_have_text("succeeded", timeout=120_000)
    second = page.url.rsplit("/", 1)[-1]
    page = panel.go("/jobs")
    page.get_by_role("checkbox", name=f"Compare {first}").check()
    page.get_by_role("checkbox", name=f"Compare {second}").check()
    compare = page.get_by_test_id("compare")
    expect(compare).to_contain_text("adg")
    expect(compare.get_by_test_id("equity-chart")).to_have_count(2)
    expect(compare.get_by_test_id("equity-chart").nth(1).locator("path.recharts-line-curve")).to_have_count(2)
    panel.shot("jobs-compare")
