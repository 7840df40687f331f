"""Settings > Accounts in Chromium against the real stack: add an account (the secret is never
shown again), a refused duplicate and a refused delete explained where the user acted, a key
rotated, and the local host's api-keys.json following."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import EXAMPLE, Panel

pytestmark = pytest.mark.timeout(300)


def _add(panel: Panel, name: str, key: str, secret: str) -> None:
    page = panel.page
    page.get_by_test_id("account-name").fill(name)
    page.get_by_test_id("account-exchange").click()
    page.get_by_role("option", name="binance", exact=True).click()
    page.get_by_label("API key").fill(key)
    page.get_by_label("API secret").fill(secret)
    page.get_by_role("button", name="Save account").click()


def test_accounts_are_added_rotated_and_guarded_in_settings(panel: Panel) -> None:
    panel.login()
    page = panel.go("/settings")
    expect(page.get_by_test_id("accounts-empty")).to_be_visible()
    _add(panel, "e2e_binance_01", "e2e-key-0001", "e2e-secret-AAA")
    row = page.get_by_test_id("account-e2e_binance_01")
    expect(row).to_contain_text("…0001")
    expect(page.get_by_test_id("account-name")).to_have_value("")  # the form starts afresh
    assert "e2e-secret-AAA" not in page.content()

    _add(panel, "e2e_binance_01", "another-key-9", "x")
    expect(page.get_by_test_id("problem").first).to_contain_text("exists already")

    config = json.loads(EXAMPLE.read_text())
    config["live"]["user"] = "e2e_binance_01"
    with panel.api() as api:
        r = api.post("/api/v1/instances", json={"name": "e2e-acct-bot", "profile": "passivbot-v8",
                                                "config": config, "simulated": True})
        assert r.status_code == 201, r.text
    page.reload()
    expect(row).to_contain_text("e2e-acct-bot")

    row.get_by_role("button", name="Delete").click()
    page.get_by_test_id("confirm-delete").click()
    expect(page.get_by_role("dialog").get_by_test_id("problem")).to_contain_text("e2e-acct-bot")
    page.keyboard.press("Escape")

    row.get_by_role("button", name="Rotate keys").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("API key").fill("rotated-key-7777")
    dialog.get_by_label("API secret").fill("e2e-secret-BBB")
    dialog.get_by_role("button", name="Save new keys").click()
    expect(row).to_contain_text("…7777")
    assert "e2e-secret-BBB" not in page.content()

    keys = panel.stack.home / "agent" / "api-keys.json"
    for _ in range(100):  # up to 20 s for the agent to fetch the new keys
        if keys.exists() and "e2e-secret-BBB" in keys.read_text():
            break
        page.wait_for_timeout(200)
    assert json.loads(keys.read_text())["e2e_binance_01"]["secret"] == "e2e-secret-BBB"
    assert keys.stat().st_mode & 0o777 == 0o600
