"""The report API on a running server over a hand-made LRM DB: pinned bodies, roles and tenant
isolation, provisioned counts, uploads and bad requests (SPEC §7)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lrm.store.embedded import EmbeddedPostgres
from tests.integration.api_server import Api, running_api

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def api(pg_server: EmbeddedPostgres, lrm_template: str) -> Iterator[Api]:
    with running_api(pg_server, lrm_template) as server:
        yield server


def get(api: Api, path: str, token: str | None, **kwargs: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request("GET", api.url + path, headers=headers, timeout=10,
                         **kwargs)  # type: ignore[arg-type]


def test_tenant_report_json_body(api: Api) -> None:
    """The whole JSON document of a small tenant report."""
    response = get(api, "/api/v1/reports/tenant", api.provider,
                   params={"tenant": 101, "from": "2026-11-09", "to": "2026-11-11"})
    assert response.status_code == 200
    body = response.json()
    body.pop("generated_at")
    assert body == {
        "report": "tenant", "granularity": "day", "week_start": "monday",
        "from": "2026-11-09", "to": "2026-11-11",
        "freshness": {"last_complete_date": "2026-11-12", "missing_dates": ["2026-11-11"]},
        "columns": ["tenant_id", "tenant_name", "item_id", "item_name", "period_start",
                    "weekday", "peak_time", "peak_value", "limit", "limit_effective_date",
                    "over_limit"],
        "rows": [
            {"tenant_id": 101, "tenant_name": "Acme", "item_id": 1,
             "item_name": "Concurrent seat", "period_start": "2026-11-09", "weekday": "Monday",
             "peak_time": "14:30", "peak_value": 4, "limit": 6,
             "limit_effective_date": "2026-11-01", "over_limit": False},
            {"tenant_id": 101, "tenant_name": "Acme", "item_id": 1,
             "item_name": "Concurrent seat", "period_start": "2026-11-10", "weekday": "Tuesday",
             "peak_time": "19:30", "peak_value": 9, "limit": 10,
             "limit_effective_date": "2026-11-10", "over_limit": False}]}


def test_csv_by_parameter_and_by_accept_header(api: Api) -> None:
    """format=csv and Accept: text/csv give the same CSV body, with a header line and a
    download file name."""
    params = {"from": "2026-11-02", "to": "2026-11-08", "granularity": "week"}
    by_param = get(api, "/api/v1/reports/tenant", api.tenant_a,
                   params={**params, "format": "csv"})
    by_accept = httpx.get(api.url + "/api/v1/reports/tenant", params=params,
                          headers={"Authorization": f"Bearer {api.tenant_a}",
                                   "Accept": "text/csv"})
    assert by_param.status_code == 200
    assert by_param.headers["content-type"] == "text/csv; charset=utf-8"
    assert by_param.headers["content-disposition"] == (
        'attachment; filename="lrm-tenant-2026-11-02-2026-11-08-week.csv"')
    assert by_param.text == by_accept.text == (
        "tenant_id,tenant_name,item_id,item_name,period_start,weekday,peak_time,peak_value,"
        "limit,limit_effective_date,over_limit\r\n"
        "101,Acme,1,Concurrent seat,2026-11-02,,2026-11-04 17:30,7,6,2026-11-01,true\r\n")


PROTECTED = [
    ("GET", "/api/v1/reports/tenant?from=2026-11-02&to=2026-11-03"),
    ("GET", "/api/v1/reports/tenant?tenant=101&from=2026-11-02&to=2026-11-03"),
    ("GET", "/api/v1/reports/tenant?tenant=102&from=2026-11-02&to=2026-11-03"),
    ("GET", "/api/v1/reports/system?from=2026-11-02&to=2026-11-03"),
    ("GET", "/api/v1/reports/agent-group?group=7001&from=2026-11-02&to=2026-11-03"),
    ("GET", "/api/v1/reports/agent-group?group=7002&from=2026-11-02&to=2026-11-03"),
    ("GET", "/api/v1/reports/place-group?group=8001&from=2026-11-02&to=2026-11-03"),
    ("GET", "/api/v1/provisioned-counts"),
    ("GET", "/api/v1/provisioned-counts?tenant=101"),
    ("PUT", "/api/v1/provisioned-counts"),
    ("DELETE", "/api/v1/provisioned-counts"),
    ("GET", "/api/v1/bundle-sets"),
    ("POST", "/api/v1/bundle-sets"),
    ("GET", "/api/v1/entitlements"),
    ("POST", "/api/v1/entitlements"),
    ("GET", "/api/v1/sellable-items"),
    ("GET", "/api/v1/tenants"),
    ("GET", "/api/v1/jobs"),
]
# Expected status per caller: none, provider, tenant A (101), tenant B (102).
EXPECTED = {
    "/api/v1/reports/tenant?from=2026-11-02&to=2026-11-03": (401, 200, 200, 200),
    "/api/v1/reports/tenant?tenant=101&from=2026-11-02&to=2026-11-03": (401, 200, 200, 403),
    "/api/v1/reports/tenant?tenant=102&from=2026-11-02&to=2026-11-03": (401, 200, 403, 200),
    "/api/v1/reports/system?from=2026-11-02&to=2026-11-03": (401, 200, 403, 403),
    "/api/v1/reports/agent-group?group=7001&from=2026-11-02&to=2026-11-03": (401, 200, 200, 403),
    "/api/v1/reports/agent-group?group=7002&from=2026-11-02&to=2026-11-03": (401, 200, 403, 200),
    "/api/v1/reports/place-group?group=8001&from=2026-11-02&to=2026-11-03": (401, 200, 200, 403),
    "/api/v1/provisioned-counts": (401, 200, 200, 200),
    "/api/v1/provisioned-counts?tenant=101": (401, 200, 200, 403),
    "PUT /api/v1/provisioned-counts": (401, 201, 403, 403),
    "DELETE /api/v1/provisioned-counts": (401, 404, 403, 403),
    "/api/v1/bundle-sets": (401, 200, 200, 200),
    "POST /api/v1/bundle-sets": (401, 422, 403, 403),
    "/api/v1/entitlements": (401, 200, 403, 403),
    "POST /api/v1/entitlements": (401, 422, 403, 403),
    "/api/v1/sellable-items": (401, 200, 200, 200),
    "/api/v1/tenants": (401, 200, 200, 200),
    "/api/v1/jobs": (401, 200, 403, 403),
}


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_every_endpoint_by_role(api: Api, method: str, path: str) -> None:
    """Every endpoint × {no token, provider, tenant A, tenant B}: 401 without a token, 403
    outside the token's tenants or role, never another tenant's data."""
    key = path if method == "GET" else f"{method} {path}"
    bodies = {"PUT": {"json": {"tenant_id": 101, "item_id": 1, "effective_date": "2026-12-01",
                               "quantity": 8}},
              "DELETE": {"json": {"tenant_id": 101, "item_id": 1,
                                  "effective_date": "2030-01-01"}},
              "POST": {"content": b"<not-xml", "headers": {"Content-Type": "application/xml"}}}
    for token, expected in zip((None, api.provider, api.tenant_a, api.tenant_b), EXPECTED[key],
                               strict=True):
        extra = dict(bodies.get(method, {}))
        headers = dict(extra.pop("headers", {}))  # type: ignore[arg-type]
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = httpx.request(method, api.url + path, headers=headers, timeout=10,
                                 **extra)  # type: ignore[arg-type]
        assert response.status_code == expected, (key, token, response.text)
        if response.status_code == 401:
            assert response.headers["www-authenticate"].startswith("Bearer")
        if token == api.tenant_a and response.status_code == 200 and method == "GET":
            assert "Beta" not in response.text and "\"tenant_id\": 102" not in response.text


def test_tenant_token_sees_only_its_tenants(api: Api) -> None:
    """Tenant listings and default reports contain only the token's tenants."""
    assert [t["id"] for t in get(api, "/api/v1/tenants", api.tenant_b).json()] == [102]
    rows = get(api, "/api/v1/reports/tenant", api.tenant_b,
               params={"from": "2026-11-02", "to": "2026-11-12"}).json()["rows"]
    assert {r["tenant_id"] for r in rows} == {102}
    counts = get(api, "/api/v1/provisioned-counts", api.tenant_b).json()
    assert counts == []


