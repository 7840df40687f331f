"""Settings in the panel: an admin creates a user; the user logs in, creates an API token
(shown once), a script uses it against the api, the user revokes it and the script is refused.
Errors show at the field that caused them; a session ended on the server (password reset by an
admin) asks to log in again without losing what was typed; the forms work from the keyboard.
Contrast in both themes: test_panel_contrast.py."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Panel

# a real stack and Chromium on a shared 2-core machine: deadlines, not speed, are tested (the
# panel's first load took over expect's default 5 s here at a load average of 20)
pytestmark = pytest.mark.timeout(400)
expect.set_options(timeout=20_000)


def _login_as(page: Page, url: str, username: str, password: str) -> None:
    page.goto(url + "/")
    page.get_by_role("textbox", name="User").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("textbox", name="Password").press("Enter")  # keyboard: Enter submits
    expect(page.get_by_role("heading", name="Fleet overview")).to_be_visible()


def test_user_creates_uses_and_revokes_an_api_token(panel: Panel) -> None:
    page = panel.login()
    page = panel.go("/settings")
    users = page.get_by_role("region", name="Users")
    expect(users.get_by_test_id("users-empty")).to_contain_text("Create a user below")
    form = page.get_by_role("form", name="Create user")

    form.get_by_role("textbox", name="User name").fill("has space")
    form.get_by_role("textbox", name="Password", exact=True).fill("trader password")
    form.get_by_role("button", name="Create user").click()
    expect(form.get_by_text(re.compile("user name 'has space' is not allowed"))).to_be_visible()

    form.get_by_role("textbox", name="User name").fill("trader")
    form.get_by_role("textbox", name="Password", exact=True).fill("trader password")
    form.get_by_role("button", name="Create user").click()
    expect(users.get_by_test_id("user-trader")).to_contain_text("user")
    expect(users.get_by_test_id("users-empty")).to_have_count(0)
    page.mouse.move(5, 880)
    page.evaluate("window.scrollTo(0, 0)")  # the fixed header at the top of the picture
    panel.shot("settings")

    page.get_by_role("button", name="Log out").click()
    _login_as(page, panel.url, "trader", "trader password")
    panel.go("/settings")
    expect(page.get_by_role("region", name="Users")).to_contain_text("Only admins manage users")
    tokens = page.get_by_role("region", name="API tokens")
    expect(tokens.get_by_test_id("tokens-empty")).to_be_visible()
    tokens.get_by_role("textbox", name="Token name").fill("e2e-script")
    tokens.get_by_test_id("token-lifetime").click()
    page.get_by_role("option", name="90 days").click()
    tokens.get_by_role("textbox", name="Token name").press("Enter")
    token = tokens.get_by_test_id("new-token").inner_text()
    assert re.fullmatch(r"[\w-]{40,}", token), token
    expect(tokens.get_by_test_id("token-e2e-script")).to_contain_text("not yet")
    expect(tokens.get_by_test_id("token-e2e-script")).not_to_contain_text("never")  # it expires

    script = httpx.Client(base_url=panel.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    with script:
        assert script.get("/api/v1/auth/me").json()["username"] == "trader"
        assert script.get("/api/v1/instances").status_code == 200
        tokens.get_by_role("button", name="I have copied it").click()
        expect(tokens.get_by_test_id("new-token")).to_have_count(0)  # shown once
        tokens.get_by_role("button", name="Revoke e2e-script").click()
        dialog = page.get_by_role("dialog", name='Revoke "e2e-script"?')
        expect(dialog).to_contain_text("refused from now on")
        dialog.get_by_role("button", name="Revoke").click()
        expect(dialog).to_be_hidden()
        expect(tokens.get_by_test_id("token-e2e-script")).to_have_count(0)
        r = script.get("/api/v1/instances")
        assert r.status_code == 401, r.text
        assert r.headers["content-type"].startswith("application/problem+json")


def test_password_errors_show_at_the_field_and_a_reset_session_keeps_the_form(panel: Panel) -> None:
    with panel.api() as api:
        r = api.post("/api/v1/users", json={"username": "typist", "password": "typist password"})
        assert r.status_code == 201, r.text
        typist_id = r.json()["id"]
    page = panel.page
    _login_as(page, panel.url, "typist", "typist password")
    panel.go("/settings")
    form = page.get_by_role("form", name="Change your password")
    form.get_by_role("textbox", name="Current password", exact=True).fill("not my password")
    form.get_by_role("textbox", name="New password", exact=True).fill("a new password")
    form.get_by_role("textbox", name="New password again", exact=True).fill("a new password")
    form.get_by_role("button", name="Change password").click()
    expect(form.get_by_text("the current password is wrong")).to_be_visible()

    tokens = page.get_by_role("region", name="API tokens")
    tokens.get_by_role("textbox", name="Token name").fill("typed before the reset")
    with panel.api() as api:  # an admin sets a new password: typist's sessions end on the server
        r = api.patch(f"/api/v1/users/{typist_id}", json={"password": "reset by admin"})
        assert r.status_code == 200, r.text
    tokens.get_by_role("button", name="Create token").click()
    dialog = page.get_by_role("dialog", name="Your session expired")
    expect(dialog).to_be_visible()
    dialog.get_by_role("textbox", name="Password").fill("reset by admin")
    dialog.get_by_role("button", name="Log in").click()
    expect(dialog).to_be_hidden()
    expect(tokens.get_by_role("textbox", name="Token name")).to_have_value("typed before the reset")
    tokens.get_by_role("button", name="Create token").click()
    expect(tokens.get_by_test_id("new-token")).to_have_text(re.compile(r"\S{40,}"))


def test_tokens_are_created_and_revoked_from_the_keyboard(panel: Panel) -> None:
    page = panel.login()
    panel.go("/settings")
    tokens = page.get_by_role("region", name="API tokens")
    name = tokens.get_by_role("textbox", name="Token name")
    name.focus()
    page.keyboard.type("keyboard-only")
    page.keyboard.press("Enter")
    expect(tokens.get_by_test_id("token-keyboard-only")).to_be_visible()
    tokens.get_by_role("button", name="Revoke keyboard-only").focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name='Revoke "keyboard-only"?')
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")  # cancel: nothing revoked
    expect(dialog).to_be_hidden()
    expect(tokens.get_by_test_id("token-keyboard-only")).to_be_visible()
    tokens.get_by_role("button", name="Revoke keyboard-only").focus()
    page.keyboard.press("Enter")
    expect(dialog.get_by_role("button", name="Revoke")).to_be_focused()  # the action, not the close icon
    page.keyboard.press("Enter")
    expect(tokens.get_by_test_id("token-keyboard-only")).to_have_count(0)
