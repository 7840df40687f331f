"""The web panel's benchmark (issue 4), measured in Debian's Chromium with Playwright.

    .venv/bin/python scripts/bench/panel_bench.py [--instances 1000] [--log-rate 10000]
        [--seconds 6] [--redis-url redis://127.0.0.1:6379/6] [--trace var/panel-trace.json]
        [--json scripts/bench/results/panel.json]

Needs ``frontend/dist`` (``cd frontend && npm ci && npm run build``) and /usr/bin/chromium.

1. ``bundle``: bytes (raw and gzip -9) of what the first page loads: index.html and the
   scripts/styles it references (the login page), then everything fetched up to the fleet
   overview after logging in (every same-origin .js/.css response, gzipped here).
2. ``table``: a real stack (api and the local agent; fresh SQLite, the given Redis database flushed)
   with ``--instances`` simulated instances (created, not started) and one started bot that
   writes ``--log-rate`` lines/s (the stand-in's ``BOTFLEET_DEMO_LINES_PER_SEC``). Page A has
   that bot's live log viewer open (following); page B, in the same browser, shows the
   instances table. On B we scroll the table 200 px per frame for ``--seconds`` s, then type a
   filter one key at a time, change the state filter and clear. Chromium's trace
   (``browser.start_tracing``) gives the renderer main-thread tasks (``RunTask``; a frame
   cannot be shorter than the task that blocks it); the page itself records
   requestAnimationFrame intervals. Page A and page B are two tabs of one browser context;
   Chromium gives each its own renderer process (``trace_by_page`` shows both renderers'
   main-thread tasks, by pid), so the log stream reaches the table page as CPU contention on
   the machine, not as work on its main thread.
3. ``logs``: the same measures on page A (the log viewer at ``--log-rate`` lines/s), while
   following, then with a search filter typed in, with the lines received per second.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import redis as redis_sync
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.integration.conftest import Stack, _kill_bots, prepare_database

from botfleet.fleet.embedded_redis import free_port

__all__ = ["main"]

DIST = ROOT / "frontend" / "dist"
EXAMPLE = ROOT / "tests" / "data" / "passivbot" / "v8" / "btc_long.json"
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-gpu", "--disable-dev-shm-usage", "--disable-renderer-backgrounding",
        "--disable-background-timer-throttling", "--disable-backgrounding-occluded-windows"]

RAF_PROBE = """() => { window.__frames = []; let last = performance.now();
  const tick = (t) => { window.__frames.push(t - last); last = t; if (window.__frames_on) requestAnimationFrame(tick); };
  window.__frames_on = true; requestAnimationFrame(tick); }"""


def gz(data: bytes) -> int:
    return len(gzip.compress(data, 9))


def first_page_bundle() -> dict[str, Any]:
    html = (DIST / "index.html").read_bytes()
    refs = re.findall(rb'(?:src|href)="/(assets/[^"]+)"', html)
    files = {r.decode(): (DIST / r.decode()).read_bytes() for r in refs}
    return {"files": sorted(files), "raw": len(html) + sum(map(len, files.values())),
            "gzip": gz(html) + sum(gz(b) for b in files.values())}


def summary(frames: list[float], tasks: list[tuple[float, float]]) -> dict[str, Any]:
    frames = [f for f in frames[1:] if f > 0]
    return {
        "frames": len(frames),
        "frame_ms_p50": round(statistics.median(frames), 1) if frames else None,
        "frame_ms_p95": round(sorted(frames)[int(0.95 * (len(frames) - 1))], 1) if frames else None,
        "frame_ms_p99": round(sorted(frames)[int(0.99 * (len(frames) - 1))], 1) if frames else None,
        "frame_ms_max": round(max(frames), 1) if frames else None,
        "frames_over_50ms": sum(1 for f in frames if f > 50),
        "main_thread_task_ms_max": round(max(t for t, _ in tasks), 1) if tasks else None,
        "main_thread_tasks_over_50ms": sum(1 for t, _ in tasks if t > 50),
        # CPU time of the same tasks: the panel's own work, without the time the OS gave
        # other processes (this 2-core machine also runs the api, agent, Redis and the bot)
        "main_thread_task_cpu_ms_max": round(max(c for _, c in tasks), 1) if tasks else None,
        "main_thread_tasks_over_50ms_cpu": sum(1 for _, c in tasks if c > 50),
    }


def traced_pid(trace: bytes) -> int | None:
    """Renderer pid of the page given to ``browser.start_tracing(page=...)``: the
    ``processId`` of its frame in the trace's ``TracingStartedInBrowser`` event."""
    events = json.loads(trace)
    events = events["traceEvents"] if isinstance(events, dict) else events
    for e in events:
        if e.get("name") == "TracingStartedInBrowser":
            frames = e.get("args", {}).get("data", {}).get("frames", [])
            if frames:
                return int(frames[0]["processId"])
    return None


