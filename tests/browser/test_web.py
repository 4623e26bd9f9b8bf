"""The web page (SPEC §8) in a real chromium against a real report server over the hand-made LRM
DB: sign-in, the report builder, table, chart, freshness notice and CSV download, what a tenant
token can reach, provisioned counts, uploads, error states and narrow screens."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from playwright.sync_api import Page, Route, expect

from tests.browser import ui
from tests.integration.api_server import Api

FIXTURES = Path(__file__).resolve().parents[1] / "integration" / "fixtures"

# Tenant 101 (Acme), item 1, 2026-11-02 … 2026-11-12 by day, as the table shows it: the
# hand-made values 5 7 7 3 1 4 9 9 at (10 + value):30, limits 6 from 11-01 and 10 from 11-10.
ACME_DAYS = [
    ["2026-11-02", "Monday", "15:30", "5", "6", "2026-11-01", "No"],
    ["2026-11-03", "Tuesday", "17:30", "7", "6", "2026-11-01", "Over"],
    ["2026-11-04", "Wednesday", "17:30", "7", "6", "2026-11-01", "Over"],
    ["2026-11-05", "Thursday", "13:30", "3", "6", "2026-11-01", "No"],
    ["2026-11-06", "Friday", "11:30", "1", "6", "2026-11-01", "No"],
    ["2026-11-09", "Monday", "14:30", "4", "6", "2026-11-01", "No"],
    ["2026-11-10", "Tuesday", "19:30", "9", "10", "2026-11-10", "No"],
    ["2026-11-12", "Thursday", "19:30", "9", "10", "2026-11-10", "No"],
]


def api_get(api: Api, path: str, token: str, **params: object) -> httpx.Response:
    return httpx.get(api.url + path, params=params,  # type: ignore[arg-type]
                     headers={"Authorization": f"Bearer {token}"}, timeout=10)


def over_cell(page: Page, period: str) -> str:
    row = page.locator("#report-table tbody tr", has_text=period)
    return row.locator("td.col-over_limit").inner_text().strip()


def test_page_is_served_beside_an_unchanged_api(api: Api) -> None:
    """`/` serves the page; API 404/405 answers and the OpenAPI paths are unchanged."""
    page = httpx.get(api.url + "/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<script type="module" src="js/main.js">' in page.text
    script = httpx.get(api.url + "/js/main.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert not re.search(r"https?://", script.text)
    assert httpx.get(api.url + "/api/v1/no-such-thing").json() == {"detail": "Not Found"}
    wrong_method = httpx.post(api.url + "/api/v1/tenants")
    assert (wrong_method.status_code, wrong_method.headers["allow"]) == (405, "GET")
    assert httpx.get(api.url + "/api/v1/health").json()["status"] == "ok"
    paths = httpx.get(api.url + "/api/v1/openapi.json").json()["paths"]
    assert all(path.startswith("/api/v1/") for path in paths)


def test_tenant_signs_in_and_reads_a_report_with_chart_table_weekly_and_csv(
        page: Page, api: Api) -> None:
    """A tenant signs in, reads day and week reports and downloads the API's exact CSV."""
    origins: set[str] = set()
    page.on("request", lambda request: origins.add(
        re.sub(r"^(https?://[^/]+)/.*", r"\1", request.url)))
    page.goto(api.url + "/")
    expect(page.get_by_label("API token")).to_be_focused()
    page.keyboard.type(api.tenant_a)
    page.keyboard.press("Enter")
    expect(page.locator("#who")).to_have_text("Acme")
    assert page.evaluate("sessionStorage.getItem('lrm.token')") == api.tenant_a

    ui.show_report(page, start="2026-11-02", end="2026-11-12")
    assert [row[:4] for row in ui.table_rows(page)] == [["101", "Acme", "1",
                                                        "Concurrent seat"]] * 8
    assert [row[4:] for row in ui.table_rows(page)] == ACME_DAYS
    expect(page.locator("#report-table tbody tr.over")).to_have_count(2)
    expect(page.locator("#over-count")).to_have_text("2")
    expect(page.locator("#freshness")).to_contain_text(
        "2026-11-07 – 2026-11-08, 2026-11-11")
    chart = page.locator("#chart svg")
    expect(chart).to_have_attribute("aria-label", re.compile(r"highest peak 9 .*over the "
                                                             r"limit in 2 of 8 periods"))
    expect(chart.locator(".c-over-dot")).to_have_count(2)
    expect(chart.locator(".c-limit")).to_have_count(1)
    chart.focus()
    page.keyboard.press("End")
    expect(page.locator("#chart-readout")).to_have_text(
        "2026-11-12 (peak at 19:30): peak 9, limit 10")

    ui.show_report(page, start="2026-11-02", end="2026-11-12", granularity="week")
    weekly = api_get(api, "/api/v1/reports/tenant", api.tenant_a, tenant=101,
                     **{"from": "2026-11-02", "to": "2026-11-12", "granularity": "week"})
    expected = [[str(r["period_start"]), str(r["peak_time"]), str(r["peak_value"]),
                 str(r["limit"]), "Over" if r["over_limit"] else "No"]
                for r in weekly.json()["rows"]]
    shown = [[row[4], row[6], row[7], row[8], row[10]] for row in ui.table_rows(page)]
    assert shown == expected
    assert shown[0] == ["2026-11-02", "2026-11-04 17:30", "7", "6", "Over"]

    with page.expect_download() as info:
        page.get_by_role("button", name="Download CSV").click()
    download = info.value
    assert download.suggested_filename == "lrm-tenant-2026-11-02-2026-11-12-week.csv"
    csv = api_get(api, "/api/v1/reports/tenant", api.tenant_a, tenant=101, format="csv",
                  **{"from": "2026-11-02", "to": "2026-11-12", "granularity": "week"})
    assert Path(download.path()).read_bytes() == csv.content
    assert {o for o in origins if not o.startswith(("blob:", "data:"))} == {api.url}