def test_invalid_token_is_401(api: Api) -> None:
    """An unknown token is refused like a missing one."""
    response = get(api, "/api/v1/tenants", "lrm_not-a-real-token")
    assert response.status_code == 401
    assert "unknown or revoked" in response.json()["error"]


@pytest.mark.parametrize(("params", "problem"), [
    ({"from": "2026-11-05", "to": "2026-11-01"}, "from: 2026-11-05 is after to"),
    ({"from": "2026-11-01", "to": "2026-11-30", "granularity": "detailed"},
     "to: detailed reports cover at most 7 days"),
    ({"from": "2026-11-01", "to": "2026-11-02", "tenant": 999}, "tenant: 999 is not a known"),
    ({"from": "2026-11-01", "to": "2026-11-02", "item": 4242}, "item: 4242 is not a sellable"),
    ({"from": "2026-1-1", "to": "2026-11-02"}, "from: '2026-1-1' is not a date"),
    ({"from": "2026-11-01", "to": "2026-11-02", "granularity": "hourly"}, "granularity"),
    ({"from": "2026-11-01"}, "to: Field required"),
    ({"from": "2026-11-01", "to": "2026-11-02", "tenant": "x"}, "tenant.0"),
])
def test_bad_requests_are_422_naming_the_parameter(api: Api, params: dict[str, object],
                                                   problem: str) -> None:
    """Bad parameters get a 422 whose problems name the parameter; never a 500."""
    response = get(api, "/api/v1/reports/tenant", api.provider, params=params)
    assert response.status_code == 422, response.text
    assert any(problem in p for p in response.json()["problems"]), response.json()


