"""Adding a VPS from the panel: a real sshd on loopback stands in for it. Address and key →
scan → confirm the fingerprint → test → provision (progress shown) → a bot started there."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Panel
from tests.integration.sshd import SSHD
from tests.integration.test_remote_provision import _kill_under, wheelhouse  # noqa: F401 - fixture

# a real stack and Chromium on a shared 2-core machine: deadlines, not speed, are tested
pytestmark = pytest.mark.timeout(900)

__all__: list[str] = []


@pytest.fixture
def vps(tmp_path: Path) -> Iterator[SSHD]:
    server = SSHD(tmp_path / "sshd").start()
    try:
        yield server
    finally:
        server.stop()
        _kill_under(tmp_path)


def test_host_page_charts_the_agents_metrics_live(panel: Panel) -> None:
    panel.login()
    page = panel.go("/hosts/local")
    for chart in ("chart-cpu", "chart-memory", "chart-disk", "chart-load"):
        # a line with two points or more (a flat line has no height: "attached", not "visible")
        expect(page.get_by_test_id(chart).locator("path.recharts-line-curve").first).to_have_attribute(
            "d", re.compile(r"^M[\d.]+,[\d.]+L"), timeout=30_000)
    cpu = page.get_by_test_id("chart-cpu")
    before = int(cpu.get_attribute("data-points") or "0")
    assert before >= 1
    # the agent sends a sample every second here; the page polls every 5 s and appends
    expect(cpu).not_to_have_attribute("data-points", str(before), timeout=20_000)
    page.get_by_role("radiogroup", name="Time window").get_by_text("15 min", exact=True).click()
    expect(page.get_by_test_id("chart-load").locator("path.recharts-line-curve")).to_have_count(3)  # 1, 5, 15 min
    panel.shot("host-metrics")


def test_add_host_confirm_fingerprint_provision_and_run_a_bot(panel: Panel, vps: SSHD, wheelhouse: Path,  # noqa: F811
                                                              tmp_path: Path) -> None:
    page = panel.login()
    page = panel.go("/hosts")
    page.get_by_test_id("add-host-open").click()
    form = page.get_by_test_id("add-host")
    form.get_by_role("textbox", name="Name").fill("vps-1")
    form.get_by_role("textbox", name="Address").fill("127.0.0.1")
    form.get_by_role("textbox", name="SSH port").fill(str(vps.port))
    form.get_by_role("textbox", name="User").fill(vps.user)
    form.get_by_role("textbox", name="Directory on the host").fill(str(tmp_path / "vps-home"))
    form.get_by_role("textbox", name="or paste it").fill(vps.client_private)
    panel.shot("host-add")
    page.get_by_test_id("host-create").click()

    page.get_by_test_id("host-scan").click()
    expect(page.get_by_test_id("fingerprint")).to_have_text(vps.fingerprint)
    panel.shot("host-fingerprint")
    page.get_by_test_id("host-accept").click()
    page.get_by_test_id("host-test").click()
    page.get_by_role("textbox", name="Wheelhouse (optional)").fill(str(wheelhouse))
    page.get_by_test_id("host-provision").click()
    expect(page.get_by_test_id("provision-progress")).to_contain_text("upload", timeout=120_000)
    expect(page.get_by_text("vps-1 is ready")).to_be_visible(timeout=300_000)
    panel.shot("host-provisioned")

    page = panel.go("/instances/new")
    page.get_by_test_id("example").click()
    page.get_by_role("option", name="btc_long.json").click()
    page.get_by_test_id("name").fill("remote-bot")
    page.get_by_test_id("host-select").click()
    page.get_by_role("option", name="vps-1").click()
    page.get_by_test_id("create").click()
    expect(page.get_by_role("heading", name="remote-bot")).to_be_visible()
    page.get_by_test_id("start").click()
    expect(page.get_by_test_id("state").first).to_have_text("RUNNING", timeout=90_000)
    expect(page.get_by_role("link", name="vps-1")).to_be_visible()
    page.get_by_test_id("stop").click()
    expect(page.get_by_test_id("state").first).to_have_text(re.compile("STOPPED|EXITED"), timeout=60_000)
