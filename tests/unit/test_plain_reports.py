"""Which report requests the middleware reads without FastAPI (`lrm.api.plain_reports`), and
into what: the same request the handler makes, or None (FastAPI answers). That both agree on
real requests is checked against the running server in
`tests/integration/test_api_repeated_reports.py`."""

from __future__ import annotations

from datetime import date

import pytest

from lrm.api.plain_reports import plain_report_key
from lrm.reporting import ReportRequest
from lrm.store.tokens import Principal

PROVIDER = Principal(token_id=1, role="provider", tenant_ids=frozenset())
TENANTS = Principal(token_id=2, role="tenant", tenant_ids=frozenset({102, 101}))
NOBODY = Principal(token_id=3, role="tenant", tenant_ids=frozenset())
TENANT = "/api/v1/reports/tenant"
SYSTEM = "/api/v1/reports/system"
NOV = "from=2026-11-01&to=2026-11-30"


def _tenant(*tenants: int, **fields: object) -> ReportRequest:
    return ReportRequest(kind="tenant", start=date(2026, 11, 1), end=date(2026, 11, 30),
                         tenants=tenants, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("path", "query", "accept", "principal", "expected"), [
    (TENANT, f"tenant=101&{NOV}", "", PROVIDER, (_tenant(101), False)),
    (TENANT, f"{NOV}&tenant=101&granularity=day", "*/*", PROVIDER, (_tenant(101), False)),
    (TENANT, f"tenant=102&tenant=101&{NOV}&granularity=week&week_start=sunday&item=7&item=1",
     "", PROVIDER, (_tenant(102, 101, granularity="week", week_start="sunday", items=(7, 1)),
                    False)),
    (TENANT, f"tenant=101&{NOV}&format=csv", "", PROVIDER, (_tenant(101), True)),
    (TENANT, f"tenant=101&{NOV}", "text/csv", PROVIDER, (_tenant(101), True)),
    (TENANT, f"tenant=101&{NOV}&format=json", "text/csv", PROVIDER, (_tenant(101), False)),
    (TENANT, f"tenant=2147483647&{NOV}", "", PROVIDER, (_tenant(2147483647), False)),
    # A tenant token without `tenant`: its own tenants, in order.
    (TENANT, NOV, "", TENANTS, (_tenant(101, 102), False)),
    (TENANT, f"tenant=102&{NOV}", "", TENANTS, (_tenant(102), False)),
    (TENANT, f"{NOV}&granularity=detailed", "", PROVIDER,
     (ReportRequest(kind="tenant", start=date(2026, 11, 1), end=date(2026, 11, 30),
                    granularity="detailed"), False)),
    (SYSTEM, f"{NOV}&item=1", "", PROVIDER,
     (ReportRequest(kind="system", start=date(2026, 11, 1), end=date(2026, 11, 30),
                    items=(1,)), False)),
])
def test_a_plain_request_is_the_handler_s_request(path: str, query: str, accept: str,
                                                   principal: Principal,
                                                   expected: tuple[ReportRequest, bool]) -> None:
    assert plain_report_key(path, query.encode(), accept, principal) == expected


# Tenant report queries of a provider that FastAPI reads.
NOT_PLAIN = [
    # Invalid (FastAPI answers 422).
    "tenant=101&from=2026-11-31&to=2026-11-30", "tenant=101&from=2026-11-01",
    f"tenant=0&{NOV}", f"tenant=2147483648&{NOV}", f"tenant=-1&{NOV}", f"tenant=abc&{NOV}",
    f"tenant=&{NOV}", f"tenant=101&{NOV}&granularity=Day", f"tenant=101&{NOV}&week_start=",
    f"tenant=101&{NOV}&format=xml",
    # Valid, but not plain.
    f"tenant=0101&{NOV}", "tenant=101&from=2026%2D11%2D01&to=2026-11-30",
    f"tenant=101&{NOV}&granularity=day&granularity=day", f"tenant=101&{NOV}&unknown=1",
    f"tenant=101&{NOV}&flag", f"tenant=101&{NOV}&&",
]


@pytest.mark.parametrize(("path", "query", "principal"), [
    # Refused (FastAPI answers 403): another tenant, no tenant at all, the system report.
    (TENANT, f"tenant=103&{NOV}", TENANTS),
    (TENANT, NOV, NOBODY),
    (SYSTEM, NOV, TENANTS),
    *[(TENANT, query, PROVIDER) for query in NOT_PLAIN],
    (SYSTEM, f"tenant=101&{NOV}", PROVIDER),  # a parameter the system report does not know
    ("/api/v1/reports/agent-group", f"group=7001&{NOV}", PROVIDER),
])
def test_anything_else_is_left_to_fastapi(path: str, query: str, principal: Principal) -> None:
    assert plain_report_key(path, query.encode(), "", principal) is None
