"""The log viewer's jump to time, end to end: a chatty stand-in bot writes thousands of lines
through the real agent into the api's log stream; the user picks a date-time older than the
lines the live stream sent, and the viewer reads older pages through ``/logs/range`` and shows
the lines from that time on: by the UTC time the agent printed at the start of each line
(``2026-08-22T12:34:56.123456Z ``, agent/capture.py), not by when the api received it."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Panel

# a real stack and Chromium on a shared 2-core machine: deadlines, not speed, are tested
pytestmark = pytest.mark.timeout(300)

TAIL = 2000  # the instance page opens the stream with ?tail=2000


def _id_ms(stream_id: str) -> int:
    """A Redis stream id's time (``<ms>-<n>``), in milliseconds since the epoch."""
    return int(stream_id.split("-")[0])


def _printed_ms(line: str) -> int:
    """The UTC time the agent printed at the start of a captured line, in ms since the epoch."""
    stamp = line.split(" ", 1)[0]
    assert stamp.endswith("Z"), line
    return int(datetime.fromisoformat(stamp).timestamp() * 1000)


def test_jump_to_time_reads_older_lines_and_shows_that_moment(panel: Panel) -> None:
    with panel.api() as api:
        bot = panel.create_instance("e2e-jump", env={"BOTFLEET_DEMO_LINES_PER_SEC": "1000",
                                                     "BOTFLEET_DEMO_LOG_FILE": "0"})
        logs = f"/api/v1/instances/{bot['id']}/logs/range"
        api.post(f"/api/v1/instances/{bot['id']}/start").raise_for_status()
        deadline = time.monotonic() + 90
        while True:  # lines spread over several seconds, and far more than the stream's tail
            items = api.get(logs, params={"limit": 5000}).json()["items"]
            if len(items) == 5000 and _id_ms(items[-1]["id"]) - _id_ms(items[0]["id"]) >= 3000:
                break
            assert time.monotonic() < deadline, "the stand-in did not write 5,000 lines over 3 s within 90 s"
            time.sleep(0.5)
        api.post(f"/api/v1/instances/{bot['id']}/stop").raise_for_status()
        while api.get(f"/api/v1/instances/{bot['id']}").json()["state"] not in ("STOPPED", "EXITED"):
            assert time.monotonic() < deadline + 60, "the stand-in did not stop within 60 s"
            time.sleep(0.5)
        # every line since the bot started, oldest first (pages of 5,000 back to the start)
        lines = api.get(logs, params={"limit": 5000}).json()
        items, before = lines["items"], lines["next_before"]
        while before:
            page_ = api.get(logs, params={"limit": 5000, "before": before}).json()
            items, before = page_["items"] + items, page_["next_before"]

    # a whole second well before the stream's tail: the first line printed at or after it is
    # the target (the stand-in's lines all carry the agent's timestamp)
    second_ms = _printed_ms(items[len(items) - TAIL - 1500]["line"]) // 1000 * 1000
    target = next(i for i, e in enumerate(items) if _printed_ms(e["line"]) >= second_ms)
    assert target < len(items) - TAIL, "the target must be older than what the live stream sends"

    panel.login()
    page = panel.go(f"/instances/{bot['id']}")
    count = page.get_by_test_id("log-count")
    expect(count).to_contain_text(f"{TAIL} shown")
    # the chosen moment in the browser's own time zone, as the datetime-local input takes it
    local = page.evaluate("""ms => { const d = new Date(ms), p = (n) => String(n).padStart(2, '0');
        return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`; }""",
                          second_ms)
    page.get_by_role("textbox", name="Jump to time").fill(local)
    with page.expect_response(lambda r: "/logs/range" in r.url and r.ok):
        page.get_by_test_id("log-jump").click()

    shown = page.get_by_test_id("log-line")
    expect(shown.filter(has_text=items[target]["line"])).to_be_visible()
    expect(shown.filter(has_text=items[target + 5]["line"])).to_be_visible()  # and what follows it
    expect(shown.filter(has_text=items[-1]["line"])).to_have_count(0)  # the newest line is out of view
    expect(count).to_contain_text("older read back")
    expect(page.get_by_test_id("log-follow")).to_have_text("Paused")
    panel.shot("instance-logs-jump")
