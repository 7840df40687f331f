"""Session expiry without losing what the user typed, end to end: the user's login session is
revoked on the server (as an admin does from Settings, or as the session's TTL would) while a
form holds typed text; the next action asks them to log in again over the page, and after they
do the text is still there and the action goes through."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import EXAMPLE, PASSWORD, SCREENSHOTS, Panel

# a real stack and Chromium on a shared 2-core machine: deadlines, not speed, are tested
pytestmark = pytest.mark.timeout(300)


def _revoke_login_sessions(panel: Panel) -> int:
    """Revoke every login session of the admin on the server (with the admin's API token, which
    stays valid); returns how many were revoked."""
    with panel.api() as api:
        tokens = api.get("/api/v1/auth/tokens").json()
        sessions = [t for t in tokens if t["kind"] == "session"]
        for t in sessions:
            api.delete(f"/api/v1/auth/tokens/{t['id']}").raise_for_status()
    return len(sessions)


def _log_in_again(page: Page) -> None:
    dialog = page.get_by_role("dialog", name="Your session expired")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("textbox", name="User")).to_have_value(re.compile(r".+"))  # who was logged in
    dialog.get_by_role("textbox", name="Password").fill(PASSWORD)
    dialog.get_by_role("button", name="Log in").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_test_id("live")).to_have_text("live")  # the live updates are back too


def test_revoked_session_keeps_the_new_instance_form(panel: Panel) -> None:
    page = panel.login()
    panel.go("/instances/new")
    config = EXAMPLE.read_text()
    page.get_by_test_id("name").fill("typed-before-revoke")
    page.get_by_test_id("config-text").fill(config)
    page.get_by_role("textbox", name="Labels").fill("desk=asia")
    assert _revoke_login_sessions(panel) >= 1
    page.get_by_test_id("create").click()

    _log_in_again(page)
    expect(page.get_by_test_id("name")).to_have_value("typed-before-revoke")
    expect(page.get_by_role("textbox", name="Labels")).to_have_value("desk=asia")
    assert json.loads(page.get_by_test_id("config-text").input_value()) == json.loads(config)
    page.get_by_test_id("create").click()  # the same action now goes through
    expect(page.get_by_role("heading", name="typed-before-revoke")).to_be_visible()


def test_revoked_session_keeps_the_config_editor_edits(panel: Panel) -> None:
    instance_id = panel.create_instance("e2e-session-config")["id"]
    panel.login()
    page = panel.go(f"/instances/{instance_id}")
    page.get_by_role("tab", name="Config").click()
    editor = page.get_by_test_id("config-editor")
    expect(editor).to_have_value(re.compile(r'"leverage"'))
    doc = json.loads(editor.input_value())
    doc["live"]["leverage"] = 9
    edited = json.dumps(doc, indent=2)
    editor.fill(edited)
    page.get_by_role("textbox", name="Comment").fill("leverage 9 before the session went")
    assert _revoke_login_sessions(panel) >= 1
    page.get_by_test_id("config-save").click()

    dialog = page.get_by_role("dialog", name="Your session expired")
    expect(dialog).to_be_visible()
    page.wait_for_timeout(300)  # the dialog's fade-in, before the picture (as Panel.shot does)
    page.screenshot(path=str(SCREENSHOTS / "session-expired.png"))  # the viewport: the dialog over the form
    _log_in_again(page)
    expect(editor).to_have_value(edited)
    expect(page.get_by_role("textbox", name="Comment")).to_have_value("leverage 9 before the session went")
    page.get_by_test_id("config-save").click()
    expect(page.get_by_role("cell", name="leverage 9 before the session went")).to_be_visible()


def test_session_revoked_while_idle_asks_to_log_in_before_the_next_action(panel: Panel) -> None:
    page = panel.login()
    panel.go("/instances/new")
    expect(page.get_by_test_id("live")).to_have_text("live")
    page.get_by_test_id("name").fill("typed-then-left-alone")
    assert _revoke_login_sessions(panel) >= 1
    # no click: the panel notices on its own (its live stream is refused) and asks at once
    _log_in_again(page)
    expect(page.get_by_test_id("name")).to_have_value("typed-then-left-alone")
