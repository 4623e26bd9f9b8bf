"""Driving the web page with Playwright (sync API) and Debian's chromium: the browser launch
and the few page steps the tests and the screenshot script share."""

from __future__ import annotations

import shutil
from pathlib import Path

from playwright.sync_api import Browser, Page, Playwright, expect

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def chromium_missing() -> str | None:
    """Why the browser tests cannot run, or None when chromium is there."""
    if CHROMIUM.is_file():
        return None
    found = shutil.which("chromium")
    return (f"chromium is not at {CHROMIUM}"
            + (f" (found {found}: the tests use the Debian path)" if found else "")
            + ": install it with `apt-get install -y --no-install-recommends chromium` "
              "(.ci/run does this on CI); the browser tests need it")


def launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def sign_in(page: Page, url: str, token: str) -> None:
    """Open the page and sign in with `token`; returns once the report builder is shown."""
    page.goto(url + "/")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Build a report")).to_be_visible()


def show_report(page: Page, *, start: str, end: str, granularity: str = "day",
                tenants: tuple[str, ...] = (), kind: str | None = None) -> None:
    """Fill the report builder and wait for the result heading."""
    if kind is not None:
        page.get_by_label("Report", exact=True).select_option(kind)
    for name in tenants:
        page.locator("#r-tenants").get_by_label(name).check()
    page.get_by_label("From", exact=True).fill(start)
    page.get_by_label("To", exact=True).fill(end)
    page.get_by_label("Granularity").select_option(granularity)
    page.get_by_role("button", name="Show report").click()
    expect(page.locator("#report-output")).to_be_visible()
    expect(page.get_by_role("button", name="Show report")).to_be_enabled()


def table_rows(page: Page) -> list[list[str]]:
    """The report table's body cells as text, row by row."""
    rows: list[list[str]] = page.locator("#report-table tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent.trim()))")
    return rows


def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the document is wider than the viewport (0: no sideways scroll)."""
    overflow: int = page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - document.documentElement.clientWidth")
    return overflow