def test_provisioned_count_change_moves_over_limit(api: Api) -> None:
    """A provider lowers a limit: the report's over_limit follows; deleting restores it."""
    def over() -> bool:
        rows = get(api, "/api/v1/reports/tenant", api.provider,
                   params={"tenant": 101, "from": "2026-11-12", "to": "2026-11-12"}
                   ).json()["rows"]
        return bool(rows[0]["over_limit"])

    assert over() is False
    headers = {"Authorization": f"Bearer {api.provider}"}
    body = {"tenant_id": 101, "item_id": 1, "effective_date": "2026-11-11", "quantity": 8}
    created = httpx.put(api.url + "/api/v1/provisioned-counts", json=body, headers=headers)
    assert created.status_code == 201
    assert created.json()["quantity"] == 8
    assert over() is True
    again = httpx.put(api.url + "/api/v1/provisioned-counts", json={**body, "quantity": 9},
                      headers=headers)
    assert again.status_code == 200
    assert over() is False  # 9 is not over 9
    gone = httpx.request("DELETE", api.url + "/api/v1/provisioned-counts", headers=headers,
                         json={"tenant_id": 101, "item_id": 1, "effective_date": "2026-11-11"})
    assert gone.status_code == 204
    assert over() is False
    bad = httpx.put(api.url + "/api/v1/provisioned-counts", headers=headers,
                    json={"tenant_id": 999, "item_id": 4242, "effective_date": "2026-11-11",
                          "quantity": -1})
    assert bad.status_code == 422
    assert any("quantity" in p for p in bad.json()["problems"])