def test_tenant_token_reaches_neither_system_reports_nor_other_tenants(
        page: Page, api: Api) -> None:
    """A tenant token is offered only its tenant and groups; the API refuses the rest."""
    ui.sign_in(page, api.url, api.tenant_a)
    expect(page.locator("#r-tenants input")).to_have_count(1)
    expect(page.locator("#r-tenants")).to_contain_text("Acme")
    assert page.locator("#r-kind option[value=system]").evaluate(
        "option => option.hidden && option.disabled")
    page.get_by_label("Report", exact=True).select_option("agent-group")
    assert page.locator("#r-group option").all_inner_texts() == ["Sales (7001)"]
    for tab in ("Provisioned counts", "Uploads", "Job runs"):
        expect(page.get_by_role("link", name=tab)).to_be_hidden()
    page.goto(api.url + "/#jobs")
    expect(page.get_by_role("heading", name="Build a report")).to_be_visible()
    expect(page.locator("#view-jobs")).to_be_hidden()
    statuses = page.evaluate("""async () => {
        const auth = {Authorization: 'Bearer ' + sessionStorage.getItem('lrm.token')};
        const paths = ['/api/v1/reports/system?from=2026-11-02&to=2026-11-03',
                       '/api/v1/reports/tenant?tenant=102&from=2026-11-02&to=2026-11-03',
                       '/api/v1/reports/agent-group?group=7002&from=2026-11-02&to=2026-11-03',
                       '/api/v1/jobs'];
        return Promise.all(paths.map(p => fetch(p, {headers: auth}).then(r => r.status)));
    }""")
    assert statuses == [403, 403, 403, 403]
    ui.show_report(page, start="2026-11-02", end="2026-11-12")
    assert "Beta" not in page.locator("body").inner_text()


