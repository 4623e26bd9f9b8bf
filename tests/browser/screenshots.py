"""Screenshots of the web page's main screens for docs/screenshots/, over the same hand-made
LRM DB as the browser tests (plus a month of usage so the chart has something to show).

    uv run python -m tests.browser.screenshots            # write docs/screenshots/*.png
    uv run python -m tests.browser.screenshots --serve    # only serve (until SIGINT/SIGTERM)

It starts its own embedded PostgreSQL server in a temporary folder and removes it at the end."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa
from playwright.sync_api import Page, expect, sync_playwright

from lrm.store import migrate
from lrm.store.db import create_engine, ensure_database
from lrm.store.embedded import EmbeddedPostgres, ServerSettings
from lrm.store.schema import job_run, provisioned_count, usage_daily
from tests.browser import ui
from tests.integration.api_server import Api, at, running_api

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
FIXTURES = Path(__file__).resolve().parents[1] / "integration" / "fixtures"
TEMPLATE = "lrm_template"
# A month for tenant 101 on top of the hand-made days: voice seats (item 2) with a limit.
MONTH = [date(2026, 10, 1) + timedelta(days=i) for i in range(31)]
VOICE = [22, 25, 27, 12, 10, 29, 31, 30, 28, 33, 13, 11, 30, 32, 34, 31, 29, 12, 10, 33, 35,
         36, 34, 30, 14, 12, 31, 33, 32, 29, 27]


def add_month(engine: sa.Engine) -> None:
    """October 2026 for tenant 101: voice seats every day but the 19th, a limit of 30 that
    rises to 35 on the 20th."""
    days = [(d, v) for d, v in zip(MONTH, VOICE, strict=True) if d.day != 19]
    with engine.begin() as c:
        c.execute(sa.insert(usage_daily), [
            {"level": "tenant", "subject_id": 101, "item_id": 2, "business_date": d,
             "peak_value": v, "peak_time": at(d, 9 + v % 8, 15), "run_id": 1}
            for d, v in days])
        c.execute(sa.insert(provisioned_count), [
            {"tenant_id": 101, "item_id": 2, "effective_date": date(2026, 10, 1), "quantity": 30},
            {"tenant_id": 101, "item_id": 2, "effective_date": date(2026, 10, 20),
             "quantity": 35}])
        c.execute(sa.insert(job_run), [
            {"business_date": d, "instance_id": "lrm-a", "epoch": 1, "trigger": "schedule",
             "status": "succeeded", "sessions_read": 1800 + 17 * v,
             "sessions_deduplicated": 900 + 8 * v,
             "started_at": at(d + timedelta(days=1), 2, 0),
             "finished_at": at(d + timedelta(days=1), 2, 0) + timedelta(seconds=40 + v),
             "source_outcome": {"idb-1a": {"status": "ok", "rows": 900 + 9 * v},
                                "idb-1b": {"status": "ok", "rows": 900 + 8 * v},
                                "gvp": {"status": "ok", "servers": ["gvp-rs-1"]}}}
            for d, v in days])
        c.execute(sa.insert(job_run), [
            {"business_date": date(2026, 10, 19), "instance_id": "lrm-b", "epoch": 2,
             "trigger": "schedule", "status": "failed",
             "started_at": at(date(2026, 10, 20), 2, 0),
             "finished_at": at(date(2026, 10, 20), 2, 1),
             "error": "idb-1a: connection refused; idb-1b: connection refused",
             "source_outcome": {"idb-1a": {"status": "failed", "error": "connection refused"},
                                "idb-1b": {"status": "failed", "error": "connection refused"}}}])


@contextmanager
def server() -> Iterator[Api]:
    folder = Path(tempfile.mkdtemp(prefix="lrm-screenshots-"))
    pg = EmbeddedPostgres(folder / "data", settings=ServerSettings(durable=False))
    pg.start()
    try:
        ensure_database(pg.url(), TEMPLATE)
        engine = create_engine(pg.url(TEMPLATE))
        migrate.upgrade(engine)
        engine.dispose()
        with running_api(pg, TEMPLATE) as api:
            add_month(api.engine)
            yield api
    finally:
        pg.destroy()
        shutil.rmtree(folder, ignore_errors=True)


def shoot(page: Page, name: str, *, full_page: bool = True) -> None:
    """A picture from the top, with no hover or focus ring on it."""
    page.mouse.move(0, 0)
    page.evaluate("document.activeElement?.blur(); window.scrollTo(0, 0)")
    page.wait_for_timeout(150)
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=full_page)
    print(OUT / f"{name}.png")


def take(api: Api) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = ui.launch(playwright)
        page = browser.new_page(viewport=ui.DESKTOP, device_scale_factor=1)
        page.goto(api.url + "/")
        expect(page.get_by_label("API token")).to_be_focused()
        shoot(page, "sign-in")

        ui.sign_in(page, api.url, api.provider)
        ui.show_report(page, start="2026-10-01", end="2026-10-31", tenants=("Acme",))
        shoot(page, "tenant-report")

        page.get_by_role("link", name="Provisioned counts").click()
        expect(page.locator("#prov-table tbody tr")).to_have_count(4)
        page.get_by_role("button", name="Change Acme, Voice seat, from 2026-10-20").click()
        page.get_by_label("Effective from").fill("2026-11-01")
        page.get_by_label("Quantity").fill("40")
        page.get_by_role("button", name="Save limit").click()
        expect(page.locator("#prov-table tbody tr.fresh")).to_have_count(1)
        shoot(page, "provisioning")

        page.get_by_role("link", name="Uploads").click()
        page.get_by_label("Bundle set file (XML)").set_input_files(
            FIXTURES / "bundle_set_bad_ids.xml")
        page.get_by_role("button", name="Upload bundle set").click()
        expect(page.locator("#upload-bundle-set .message.error")).to_be_visible()
        shoot(page, "upload-error")

        page.get_by_role("link", name="Job runs").click()
        expect(page.locator("#jobs-table tbody tr").first).to_be_visible()
        shoot(page, "job-runs", full_page=False)

        phone = browser.new_page(viewport=ui.PHONE, device_scale_factor=1)
        ui.sign_in(phone, api.url, api.tenant_a)
        ui.show_report(phone, start="2026-11-02", end="2026-11-12")
        shoot(phone, "tenant-report-phone")
        browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="run the server until Ctrl-C")
    args = parser.parse_args()
    with server() as api:
        if args.serve:
            print(f"{api.url}/  provider={api.provider}  tenant_a={api.tenant_a}", flush=True)
            stop = threading.Event()
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: stop.set())
            while not stop.wait(1):
                pass
            return 0
        take(api)
    return 0


if __name__ == "__main__":
    sys.exit(main())