def test_bundle_set_upload(api: Api) -> None:
    """A valid bundle set is stored and listed; the same id uploaded again replaces it."""
    headers = {"Authorization": f"Bearer {api.provider}", "Content-Type": "application/xml"}
    xml = (FIXTURES / "bundle_set_valid.xml").read_bytes()
    response = httpx.post(api.url + "/api/v1/bundle-sets", content=xml, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["summary"]["bundles"] == 2
    listed = get(api, "/api/v1/bundle-sets", api.tenant_a).json()
    assert [s["id"] for s in listed] == [10000]
    assert {i["id"] for i in get(api, "/api/v1/sellable-items", api.tenant_a).json()} >= {
        1, 7, 100, 200, 10001, 10002}
    assert httpx.post(api.url + "/api/v1/bundle-sets", content=xml,
                      headers=headers).status_code == 201
    assert len(get(api, "/api/v1/bundle-sets", api.provider).json()) == 1


@pytest.mark.parametrize(("name", "problems"), [
    ("bundle_set_bad_ids.xml", ["9999", "duplicate"]),
    ("bundle_set_no_include.xml", ["include_items"]),
    ("bundle_set_bad_dates.xml", ["valid_to"]),
    ("bundle_set_unknown_item.xml", ["no_such_item"]),
])
def test_invalid_bundle_set_lists_every_problem_and_stores_nothing(
        api: Api, name: str, problems: list[str]) -> None:
    """Each kind of invalid file is refused with all its problems listed; nothing is stored."""
    headers = {"Authorization": f"Bearer {api.provider}", "Content-Type": "application/xml"}
    before = get(api, "/api/v1/bundle-sets", api.provider).json()
    response = httpx.post(api.url + "/api/v1/bundle-sets",
                          content=(FIXTURES / name).read_bytes(), headers=headers)
    assert response.status_code == 422, response.text
    text = " ".join(response.json()["problems"])
    for expected in problems:
        assert expected in text, (expected, text)
    assert get(api, "/api/v1/bundle-sets", api.provider).json() == before


def test_malformed_and_oversized_uploads(api: Api) -> None:
    """Malformed XML names the line; a file over the size limit is a 413."""
    headers = {"Authorization": f"Bearer {api.provider}", "Content-Type": "application/xml"}
    broken = httpx.post(api.url + "/api/v1/entitlements",
                        content=b"<entitlement>\n<line", headers=headers)
    assert broken.status_code == 422
    assert "line" in broken.json()["error"]
    huge = httpx.post(api.url + "/api/v1/bundle-sets", content=b"<a>" + b" " * 1_100_000,
                      headers=headers)
    assert huge.status_code == 413


def test_entitlement_upload_gives_system_limits(api: Api) -> None:
    """A valid entitlement file becomes the system report's limit for the days it is valid."""
    headers = {"Authorization": f"Bearer {api.provider}", "Content-Type": "application/xml"}
    response = httpx.post(api.url + "/api/v1/entitlements",
                          content=(FIXTURES / "entitlement_valid.xml").read_bytes(),
                          headers=headers)
    assert response.status_code == 201, response.text
    rows = get(api, "/api/v1/reports/system", api.provider,
               params={"from": "2026-11-02", "to": "2026-11-03"}).json()["rows"]
    assert [(r["limit"], r["limit_effective_date"], r["over_limit"]) for r in rows] == [
        (20, "2026-11-01", False), (20, "2026-11-01", True)]
    assert [e["customer_name"] for e in get(api, "/api/v1/entitlements",
                                            api.provider).json()] == ["Hosted Provider"]


def test_openapi_documents_every_parameter(api: Api) -> None:
    """The OpenAPI document lists every endpoint and describes every report parameter."""
    document = httpx.get(api.url + "/api/v1/openapi.json").json()
    paths = document["paths"]
    assert {"/api/v1/health", "/api/v1/reports/tenant", "/api/v1/reports/system",
            "/api/v1/reports/agent-group", "/api/v1/reports/place-group",
            "/api/v1/provisioned-counts", "/api/v1/bundle-sets", "/api/v1/entitlements",
            "/api/v1/sellable-items", "/api/v1/tenants", "/api/v1/jobs"} <= set(paths)
    params = {p["name"]: p for p in paths["/api/v1/reports/tenant"]["get"]["parameters"]}
    assert set(params) == {"from", "to", "tenant", "granularity", "week_start", "item",
                           "format"}
    assert all(p.get("description") for p in params.values())