def test_provider_changes_a_provisioned_count_and_over_limit_follows(
        page: Page, api: Api) -> None:
    """A provider adds, then deletes, a lower limit and the report's over-limit mark follows."""
    ui.sign_in(page, api.url, api.provider)
    expect(page.locator("#who")).to_have_text("Provider")
    ui.show_report(page, start="2026-11-12", end="2026-11-12", tenants=("Acme",))
    assert over_cell(page, "2026-11-12") == "No"

    page.get_by_role("link", name="Provisioned counts").click()
    expect(page.locator("#prov-table tbody tr")).to_have_count(2)
    page.get_by_label("Tenant", exact=True).select_option(label="Acme (101)")
    page.get_by_label("Item or bundle").select_option(label="Concurrent seat (1)")
    page.get_by_label("Effective from").fill("2026-11-11")
    page.get_by_label("Quantity").fill("8")
    page.get_by_role("button", name="Save limit").click()
    expect(page.locator("#prov-form-message")).to_have_text(
        "Added: Acme, Concurrent seat, from 2026-11-11: 8.")
    expect(page.locator("#prov-table tbody tr")).to_have_count(3)
    expect(page.locator("#prov-table tbody tr.fresh")).to_contain_text("2026-11-11")

    page.get_by_role("link", name="Reports").click()
    ui.show_report(page, start="2026-11-12", end="2026-11-12")
    assert ui.table_rows(page)[0][8:] == ["8", "2026-11-11", "Over"]
    expect(page.locator("#report-table tbody tr.over")).to_have_count(1)

    page.get_by_role("link", name="Provisioned counts").click()
    page.get_by_role("button", name="Delete Acme, Concurrent seat, from 2026-11-11").click()
    page.get_by_role("button", name="Confirm: delete Acme, Concurrent seat, from 2026-11-11"
                     ).click()
    expect(page.locator("#prov-table tbody tr")).to_have_count(2)
    page.get_by_role("link", name="Reports").click()
    ui.show_report(page, start="2026-11-12", end="2026-11-12")
    assert over_cell(page, "2026-11-12") == "No"


def test_invalid_bundle_set_shows_every_problem_next_to_the_file(page: Page, api: Api) -> None:
    """An invalid bundle file shows the server's problems beside it; valid uploads are stored."""
    ui.sign_in(page, api.url, api.provider)
    page.get_by_role("link", name="Uploads").click()
    expect(page.locator("#bundle-set-list")).to_contain_text("No bundle set uploaded yet.")
    form = page.locator("#upload-bundle-set")
    form.get_by_label("Bundle set file (XML)").set_input_files(FIXTURES / "bundle_set_bad_ids.xml")
    form.get_by_role("button", name="Upload bundle set").click()
    error = form.locator(".message.error")
    expect(error).to_contain_text("bundle_set_bad_ids.xml was refused")
    problems = error.locator("li").all_inner_texts()
    headers = {"Authorization": f"Bearer {api.provider}", "Content-Type": "application/xml"}
    refused = httpx.post(api.url + "/api/v1/bundle-sets", headers=headers,
                         content=(FIXTURES / "bundle_set_bad_ids.xml").read_bytes())
    assert problems == refused.json()["problems"]
    assert any("9999" in p for p in problems) and any("duplicate" in p for p in problems)
    expect(page.locator("#bundle-set-list")).to_contain_text("No bundle set uploaded yet.")

    form.get_by_label("Bundle set file (XML)").set_input_files(FIXTURES / "bundle_set_valid.xml")
    form.get_by_role("button", name="Upload bundle set").click()
    expect(form.locator(".message.ok")).to_contain_text(
        "Stored bundle set 10000 “Hosted bundles 2026”: 2 bundles")
    expect(page.locator("#bundle-set-list")).to_contain_text("Voice agent without chat")
    page.get_by_role("link", name="Reports").click()
    expect(page.locator("#r-items")).to_contain_text("Any multimedia")

    entitlement = page.locator("#upload-entitlement")
    page.get_by_role("link", name="Uploads").click()
    entitlement.get_by_label("Entitlement file (XML)").set_input_files(
        FIXTURES / "entitlement_valid.xml")
    entitlement.get_by_role("button", name="Upload entitlement file").click()
    expect(entitlement.locator(".message.ok")).to_contain_text("Hosted Provider")
    expect(page.locator("#entitlement-list")).to_contain_text("Hosted Provider")


def test_job_runs_show_status_and_sources(page: Page, api: Api) -> None:
    """The provider's job runs page lists every run with its status, newest date first."""
    ui.sign_in(page, api.url, api.provider)
    page.get_by_role("link", name="Job runs").click()
    rows = page.locator("#jobs-table tbody tr")
    expect(rows).to_have_count(8)
    expect(rows.first).to_contain_text("2026-11-12")
    expect(rows.first.locator(".badge")).to_have_text("succeeded")


