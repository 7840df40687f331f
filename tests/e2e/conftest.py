"""End-to-end fixtures: one real botfleet stack per module (api serving the built panel,
worker, local agent: real processes on a private Redis database and a temp SQLite) and Debian's
Chromium driven by Playwright (``/usr/bin/chromium``; never a downloaded browser).

Needs ``frontend/dist`` (``cd frontend && npm ci && npm run build``) and ``apt-get install
chromium``; both missing are reported as errors, not skips."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis as redis_sync
from playwright.sync_api import Browser, Page, expect, sync_playwright

from botfleet.fleet.embedded_redis import free_port
from botfleet.fleet.scratch import SCRATCH_ADMIN, SCRATCH_PASSWORD
from tests.integration.conftest import Stack, _kill_bots, prepare_database

__all__ = ["CHROMIUM", "EXAMPLE", "SCREENSHOTS", "Panel"]

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "frontend" / "dist" / "index.html"
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("BOTFLEET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-gpu", "--disable-dev-shm-usage"]
USER, PASSWORD = SCRATCH_ADMIN, SCRATCH_PASSWORD  # made by prepare_database
EXAMPLE = ROOT / "tests" / "data" / "passivbot" / "v8" / "btc_long.json"


class Panel:
    """The running stack plus a browser page logged in as the admin."""

    def __init__(self, stack: Stack, browser: Browser) -> None:
        self.stack = stack
        self.browser = browser
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.context.set_default_timeout(30_000)
        self.page: Page = self.context.new_page()

    @property
    def url(self) -> str:
        return self.stack.url

    def api(self) -> httpx.Client:
        """A sync client of the api with the admin's token (Playwright's sync API owns the
        thread's event loop, so no asyncio here)."""
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.stack.token}"}, timeout=30)

    def create_instance(self, name: str, **fields: object) -> dict[str, object]:
        """Create a simulated passivbot-v8 instance of passivbot's btc_long example (``fields``
        add to or replace the request's: ``env``, ``config``...) through the api; returns the
        created instance's JSON."""
        body: dict[str, object] = {"name": name, "profile": "passivbot-v8", "simulated": True}
        body.update(fields if "config" in fields else {"config_text": EXAMPLE.read_text(), **fields})
        with self.api() as api:
            r = api.post("/api/v1/instances", json=body)
            assert r.status_code == 201, r.text
            return dict(r.json())

    def login(self) -> Page:
        page = self.page
        page.goto(self.url + "/")
        page.get_by_role("textbox", name="User").fill(USER)
        page.get_by_role("textbox", name="Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Fleet overview")).to_be_visible()
        return page

    def go(self, route: str) -> Page:
        """Open a panel route (hash routing: ``/#/instances``)."""
        self.page.goto(f"{self.url}/#{route}")
        return self.page

    def shot(self, name: str) -> None:
        """Save a screenshot of the whole page to docs/screenshots/NAME.png."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.wait_for_timeout(300)  # let transitions settle before the picture
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def e2e_stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Stack]:
    if not DIST.exists():
        pytest.fail(f"{DIST} is missing: run `cd frontend && npm ci && npm run build` first")
    home = tmp_path_factory.mktemp("e2e") / "home"
    home.mkdir()
    db_url = f"sqlite+aiosqlite:///{home / 'botfleet.db'}"
    with redis_sync.Redis.from_url(redis_url) as client:
        client.flushdb()
    token, agent_token = asyncio.run(prepare_database(db_url))
    port = free_port()
    env = {
        **os.environ,
        "BOTFLEET_HOME": str(home), "BOTFLEET_DATABASE_URL": db_url, "BOTFLEET_REDIS_URL": redis_url,
        "BOTFLEET_API_URL": f"http://127.0.0.1:{port}", "BOTFLEET_AGENT_TOKEN": agent_token,
        "BOTFLEET_AGENT_HOST": "local", "BOTFLEET_HEARTBEAT_INTERVAL": "1", "BOTFLEET_LOG_LEVEL": "warning",
        # agents provisioned on a loopback "VPS" dial the api here
        "BOTFLEET_PUBLIC_URL": f"http://127.0.0.1:{port}", "BOTFLEET_API_PORT": str(port),
        # the stand-in's optimize: 2,000 evaluations/s, so 200,000 iterations run ~100 s
        "BOTFLEET_DEMO_EVALS_PER_SEC": "2000",
    }
    stack = Stack(home=home, env=env, port=port, token=token, agent_token=agent_token)
    try:
        stack.start("api")
        stack.start("agent")
        stack.start("worker")
        yield stack
    finally:
        stack.stop_all()
        _kill_bots(home)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (scripts/test.sh does it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def panel(e2e_stack: Stack, browser: Browser) -> Iterator[Panel]:
    p = Panel(e2e_stack, browser)
    try:
        yield p
    finally:
        p.context.close()
