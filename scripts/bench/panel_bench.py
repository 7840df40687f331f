"""The web panel's benchmark (issue 4), measured in Debian's Chromium with Playwright.

    .venv/bin/python scripts/bench/panel_bench.py [--instances 1000] [--create sql|api]
        [--log-rate 10000 (0: no stream, for comparison)] [--seconds 6] [--redis-url redis://127.0.0.1:6379/6] [--trace var/panel-trace.json]
        [--timeout 420] [--json scripts/bench/results/panel.json]

Needs ``frontend/dist`` (``cd frontend && npm ci && npm run build``) and /usr/bin/chromium.
Progress goes to stderr, one line per phase with its duration (``[panel-bench 12.3s] ...``);
the result (JSON) to stdout and ``--json``. The whole run is bounded by ``--timeout`` seconds:
past it the script prints where it was (the phase and a Python traceback), stops the stack and
exits 2 instead of hanging (every wait in the page has its own deadline too).

1. ``first_page``: bytes (raw and gzip -9) of what the first page loads: index.html and the
   scripts/styles it references (the login page); ``overview_after_login``: every same-origin
   .js/.css fetched up to the fleet overview after logging in.
2. The stack: a real api and local agent (fresh SQLite, the given Redis database flushed),
   ``--instances`` simulated instances (written to the database before the api starts, or
   with ``--create api`` made through ``POST /api/v1/instances`` one at a time), plus one started stand-in bot ("flood") that writes ``--log-rate`` lines/s
   (``BOTFLEET_DEMO_LINES_PER_SEC``); the script waits until its lines arrive in Redis.
3. ``table``: one page shows the instances table, and the same page holds that bot's live log
   viewer (the instance page in a same-origin iframe in the corner, following). A same-origin
   iframe runs on the page's renderer main thread, so every line the viewer receives and draws
   is work on the thread that must also scroll and filter the table: the issue's "with a log
   stream at 10,000 lines/s" taken at its hardest (a second tab would get its own renderer
   process and leave the table's main thread alone). On that page we scroll the table 200 px
   per frame for ``--seconds`` s, then type a filter one key at a time, pick a state filter
   and clear. Measured: requestAnimationFrame intervals in the page (``frames``), Long
   Animation Frames (``loaf``: frames over 50 ms with the scripts that ran in them), and from
   Chromium's trace (``browser.start_tracing``) the renderer main-thread tasks (``RunTask``,
   wall ``dur`` and CPU ``tdur``). ``log_stream`` says how many lines/s the bot wrote and the
   page's log viewer received meanwhile.
4. ``logs``: the log viewer alone as a top-level page at ``--log-rate``: following, then with
   a search typed in; the same measures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import gzip
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import _thread
import httpx
import redis as redis_sync
from playwright.sync_api import Frame, Page, sync_playwright

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
# "toplevel" has every task of every thread (ThreadControllerImpl::RunTask, wall and CPU
# time); "disabled-by-default-devtools.timeline" doubled the trace (168 MB for 9 s here).
CATEGORIES = ["toplevel"]
START = time.monotonic()

# Frame intervals (rAF) and Long Animation Frames (>50 ms, with script attribution); the probe
# stops itself after 120 s so a forgotten probe cannot grow without bound.
PROBE = """() => { const w = window; w.__frames = []; w.__loaf = []; let last = performance.now();
  const end = last + 120000; w.__probe_on = true;
  const tick = (t) => { w.__frames.push(t - last); last = t; if (w.__probe_on && t < end) requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  try { w.__observer = new PerformanceObserver((list) => { for (const e of list.getEntries()) w.__loaf.push({
      duration: e.duration, blocking: e.blockingDuration, render: e.renderStart ? e.startTime + e.duration - e.renderStart : 0,
      scripts: (e.scripts || []).map((s) => ({ ms: s.duration, invoker: s.invoker, fn: s.sourceFunctionName, kind: s.invokerType }))}); });
    w.__observer.observe({ type: 'long-animation-frame' }); } catch (err) { w.__loaf = null; } }"""
PROBE_STOP = """() => { window.__probe_on = false; if (window.__observer) window.__observer.disconnect();
  return { frames: window.__frames, loaf: window.__loaf }; }"""
# Scroll the table 200 px per frame for `ms`; resolves after `ms` even when no frame comes.
SCROLL = """(ms) => new Promise((done) => { const el = document.querySelector('[data-testid=instances-scroller]');
  const end = performance.now() + ms; setTimeout(done, ms + 2000);
  const step = () => { el.scrollTop += 200; if (el.scrollTop + el.clientHeight >= el.scrollHeight) el.scrollTop = 0;
    if (performance.now() < end) requestAnimationFrame(step); else done(); }; requestAnimationFrame(step); })"""
IFRAME = """(src) => new Promise((done) => { const f = document.createElement('iframe'); f.id = 'bench-log-viewer';
  f.src = src; f.title = 'log viewer (benchmark)';
  f.style.cssText = 'position:fixed;right:8px;bottom:8px;width:700px;height:460px;z-index:1000;border:2px solid #888;background:#fff';
  f.onload = () => done(); setTimeout(done, 30000); document.body.appendChild(f); })"""


def progress(message: str) -> None:
    """One progress line on stderr, with the seconds since the script started."""
    print(f"[panel-bench {time.monotonic() - START:6.1f}s] {message}", file=sys.stderr, flush=True)


class Phases:
    """Named phases: each is announced on stderr when it starts and ends (with its
    duration), recorded in ``seconds``, and named by the watchdog if the run overruns."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.current = "start"
        #: The phase the watchdog fired in (empty: it did not).
        self.timed_out = ""

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.current, t0 = name, time.monotonic()
        progress(f"{name} ...")
        yield
        self.seconds[name] = round(time.monotonic() - t0, 1)
        progress(f"{name}: done in {self.seconds[name]} s")


def watchdog(seconds: float, phases: Phases) -> threading.Timer:
    """Past ``seconds``: print the phase and every thread's traceback, then interrupt the main
    thread (a KeyboardInterrupt there runs the clean-up of the stack and the browser)."""
    def fire() -> None:
        phases.timed_out = phases.current
        progress(f"TIMEOUT after {seconds:.0f} s in phase {phases.current!r}; where the script was:")
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        _thread.interrupt_main()
    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    return timer


def gz(data: bytes) -> int:
    return len(gzip.compress(data, 9))


def first_page_bundle() -> dict[str, Any]:
    html = (DIST / "index.html").read_bytes()
    refs = re.findall(rb'(?:src|href)="/(assets/[^"]+)"', html)
    files = {r.decode(): (DIST / r.decode()).read_bytes() for r in refs}
    return {"files": sorted(files), "raw": len(html) + sum(map(len, files.values())),
            "gzip": gz(html) + sum(gz(b) for b in files.values())}


def pct(values: list[float], q: float) -> float:
    return round(sorted(values)[int(q * (len(values) - 1))], 1)


def frame_summary(probe: dict[str, Any]) -> dict[str, Any]:
    """Frame intervals (ms) from the rAF probe and Long Animation Frames from the page."""
    frames = [f for f in probe["frames"][1:] if f > 0]
    out: dict[str, Any] = {"frames": len(frames)}
    if frames:
        out.update(frame_ms_p50=round(statistics.median(frames), 1), frame_ms_p95=pct(frames, 0.95),
                   frame_ms_p99=pct(frames, 0.99), frame_ms_max=round(max(frames), 1),
                   frames_over_50ms=sum(1 for f in frames if f > 50))
    loaf = probe["loaf"]
    if loaf is not None:
        scripts: dict[str, float] = {}
        for frame in loaf:
            for s in frame["scripts"]:
                key = f"{s['kind']} {s['invoker']}" + (f" ({s['fn']})" if s["fn"] else "")
                scripts[key] = scripts.get(key, 0) + s["ms"]
        out["loaf"] = {"count": len(loaf), "max_ms": round(max((f["duration"] for f in loaf), default=0), 1),
                       "max_blocking_ms": round(max((f["blocking"] for f in loaf), default=0), 1),
                       "script_ms_total": round(sum(scripts.values()), 1),
                       "top_scripts_ms": {k: round(v, 1) for k, v in sorted(scripts.items(), key=lambda kv: -kv[1])[:5]}}
    return out


def task_summary(tasks: list[tuple[float, float]]) -> dict[str, Any]:
    """(wall ms, CPU ms) of main-thread tasks: the longest, and how many passed 50 ms.
    CPU time leaves out the time the OS gave other processes (the api, agent, Redis and the
    bot share this machine's cores)."""
    if not tasks:
        return {"tasks": 0}
    return {"tasks": len(tasks), "task_ms_max": round(max(t for t, _ in tasks), 1),
            "tasks_over_50ms": sum(1 for t, _ in tasks if t > 50),
            "task_cpu_ms_max": round(max(c for _, c in tasks), 1),
            "tasks_over_50ms_cpu": sum(1 for _, c in tasks if c > 50)}


def trace_events(trace: bytes) -> list[dict[str, Any]]:
    events = json.loads(trace)
    return events["traceEvents"] if isinstance(events, dict) else events


def renderer_tasks(events: list[dict[str, Any]]) -> dict[int, list[tuple[float, float]]]:
    """(wall ms, CPU ms) of every task per renderer main thread (``CrRendererMain``, by pid),
    from the trace event format's ``dur`` and ``tdur`` (µs) of ``ThreadControllerImpl::RunTask``."""
    mains = {(e["pid"], e["tid"]) for e in events if e.get("ph") == "M" and e.get("name") == "thread_name"
             and e.get("args", {}).get("name") == "CrRendererMain"}
    out: dict[int, list[tuple[float, float]]] = {}
    for e in events:
        if e.get("name") == "ThreadControllerImpl::RunTask" and e.get("ph") == "X" and (e["pid"], e["tid"]) in mains:
            out.setdefault(e["pid"], []).append((e.get("dur", 0) / 1000, e.get("tdur", 0) / 1000))
    return out


class CPU:
    """CPU seconds used by each part of the run between :meth:`start` and :meth:`stop`, and
    by the whole machine: what the 2 cores were doing while the page was measured."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def groups(self) -> dict[str, list[Any]]:
        import psutil

        me = psutil.Process()
        out: dict[str, list[Any]] = {"api": [], "agent + bot": [], "chromium": [], "playwright driver": [], "this script": [me]}
        for name, proc in self.stack.procs.items():
            with contextlib.suppress(psutil.Error):
                p = psutil.Process(proc.pid)
                out["api" if name == "api" else "agent + bot"] += [p, *p.children(recursive=True)]
        for child in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if child.pid in {p.pid for v in out.values() for p in v}:
                    continue
                out["chromium" if "chrom" in child.name() else "playwright driver"].append(child)
        return out

    @staticmethod
    def used(procs: list[Any]) -> dict[int, float]:
        out = {}
        for p in procs:
            with contextlib.suppress(Exception):
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
        return out

    def start(self) -> None:
        import psutil

        self.t0, self.machine0 = time.monotonic(), psutil.cpu_times()
        self.before = {k: (v, self.used(v)) for k, v in self.groups().items()}

    def stop(self) -> dict[str, Any]:
        import psutil

        seconds = time.monotonic() - self.t0
        m1 = psutil.cpu_times()
        busy = sum(getattr(m1, f) - getattr(self.machine0, f) for f in ("user", "system", "nice", "irq", "softirq", "steal"))
        out = {"seconds": round(seconds, 1), "machine_busy_cores": round(busy / seconds, 2), "cores": os.cpu_count()}
        for name, (procs, t0) in self.before.items():
            t1 = self.used(procs)
            out[f"{name}_cores"] = round(sum(t1[pid] - t0.get(pid, 0) for pid in t1) / seconds, 2)
        return out


def start_stack(redis_url: str, instances: int, create: str) -> Stack:
    """A fresh SQLite database (with ``instances`` rows when ``create`` is ``sql``), the Redis
    database flushed, the api and the local agent started."""
    home = Path(tempfile.mkdtemp(prefix="panel-bench-")) / "home"
    home.mkdir()
    db_url = f"sqlite+aiosqlite:///{home / 'botfleet.db'}"
    with redis_sync.Redis.from_url(redis_url) as client:
        client.flushdb()
    token, agent_token = asyncio.run(prepare_database(db_url))
    if create == "sql":
        asyncio.run(insert_instances(db_url, instances, EXAMPLE.read_text()))
    port = free_port()
    env = {**os.environ, "BOTFLEET_HOME": str(home), "BOTFLEET_DATABASE_URL": db_url, "BOTFLEET_REDIS_URL": redis_url,
           "BOTFLEET_API_URL": f"http://127.0.0.1:{port}", "BOTFLEET_AGENT_TOKEN": agent_token,
           "BOTFLEET_AGENT_HOST": "local", "BOTFLEET_HEARTBEAT_INTERVAL": "1", "BOTFLEET_LOG_LEVEL": "warning"}
    stack = Stack(home=home, env=env, port=port, token=token, agent_token=agent_token)
    stack.start("api")
    stack.start("agent")
    return stack


def create_instances(api: httpx.Client, count: int, config: str) -> None:
    """``count`` simulated instances through the REST api, one request at a time (SQLite takes
    one writer at a time; 8 in parallel made it slower still). 1,000 took 344 s (27/s at
    first, 2/s at the end) while each create parsed every config on the host for its
    credential set; 22 s (84/s -> 30/s) since the account is stored beside each config."""
    t0 = last = time.monotonic()
    for n in range(count):
        api.post("/api/v1/instances", json={"name": f"bench-{n:04d}", "profile": "passivbot-v8", "simulated": True,
                                            "config_text": config, "labels": {"desk": "ab"[n % 2]}}).raise_for_status()
        if (n + 1) % 100 == 0:
            now = time.monotonic()
            progress(f"  {n + 1} of {count} created ({100 / (now - last):.0f}/s now, {now - t0:.0f} s so far)")
            last = now


async def insert_instances(db_url: str, count: int, config: str) -> None:
    """``count`` simulated instances written straight into the fresh database before the api
    starts (the rows ``POST /api/v1/instances`` writes: the instance, STOPPED, desired
    ``stopped``, and its config version 1, parsed and validated by the profile once)."""
    from botfleet.db import ConfigVersion, Host, Instance, create_engine, create_sessionmaker
    from botfleet.fleet.accounts import account_of
    from botfleet.profiles import get_profile
    from sqlalchemy import select

    profile = get_profile("passivbot-v8")
    document = profile.validate_config(profile.parse_config(config))
    engine = create_engine(db_url)
    async with create_sessionmaker(engine)() as session:
        host = await session.scalar(select(Host).where(Host.name == "local"))
        assert host is not None
        for n in range(count):
            instance = Instance(name=f"bench-{n:04d}", host_id=host.id, profile="passivbot-v8", simulated=True,
                                labels={"desk": "ab"[n % 2]}, env={}, supervision={}, state="STOPPED")
            session.add(instance)
            await session.flush()
            session.add(ConfigVersion(instance_id=instance.id, version=1, document=document, source=config,
                                      account=account_of(document)))
        await session.commit()
    await engine.dispose()


class LogSource:
    """The started stand-in bot and the line numbers it has written (from its Redis stream)."""

    def __init__(self, api: httpx.Client, instance_id: str) -> None:
        self.api, self.id = api, instance_id

    def newest(self) -> int:
        """The highest line number among the newest 500 lines (the agent's "lines were not
        streamed" markers carry seq -1); -1 before the first line."""
        items = self.api.get(f"/api/v1/instances/{self.id}/logs/range", params={"limit": 500}).json()["items"]
        return max((i["seq"] for i in items), default=-1)

    def rate(self, seconds: float) -> float:
        s0, t0 = self.newest(), time.monotonic()
        time.sleep(seconds)
        return (self.newest() - s0) / (time.monotonic() - t0)


def login(page: Page, url: str) -> None:
    page.goto(url + "/")
    page.get_by_role("textbox", name="User").fill("admin")
    page.get_by_role("textbox", name="Password").fill("admin-password")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Fleet overview").wait_for()


def received(frame: Page | Frame) -> int:
    """Lines the log viewer in ``frame`` has received (its ``log-count`` text)."""
    text = frame.get_by_test_id("log-count").inner_text()
    return int(re.search(r"(\d+) received", text).group(1))  # type: ignore[union-attr]


def measured(page: Page, action: Callable[[], None]) -> dict[str, Any]:
    page.evaluate(PROBE)
    action()
    return frame_summary(page.evaluate(PROBE_STOP))


def run(args: argparse.Namespace, phases: Phases) -> dict[str, Any]:
    result: dict[str, Any] = {"first_page": first_page_bundle(), "load_average": [round(x, 2) for x in os.getloadavg()],
                              "nproc": os.cpu_count(), "settings": {"instances": args.instances, "create": args.create, "log_rate": args.log_rate,
                                                                    "seconds": args.seconds}}
    with phases("stack: api + local agent" + (f", {args.instances} instances written to its database" if args.create == "sql" else "")):
        stack = start_stack(args.redis_url, args.instances, args.create)
    try:
        config = EXAMPLE.read_text()
        with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {stack.token}"}, timeout=30) as api:
            if args.create == "api":
                with phases(f"create {args.instances} instances through the api"):
                    create_instances(api, args.instances, config)
            source: LogSource | None = None
            if args.log_rate:
                with phases(f"log source: start a stand-in bot at {args.log_rate} lines/s"):
                    bot = api.post("/api/v1/instances", json={
                        "name": "flood", "profile": "passivbot-v8", "simulated": True, "config_text": config,
                        "env": {"BOTFLEET_DEMO_LINES_PER_SEC": str(args.log_rate), "BOTFLEET_DEMO_LOG_FILE": "0"}})
                    bot.raise_for_status()
                    source = LogSource(api, bot.json()["id"])
                    api.post(f"/api/v1/instances/{source.id}/start").raise_for_status()
                    deadline = time.monotonic() + 60
                    while source.newest() < 0:
                        if time.monotonic() > deadline:
                            raise RuntimeError(f"no log line from the stand-in within 60 s; agent log:\n{stack.log('agent')[-3000:]}")
                        time.sleep(0.5)
                    result["log_source_lines_per_second_before"] = round(source.rate(2))
                    progress(f"  the bot writes {result['log_source_lines_per_second_before']} lines/s")
            rows = args.instances + (1 if source else 0)
            with sync_playwright() as p:
                with phases("browser: launch + log in"):
                    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                    context = browser.new_context(viewport={"width": 1400, "height": 900})
                    context.set_default_timeout(60_000)
                    loaded: dict[str, bytes] = {}

                    def keep(response: Any) -> None:
                        if response.url.startswith(stack.url) and re.search(r"\.(js|css)$", response.url):
                            with contextlib.suppress(Exception):  # a response without a body (redirect)
                                loaded[response.url] = response.body()
                    page = context.new_page()
                    page.on("response", keep)
                    login(page, stack.url)
                    result["overview_after_login"] = {"files": len(loaded), "raw": sum(map(len, loaded.values())),
                                                      "gzip": sum(gz(b) for b in loaded.values())}
                    page.remove_listener("response", keep)
                with phases("table page: load the instances table (+ the log viewer iframe)"):
                    page.goto(f"{stack.url}/#/instances")
                    page.get_by_test_id("counts").filter(has_text=f"of {rows}").wait_for()
                    viewer: Frame | None = None
                    if source:
                        page.evaluate(IFRAME, f"{stack.url}/#/instances/{source.id}")
                        page.frame_locator("#bench-log-viewer").get_by_test_id("log-line").first.wait_for()
                        viewer = page.locator("#bench-log-viewer").element_handle().content_frame()
                    time.sleep(2)
                with phases("table: scroll + filter, traced"):
                    table = table_phase(browser, page, viewer, source, args, CPU(stack))
                    result["table"] = {"rows": rows, **table}
                if source:
                    with phases("log viewer alone: follow + search, traced"):
                        page.close()  # and its log viewer iframe
                        page = context.new_page()
                        page.goto(f"{stack.url}/#/instances/{source.id}")
                        page.get_by_test_id("log-line").first.wait_for()
                        time.sleep(2)
                        result["logs"] = logs_phase(browser, page, source, args, CPU(stack))
                browser.close()
    finally:
        # the busy api can miss heartbeats: the agent then announces its 1,001 instances again
        result["agent_reannounced"] = stack.log("agent").count("announcing again")
        progress(f"  the agent re-announced {result['agent_reannounced']} times")
        with phases("stop the stack"):
            stack.stop_all()
            _kill_bots(stack.home)
            shutil.rmtree(stack.home.parent, ignore_errors=True)
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    result["phase_seconds"] = phases.seconds
    return result


def stop_trace(browser: Any, args: argparse.Namespace, name: str) -> list[dict[str, Any]]:
    t0 = time.monotonic()
    trace = browser.stop_tracing()
    progress(f"  trace: {len(trace) / 1e6:.1f} MB in {time.monotonic() - t0:.1f} s")
    if args.trace:
        path = Path(args.trace).with_suffix(f".{name}.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(trace)
    return trace_events(trace)


def by_renderer(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Task summary per renderer process (one when the log viewer shares the table's page)."""
    return {str(pid): task_summary(tasks) for pid, tasks in renderer_tasks(events).items()}


def table_phase(browser: Any, page: Page, viewer: Frame | None, source: LogSource | None,
                args: argparse.Namespace, cpu: CPU) -> dict[str, Any]:
    out: dict[str, Any] = {}
    before = (received(viewer), time.monotonic()) if viewer else None
    seq0 = source.newest() if source else 0
    cpu.start()
    browser.start_tracing(page=page, categories=CATEGORIES)
    progress(f"  scrolling for {args.seconds} s")
    out["scroll"] = measured(page, lambda: page.evaluate(SCROLL, args.seconds * 1000))

    def filter_() -> None:
        box = page.get_by_test_id("filter-text")
        box.click()
        page.keyboard.type("bench-09", delay=80)
        page.get_by_test_id("filter-state").click()
        page.get_by_role("option", name="STOPPED", exact=True).click()
        page.keyboard.press("Escape")
        box.fill("")
        page.keyboard.type("desk", delay=80)
        box.fill("")
        time.sleep(0.5)
    progress("  filtering")
    out["filter"] = measured(page, filter_)
    if before and viewer and source:
        seconds = time.monotonic() - before[1]
        out["log_stream"] = {"lines_per_second_received_by_the_page": round((received(viewer) - before[0]) / seconds),
                             "lines_per_second_written_by_the_bot": round((source.newest() - seq0) / seconds)}
        progress(f"  log stream meanwhile: {out['log_stream']}")
    out["cpu"] = cpu.stop()
    progress(f"  CPU meanwhile (cores): {out['cpu']}")
    events = stop_trace(browser, args, "table")
    out["renderers"] = by_renderer(events)
    return out


def logs_phase(browser: Any, page: Page, source: LogSource, args: argparse.Namespace, cpu: CPU) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cpu.start()
    browser.start_tracing(page=page, categories=CATEGORIES)
    before, seq0, t0 = received(page), source.newest(), time.monotonic()
    out["follow"] = measured(page, lambda: time.sleep(args.seconds))
    seconds = time.monotonic() - t0
    out["lines_per_second_received"] = round((received(page) - before) / seconds)
    out["lines_per_second_written_by_bot"] = round((source.newest() - seq0) / seconds)

    def search() -> None:
        page.get_by_role("textbox", name="Search log lines").click()
        page.keyboard.type("order", delay=80)
        time.sleep(args.seconds / 2)
        page.get_by_role("textbox", name="Search log lines").fill("")
    out["search"] = measured(page, search)
    out["cpu"] = cpu.stop()
    out["renderers"] = by_renderer(stop_trace(browser, args, "logs"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--create", choices=["sql", "api"], default="sql",
                        help="how the instances are made: rows written before the api starts (seconds), or "
                             "POST /api/v1/instances one by one (~25 s more for 1,000 here)")
    parser.add_argument("--log-rate", type=int, default=10_000, help="lines/s of the stand-in bot (0: no log stream)")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of the scroll and of the log viewer's follow")
    parser.add_argument("--redis-url", default=os.environ.get("BOTFLEET_BENCH_REDIS_URL", "redis://127.0.0.1:6379/6"))
    parser.add_argument("--trace", default="", help="keep the traces: PATH.table.json, PATH.logs.json")
    parser.add_argument("--timeout", type=float, default=420, help="give up (exit 2) after this many seconds (--create api adds ~25 s for 1,000)")
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    phases = Phases()
    timer = watchdog(args.timeout, phases)
    try:
        result = run(args, phases)
    except KeyboardInterrupt:
        progress(f"stopped in phase {phases.timed_out or phases.current!r} (the stack was stopped)")
        return 2
    finally:
        timer.cancel()
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    progress(f"done in {time.monotonic() - START:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