def by_page(trace: bytes, traced: str, other: str) -> dict[str, Any]:
    """The trace's renderer main-thread tasks summed up per renderer: the traced page's
    (labelled ``traced``) and any other (``other``; with its pid when there are several)."""
    pid = traced_pid(trace)
    out: dict[str, Any] = {}
    for renderer, tasks in renderer_tasks(trace, 0).items():
        label = traced if renderer == pid else other
        if label in out:
            label = f"{other} (pid {renderer})"
        out[label] = {"pid": renderer, **{k: v for k, v in summary([], tasks).items() if k.startswith("main_thread")}}
    return out


def renderer_tasks(trace: bytes, since_us: float) -> dict[int, list[tuple[float, float]]]:
    """(wall ms, CPU ms) of every RunTask per renderer main thread (by pid) from a Chromium
    trace (``dur`` and ``tdur`` of the trace event format)."""
    events = json.loads(trace)
    events = events["traceEvents"] if isinstance(events, dict) else events
    mains = {(e["pid"], e["tid"]) for e in events if e.get("ph") == "M" and e.get("name") == "thread_name"
             and e.get("args", {}).get("name") == "CrRendererMain"}
    out: dict[int, list[tuple[float, float]]] = {}
    for e in events:
        if e.get("name") == "RunTask" and e.get("ph") == "X" and (e["pid"], e["tid"]) in mains and e.get("ts", 0) >= since_us:
            out.setdefault(e["pid"], []).append((e.get("dur", 0) / 1000, e.get("tdur", 0) / 1000))
    return out


def start_stack(redis_url: str) -> Stack:
    home = Path(tempfile.mkdtemp(prefix="panel-bench-")) / "home"
    home.mkdir()
    db_url = f"sqlite+aiosqlite:///{home / 'botfleet.db'}"
    with redis_sync.Redis.from_url(redis_url) as client:
        client.flushdb()
    token, agent_token = asyncio.run(prepare_database(db_url))
    port = free_port()
    env = {**os.environ, "BOTFLEET_HOME": str(home), "BOTFLEET_DATABASE_URL": db_url, "BOTFLEET_REDIS_URL": redis_url,
           "BOTFLEET_API_URL": f"http://127.0.0.1:{port}", "BOTFLEET_AGENT_TOKEN": agent_token,
           "BOTFLEET_AGENT_HOST": "local", "BOTFLEET_HEARTBEAT_INTERVAL": "1", "BOTFLEET_LOG_LEVEL": "warning"}
    stack = Stack(home=home, env=env, port=port, token=token, agent_token=agent_token)
    stack.start("api")
    stack.start("agent")
    return stack


def login(page: Page, url: str) -> None:
    page.goto(url + "/")
    page.get_by_role("textbox", name="User").fill("admin")
    page.get_by_role("textbox", name="Password").fill("admin-password")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Fleet overview").wait_for()