def test_no_horizontal_overflow_at_390_and_1280_px(page: Page, api: Api) -> None:
    """No screen scrolls sideways at 390 px or 1280 px (wide tables scroll in their box)."""
    page.goto(api.url + "/")
    for viewport in (ui.PHONE, ui.DESKTOP):
        page.set_viewport_size(viewport)
        expect(page.get_by_label("API token")).to_be_visible()
        assert ui.horizontal_overflow(page) == 0, ("sign-in", viewport)
        ui.sign_in(page, api.url, api.provider)
        ui.show_report(page, start="2026-11-02", end="2026-11-12", tenants=("Acme", "Beta"))
        expect(page.locator("#chart svg")).to_be_visible()
        assert ui.horizontal_overflow(page) == 0, ("report", viewport)
        for view, ready in (("provisioning", "#prov-table tbody tr"),
                            ("uploads", "#bundle-set-list > *"),
                            ("jobs", "#jobs-table tbody tr")):
            page.goto(f"{api.url}/#{view}")
            expect(page.locator(ready).first).to_be_visible()
            assert ui.horizontal_overflow(page) == 0, (view, viewport)
        page.get_by_role("button", name="Sign out").click()


def test_rejected_token_returns_to_sign_in_with_a_message(page: Page, api: Api) -> None:
    """A refused token sends the user to sign-in with a message; sign-out forgets the token."""
    page.goto(api.url + "/")
    page.get_by_label("API token").fill("lrm_not-a-real-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-message")).to_contain_text("unknown or has been revoked")

    ui.sign_in(page, api.url, api.tenant_b)
    page.evaluate("sessionStorage.setItem('lrm.token', 'lrm_revoked-meanwhile')")
    page.get_by_label("From", exact=True).fill("2026-11-02")
    page.get_by_label("To", exact=True).fill("2026-11-03")
    page.get_by_role("button", name="Show report").click()
    expect(page.locator("#signin-message")).to_contain_text("no longer accepted")
    expect(page.get_by_label("API token")).to_be_focused()
    assert page.evaluate("sessionStorage.getItem('lrm.token')") is None

    ui.sign_in(page, api.url, api.tenant_b)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API token")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('lrm.token')") is None
    page.reload()
    expect(page.get_by_label("API token")).to_be_visible()


def test_unavailable_database_is_said_plainly(page: Page, api: Api) -> None:
    """A 503 says "the database is not available" at sign-in and on a report."""
    body = json.dumps({"error": "the LRM database is not available: connection refused",
                       "status": 503, "problems": ["connection refused"]})

    def unavailable(route: Route) -> None:
        route.fulfill(status=503, body=body, content_type="application/json")

    page.route("**/api/v1/tenants", unavailable)
    page.goto(api.url + "/")
    page.get_by_label("API token").fill(api.tenant_a)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-message")).to_contain_text("The database is not available")
    expect(page.get_by_label("API token")).to_have_value(api.tenant_a)
    page.unroute("**/api/v1/tenants")

    ui.sign_in(page, api.url, api.tenant_a)
    page.route("**/api/v1/reports/**", unavailable)
    page.get_by_role("button", name="Show report").click()
    expect(page.locator("#banner")).to_contain_text("The database is not available")
    expect(page.locator("#report-form-error")).to_contain_text("The database is not available")
    expect(page.get_by_role("heading", name="Build a report")).to_be_visible()


def test_every_control_has_a_label_and_bad_ranges_are_explained(page: Page, api: Api) -> None:
    """Every visible control has an accessible name; impossible date ranges are explained."""
    ui.sign_in(page, api.url, api.provider)
    for view in ("report", "provisioning", "uploads", "jobs"):
        page.goto(f"{api.url}/#{view}")
        unnamed = page.evaluate("""() => [...document.querySelectorAll(
                'input, select, textarea, button, [tabindex="0"]')]
            .filter(el => el.offsetParent !== null)
            .filter(el => !((el.labels && el.labels.length) || el.getAttribute('aria-label')
                            || el.getAttribute('aria-labelledby') || el.textContent.trim()))
            .map(el => el.outerHTML.slice(0, 80))""")
        assert unnamed == [], view
    page.goto(api.url + "/#report")
    page.get_by_label("From", exact=True).fill("2026-11-12")
    page.get_by_label("To", exact=True).fill("2026-11-02")
    page.get_by_role("button", name="Show report").click()
    expect(page.locator("#report-form-error")).to_have_text("From must be on or before To.")
    page.get_by_label("To", exact=True).fill("2026-11-30")
    page.get_by_label("Granularity").select_option("detailed")
    page.get_by_role("button", name="Show report").click()
    expect(page.locator("#report-form-error")).to_contain_text("at most 7 days")
