"""Fixtures of the browser tests: one chromium for the session (Debian's, never a downloaded
one), one real report server per module over the hand-made LRM DB, a fresh page per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from lrm.store.embedded import EmbeddedPostgres
from tests.browser import ui
from tests.integration.api_server import Api, running_api


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless chromium; the tests fail (never skip) when it is not installed."""
    missing = ui.chromium_missing()
    if missing:
        pytest.fail(missing, pytrace=False)
    with sync_playwright() as playwright:
        browser = ui.launch(playwright)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def api(pg_server: EmbeddedPostgres, lrm_template: str) -> Iterator[Api]:
    with running_api(pg_server, lrm_template) as server:
        yield server


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in its own browser context (own sessionStorage); a JavaScript error on the page
    fails the test."""
    context = browser.new_context(viewport=ui.DESKTOP, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