def measure(page: Page, action: Any) -> list[float]:
    page.evaluate(RAF_PROBE)
    action()
    page.evaluate("() => { window.__frames_on = false; }")
    return page.evaluate("() => window.__frames")


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"first_page": first_page_bundle(), "load_average": list(os.getloadavg())}
    stack = start_stack(args.redis_url)
    try:
        config = EXAMPLE.read_text()
        with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {stack.token}"}, timeout=60) as api:
            t0 = time.monotonic()
            for n in range(args.instances):
                api.post("/api/v1/instances", json={"name": f"bench-{n:04d}", "profile": "passivbot-v8", "simulated": True,
                                                    "config_text": config, "labels": {"desk": "ab"[n % 2]}}).raise_for_status()
            result["create_seconds"] = round(time.monotonic() - t0, 1)
            flood = None if not args.log_rate else api.post("/api/v1/instances", json={
                "name": "flood", "profile": "passivbot-v8", "simulated": True, "config_text": config,
                "env": {"BOTFLEET_DEMO_LINES_PER_SEC": str(args.log_rate), "BOTFLEET_DEMO_LOG_FILE": "0"}}).json()
            if flood:
                api.post(f"/api/v1/instances/{flood['id']}/start").raise_for_status()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.set_default_timeout(60_000)
            loaded: dict[str, bytes] = {}

            def keep(response: Any) -> None:
                if response.url.startswith(stack.url) and re.search(r"\.(js|css)$", response.url):
                    with contextlib.suppress(Exception):  # a response without a body (redirect)
                        loaded[response.url] = response.body()
            logs = context.new_page()
            logs.on("response", keep)
            login(logs, stack.url)
            result["overview_after_login"] = {"files": len(loaded), "raw": sum(map(len, loaded.values())),
                                              "gzip": sum(gz(b) for b in loaded.values())}
            if flood:
                logs.goto(f"{stack.url}/#/instances/{flood['id']}")
                logs.get_by_test_id("log-line").first.wait_for()
            table = context.new_page()
            table.goto(f"{stack.url}/#/instances")
            table.get_by_test_id("counts").filter(has_text=f"of {args.instances + (1 if flood else 0)}").wait_for()
            time.sleep(2)

            since = time.monotonic()
            browser.start_tracing(page=table, categories=["toplevel", "disabled-by-default-devtools.timeline"])
            trace_t0 = table.evaluate("() => performance.timeOrigin * 1000")  # unused: filter by count instead
            del trace_t0

            def scroll() -> None:
                table.evaluate("""(ms) => new Promise((done) => { const el = document.querySelector('[data-testid=instances-scroller]');
                  const end = performance.now() + ms; const step = () => { el.scrollTop += 200;
                  if (el.scrollTop + el.clientHeight >= el.scrollHeight) el.scrollTop = 0;
                  if (performance.now() < end) requestAnimationFrame(step); else done(); }; requestAnimationFrame(step); })""",
                               args.seconds * 1000)

            def filter_() -> None:
                box = table.get_by_test_id("filter-text")
                box.click()
                table.keyboard.type("bench-09", delay=80)
                table.get_by_test_id("filter-state").click()
                table.get_by_role("option", name="STOPPED", exact=True).click()
                table.keyboard.press("Escape")
                box.fill("")
                table.keyboard.type("desk", delay=80)
                box.fill("")
                time.sleep(0.5)

            scroll_frames = measure(table, scroll)
            filter_frames = measure(table, filter_)
            trace = browser.stop_tracing()
            tasks = [t for per in renderer_tasks(trace, 0).values() for t in per]  # both pages' renderers: the worst
            if args.trace:
                Path(args.trace).parent.mkdir(parents=True, exist_ok=True)
                Path(args.trace).write_bytes(trace)
            result["table"] = {"rows": args.instances + 1, "scroll": summary(scroll_frames, []),
                               "filter": summary(filter_frames, []), "trace": summary([], tasks),
                               "trace_by_page": by_page(trace, "table page", "log viewer page"),
                               "seconds": round(time.monotonic() - since, 1)}

            if not flood:
                browser.close()
                return result
            logs.bring_to_front()
            count = lambda: int(re.search(r"(\d+) received", logs.get_by_test_id("log-count").inner_text()).group(1))
            browser.start_tracing(page=logs, categories=["toplevel", "disabled-by-default-devtools.timeline"])
            # the highest line number among the newest 500 (the agent's "lines were not streamed"
            # markers carry seq -1)
            newest = lambda: max(i["seq"] for i in httpx.get(
                f"{stack.url}/api/v1/instances/{flood['id']}/logs/range", params={"limit": 500},
                headers={"Authorization": f"Bearer {stack.token}"}).json()["items"])
            before, seq0, t0 = count(), newest(), time.monotonic()
            follow_frames = measure(logs, lambda: time.sleep(args.seconds))
            rate = (count() - before) / (time.monotonic() - t0)
            # the bot's line numbers: lines it wrote per second (streamed or counted as not streamed)
            streamed = (newest() - seq0) / (time.monotonic() - t0)

            def search() -> None:
                logs.get_by_role("textbox", name="Search log lines").click()
                logs.keyboard.type("order", delay=80)
                time.sleep(args.seconds / 2)
                logs.get_by_role("textbox", name="Search log lines").fill("")
            search_frames = measure(logs, search)
            trace = browser.stop_tracing()
            tasks = [t for per in renderer_tasks(trace, 0).values() for t in per]
            result["logs"] = {"lines_per_second_received": round(rate), "lines_per_second_written_by_bot": round(streamed), "follow": summary(follow_frames, []),
                              "search": summary(search_frames, []), "trace": summary([], tasks),
                              "trace_by_page": by_page(trace, "log viewer page", "table page")}
            browser.close()
    finally:
        stack.stop_all()
        _kill_bots(stack.home)
        shutil.rmtree(stack.home.parent, ignore_errors=True)
    result["load_average_after"] = list(os.getloadavg())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--log-rate", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--redis-url", default=os.environ.get("BOTFLEET_BENCH_REDIS_URL", "redis://127.0.0.1:6379/6"))
    parser.add_argument("--trace", default="")
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
