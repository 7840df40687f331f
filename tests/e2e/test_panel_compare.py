"""Comparing two optimize results in the panel: two optimizations of the stand-in with a few
iterations succeed, the user ticks both in the jobs queue and sees both Pareto fronts in one
chart (one series each, told apart by marker shape as well as colour) and the members side by
side; in the light and the dark theme."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Panel

# a real stack and Chromium on a shared 2-core machine: deadlines, not speed, are tested
pytestmark = pytest.mark.timeout(400)


def _succeeded_optimize(panel: Panel, instance_id: str, iters: int) -> dict:
    """Queue an optimize of the instance's config and wait (up to 180 s) for it to succeed."""
    with panel.api() as api:
        r = api.post("/api/v1/jobs", json={"kind": "optimize", "instance_id": instance_id,
                                           "overrides": {"optimize.iters": iters}})
        assert r.status_code == 201, r.text
        job = r.json()
        deadline = time.monotonic() + 180
        while job["status"] not in ("succeeded", "failed", "cancelled"):
            assert time.monotonic() < deadline, f"optimize {job['id']} still {job['status']} after 180 s"
            time.sleep(1)
            job = api.get(f"/api/v1/jobs/{job['id']}").json()
        assert job["status"] == "succeeded", job
        return job


def test_compare_two_optimizations_shows_both_pareto_fronts(panel: Panel) -> None:
    instance_id = str(panel.create_instance("e2e-compare-optimize")["id"])
    first = _succeeded_optimize(panel, instance_id, 2000)
    second = _succeeded_optimize(panel, instance_id, 4000)
    sizes = [len(j["result"]["summary"]["pareto"]) for j in (first, second)]
    assert all(sizes), f"the stand-in's optimizations found no Pareto member: {sizes}"

    panel.login()
    page = panel.go("/jobs")
    page.get_by_role("checkbox", name=f"Compare {first['id']}").check()
    page.get_by_role("checkbox", name=f"Compare {second['id']}").check()
    compare = page.get_by_test_id("compare")
    expect(compare.get_by_role("heading", name="Compare optimizations")).to_be_visible()
    chart = compare.get_by_role("img", name=f"Pareto fronts of {first['id'][:8]} and {second['id'][:8]}", exact=False)
    expect(chart).to_be_visible()
    expect(chart).to_have_attribute("data-points", f"{sizes[0]},{sizes[1]}")
    expect(chart.locator(".recharts-scatter")).to_have_count(2)
    # the legend names each job with its marker: circles for the first, triangles for the second
    expect(chart.locator(".recharts-legend-wrapper")).to_contain_text(f"{first['id'][:8]} (circles, {sizes[0]})")
    expect(chart.locator(".recharts-legend-wrapper")).to_contain_text(f"{second['id'][:8]} (triangles, {sizes[1]})")
    expect(chart.locator(".recharts-scatter").nth(0).locator("path.recharts-symbols")).to_have_count(sizes[0])
    expect(chart.locator(".recharts-scatter").nth(1).locator("path.recharts-symbols")).to_have_count(sizes[1])
    for i, size in enumerate(sizes):
        expect(compare.get_by_test_id(f"pareto-members-{i}").get_by_role("row")).to_have_count(size + 1)
    first_member = first["result"]["summary"]["pareto"][0]["hash"][:12]
    expect(compare.get_by_test_id("pareto-members-0").get_by_role("link", name=first_member)).to_be_visible()
    panel.shot("jobs-compare-optimize")

    page.get_by_role("button", name="Switch to dark theme").click()
    expect(page.get_by_role("button", name="Switch to light theme")).to_be_visible()
    expect(chart.locator(".recharts-scatter")).to_have_count(2)
    panel.shot("jobs-compare-optimize-dark")
