"""Readable in light and dark themes (issue 4 item 9): on every page, each piece of text has a
WCAG 2.x contrast ratio of at least 4.5:1 against the background it is drawn on. Disabled
controls are exempt (WCAG 1.4.3 "inactive user interface component"), as is the red asterisk
beside a required field's label (the field itself carries ``required``)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Panel

# a real stack and Chromium on a shared 2-core machine: deadlines, not speed, are tested
pytestmark = pytest.mark.timeout(400)
expect.set_options(timeout=20_000)

PAGES = ["/", "/instances", "/instances/new", "/jobs", "/hosts", "/settings"]
AA = 4.5

#: [tag, text, colour, background] of every element with its own visible text; the background
#: is the first non-transparent one up the tree.
TEXTS = """() => {
  const bgOf = (e) => {
    for (; e; e = e.parentElement) {
      const c = getComputedStyle(e).backgroundColor;
      if (c && c !== 'transparent' && !/,\\s*0\\)$/.test(c)) return c;
    }
    return 'rgb(255, 255, 255)';
  };
  const out = [];
  for (const e of document.querySelectorAll('body *')) {
    const text = [...e.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent.trim()).join(' ').trim();
    if (!text || text === '*' || !e.offsetParent) continue;
    const control = e.closest('button, [role=button], input, a');
    if (control && (control.disabled || control.hasAttribute('data-disabled') || control.getAttribute('aria-disabled') === 'true')) continue;
    out.push([e.tagName, text.slice(0, 40), getComputedStyle(e).color, bgOf(e)]);
  }
  return out;
}"""


def contrast(fg: str, bg: str) -> float:
    """WCAG 2.x contrast ratio of two CSS ``rgb()``/``rgba()`` colours
    (https://www.w3.org/TR/WCAG21/#dfn-contrast-ratio)."""
    def luminance(css: str) -> float:
        r, g, b = (float(v) / 255 for v in re.findall(r"[\d.]+", css)[:3])
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_every_page_is_readable_in_light_and_dark_themes(panel: Panel) -> None:
    page = panel.login()
    failures: list[str] = []
    for route in PAGES:
        panel.go(route)
        page.wait_for_load_state("networkidle")
        for scheme in ("light", "dark"):
            if page.locator("html").get_attribute("data-mantine-color-scheme") != scheme:
                page.get_by_role("button", name=re.compile(f"Switch to {scheme} theme")).click()
            expect(page.locator("html")).to_have_attribute("data-mantine-color-scheme", scheme)
            page.wait_for_timeout(300)  # colour transitions
            for tag, text, fg, bg in page.evaluate(TEXTS):
                ratio = contrast(fg, bg)
                if ratio < AA:
                    failures.append(f"{route} {scheme}: {tag} {text!r} {fg} on {bg} = {ratio:.2f}:1")
    assert not failures, "\n".join(sorted(set(failures)))
