"""The report API endpoints (SPEC §7). Reports go through `lrm.reporting.build_report`, the same
function the CLI uses; JSON and CSV are two renderings of its rows."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

import anyio.to_thread
import sqlalchemy as sa
from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import BaseModel, Field

from lrm.api.deps import Caller, Ctx, HttpError, Provider, forbidden
from lrm.domain.bundles import parse_bundle_set, parse_entitlement
from lrm.domain.errors import InputError
from lrm.domain.report_rows import ReportReference
from lrm.reporting import (
    Report,
    ReportKind,
    ReportRequest,
    as_csv,
    as_json,
    build_report,
    finish_report,
    parse_date,
    plan_report,
)
from lrm.store import catalog, job_runs, provisioning
from lrm.store import report_queries as q
from lrm.store.tokens import Principal

MAX_UPLOAD_BYTES = 1_000_000
# Reports of at most this many subject-days (a quarter of one tenant: ~2,800 rows of 30 items)
# are built on the event loop; larger ones in threads.
LOOP_BUILD_MAX_SUBJECT_DAYS = 100
Rendered = tuple[bytes, str, dict[str, str]]  # body, media type, headers
router = APIRouter(prefix="/api/v1")
# Configuration Server DBIDs and item ids are positive 32-bit integers.
MAX_DBID = 2_147_483_647
DbId = Annotated[int, Field(ge=1, le=MAX_DBID)]
# Where the report handler leaves the ReportCache key of the report it answered with (for
# `lrm.api.repeated_reports`).
REPORT_KEY_STATE = "lrm_report_key"

# ----------------------------------------------------------------------------- models


class Freshness(BaseModel):
    last_complete_date: str | None = Field(description="Newest business date with a "
                                           "succeeded job run.")
    missing_dates: list[str] = Field(description="Dates in the range without a succeeded run.")


class ReportDocument(BaseModel):
    report: str = Field(description="tenant, system, agent-group or place-group")
    granularity: str
    week_start: str
    from_: str = Field(alias="from")
    to: str
    generated_at: str
    freshness: Freshness
    columns: list[str] = Field(description="Column order of the rows (and of the CSV).")
    rows: list[dict[str, Any]] = Field(description=(
        "Report rows: tenant_id/tenant_name (tenant and group reports), group_id/group_name "
        "(group reports), item_id, item_name, period_start, weekday (day granularity), "
        "peak_time, peak_value, limit, limit_effective_date, over_limit."))


class ErrorBody(BaseModel):
    error: str
    status: int
    problems: list[str]


class ProvisionedCount(BaseModel):
    tenant_id: int = Field(ge=1, le=2_147_483_647, description="Tenant DBID.")
    item_id: int = Field(ge=1, le=2_147_483_647, description="Sellable item or bundle id.")
    effective_date: date = Field(description="First day the quantity applies (00:00 in the "
                                 "report time zone).")
    quantity: int = Field(ge=0, le=10_000_000, description="Provisioned limit.")


class ProvisionedCountKey(BaseModel):
    tenant_id: int = Field(ge=1, le=2_147_483_647)
    item_id: int = Field(ge=1, le=2_147_483_647)
    effective_date: date


class ProvisionedCountRow(ProvisionedCount):
    updated_at: str


class UploadResult(BaseModel):
    id: int
    kind: str
    summary: dict[str, Any]


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No token, or an unknown/revoked token."},
    403: {"model": ErrorBody, "description": "The token may not see this."},
    422: {"model": ErrorBody, "description": "A parameter is invalid (named in `problems`)."},
    503: {"model": ErrorBody, "description": "The LRM database is not available."},
}
REPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The report (JSON document, or CSV with a header line).",
          "content": {"text/csv": {"schema": {"type": "string"}}}},
    **ERRORS,
}

# ----------------------------------------------------------------------------- reports

From = Annotated[str, Query(alias="from", description="First business date, YYYY-MM-DD.",
                            examples=["2026-11-01"])]
To = Annotated[str, Query(alias="to", description="Last business date (inclusive), YYYY-MM-DD.",
                          examples=["2026-11-30"])]
GranularityQ = Annotated[Literal["detailed", "day", "week", "month"], Query(
    description="detailed (per minute, at most 7 days), day, week or month.")]
WeekStart = Annotated[Literal["monday", "tuesday", "wednesday", "thursday", "friday",
                              "saturday", "sunday"], Query(description="First day of a week.")]
Items = Annotated[list[DbId] | None, Query(alias="item", description=(
    "Item or bundle ids (repeatable); default: every item with values."))]
Format = Annotated[Literal["json", "csv"] | None, Query(
    alias="format", description="json (default) or csv; `Accept: text/csv` also gives CSV.")]


def wants_csv(output: str | None, accept: str) -> bool:
    """CSV: asked for by `format=csv`, or by the (first) `Accept` header without `format`."""
    return output == "csv" or (output is None and "text/csv" in accept)


async def _render(request: Request, ctx: Ctx, report_request: ReportRequest,
                  output: str | None) -> Response:
    # The request already carries the caller's scope (its tenants, or an authorised group),
    # so it is a safe cache key.
    key = (report_request, wants_csv(output, request.headers.get("accept", "")))
    cached: Rendered | None = ctx.reports.remembered(key)
    if cached is None:
        cached = await build_on_loop(ctx, key)
    if cached is None:  # database work: in the thread pool, off the event loop
        cached = await anyio.to_thread.run_sync(_build, ctx, key, limiter=ctx.report_builds)
    # For a repeat of this request (`lrm.api.repeated_reports`): which cached report it was.
    setattr(request.state, REPORT_KEY_STATE, key)
    content, media_type, headers = cached
    return Response(content, media_type=media_type, headers=headers)


async def build_on_loop(ctx: Ctx, key: tuple[ReportRequest, bool]) -> Rendered | None:
    """Build a small report on the event loop: one query on an event-loop connection, then
    about a millisecond of array work (a month of one tenant). None when the report must be
    built in a thread: it is large or per minute (building it would hold up every other
    request), or the API has no event-loop connections."""
    if ctx.reads is None:
        return None
    report_request, wants_csv = key
    version, reference = await current_reference(ctx)
    plan = plan_report(report_request, reference)
    if plan.detailed or plan.subject_days > LOOP_BUILD_MAX_SUBJECT_DAYS:
        return None
    values = await ctx.reads.read(lambda connection: q.daily_values_async(
        connection, plan.level, subject_ids=plan.subject_ids, item_ids=plan.items,
        start=report_request.start, end=report_request.end))
    rendered = _rendered(finish_report(plan, values, ctx.settings.lrm.zone), wants_csv)
    ctx.reports.put(key, rendered, version)
    return rendered


async def current_reference(ctx: Ctx) -> tuple[tuple[Any, ...], ReportReference]:
    """The data version and its reference: from memory, or read in a thread once for all the
    requests that find them missing at the same moment (a just-started server, a new data
    version). Those requests wait for the one read (~30 ms) and then build on the event loop;
    before, each took its whole build to the thread pool, at twice the CPU of a build on the
    loop, and a just-started server's first second of answers queued behind them."""
    remembered = ctx.reports.remembered_reference()
    if remembered is not None:
        return remembered
    # A read begun before this process wrote (`invalidate`), or before a newer data version
    # was seen, may hold what has changed since: a request after either starts its own.
    return await ctx.reference_reads.run(
        None, (ctx.reports.generation, ctx.reports.current_tag()),
        lambda: anyio.to_thread.run_sync(_version_and_reference, ctx))


def _version_and_reference(ctx: Ctx) -> tuple[tuple[Any, ...], ReportReference]:
    version = ctx.reports.version()
    return version, _reference(ctx, version)


def _reference(ctx: Ctx, version: tuple[Any, ...] | None = None) -> ReportReference:
    """Names, limits and run dates of the data version (`version`, or the current one)."""
    def load() -> ReportReference:
        with ctx.engine.connect() as connection:
            return q.load_reference(connection)

    return ctx.reports.reference(ctx.reports.version() if version is None else version, load)


def _build(ctx: Ctx, key: tuple[ReportRequest, bool]) -> Rendered:
    """The rendered report for a cache key (from the cache when still current)."""
    version = ctx.reports.version()
    cached: Rendered | None = ctx.reports.get(key, version)
    if cached is not None:
        return cached
    report_request, wants_csv = key
    reference = _reference(ctx, version)
    with ctx.engine.connect() as connection:
        report = build_report(connection, report_request, ctx.settings.lrm.zone,
                              reference=reference)
    rendered = _rendered(report, wants_csv)
    ctx.reports.put(key, rendered, version)
    return rendered


def _rendered(report: Report, wants_csv: bool) -> Rendered:
    """The body, media type and headers of `report` as JSON or CSV."""
    if not wants_csv:
        return as_json(report), "application/json", {}
    request = report.request
    name = f"lrm-{request.kind}-{request.start}-{request.end}-{request.granularity}.csv"
    return (as_csv(report).encode(), "text/csv; charset=utf-8",
            {"Content-Disposition": f'attachment; filename="{name}"'})


def report_request(kind: ReportKind, start: str, end: str, granularity: str, week_start: str,
                   items: list[int] | None, tenants: tuple[int, ...] = (),
                   group: int | None = None) -> ReportRequest:
    """The request of validated parameters (the dates are parsed here: InputError)."""
    problems = []
    dates: list[date] = []
    for value, name in ((start, "from"), (end, "to")):
        try:
            dates.append(parse_date(value, name))
        except InputError as exc:
            problems += exc.problems
    if problems:
        raise InputError(problems, what="report request")
    return ReportRequest(kind=kind, start=dates[0], end=dates[1],
                         granularity=granularity,  # type: ignore[arg-type]
                         week_start=week_start, tenants=tenants, group=group,
                         items=tuple(items or ()))


@router.get("/reports/tenant", summary="Tenant report", responses=REPORT_RESPONSES,
            response_model=ReportDocument)
async def tenant_report(request: Request, ctx: Ctx, principal: Caller, start: From, end: To,
                  tenant: Annotated[list[DbId] | None, Query(description=(
                      "Tenant DBIDs (repeatable); default: every tenant the token may see."))]
                  = None,
                  granularity: GranularityQ = "day", week_start: WeekStart = "monday",
                  item: Items = None, output: Format = None) -> Response:
    """Peak usage per tenant and item, with the provisioned limit in force."""
    return await _render(request, ctx, tenant_request(principal, tenant, start, end,
                                                      granularity, week_start, item), output)


def tenant_request(principal: Principal, tenants: list[int] | None, start: str, end: str,
                   granularity: str, week_start: str, items: list[int] | None) -> ReportRequest:
    """The tenant report `principal` may have (HttpError 403, InputError: it may not)."""
    wanted = list(tenants or [])
    refused = [t for t in wanted if not principal.may_see_tenant(t)]
    if refused:
        raise forbidden(f"tenant: this token may not see tenant(s) "
                        f"{', '.join(map(str, refused))}")
    if not wanted and not principal.is_provider:
        wanted = sorted(principal.tenant_ids)
        if not wanted:
            raise forbidden("this token is not allowed any tenant")
    return report_request("tenant", start, end, granularity, week_start, items,
                          tenants=tuple(wanted))


@router.get("/reports/system", summary="System report (provider only)",
            responses=REPORT_RESPONSES, response_model=ReportDocument)
async def system_report(request: Request, ctx: Ctx, principal: Provider, start: From, end: To,
                  granularity: GranularityQ = "day", week_start: WeekStart = "monday",
                  item: Items = None, output: Format = None) -> Response:
    """Peak usage of the whole system (all tenants together), with the entitlement limit."""
    return await _render(request, ctx, report_request("system", start, end, granularity,
                                                      week_start, item), output)


async def _group_report(kind: ReportKind, request: Request, ctx: Ctx, principal: Principal,
                        group: int, start: str, end: str, granularity: str, week_start: str,
                        item: list[int] | None, output: str | None) -> Response:
    level = "agent_group" if kind == "agent-group" else "place_group"

    _, reference = await current_reference(ctx)
    subject = reference.groups[level].get(group)
    if subject is None:
        raise InputError([f"group: {group} is not a known {kind}"], what="report request")
    if subject.tenant_id is None or not principal.may_see_tenant(subject.tenant_id):
        raise forbidden(f"group: this token may not see {kind} {group}")
    return await _render(request, ctx, report_request(kind, start, end, granularity, week_start,
                                                      item, group=group), output)


GroupQ = Annotated[int, Query(ge=1, le=MAX_DBID, description="Group DBID.")]


@router.get("/reports/agent-group", summary="Agent group report", responses=REPORT_RESPONSES,
            response_model=ReportDocument)
async def agent_group_report(request: Request, ctx: Ctx, principal: Caller, group: GroupQ,
                       start: From, end: To, granularity: GranularityQ = "day",
                       week_start: WeekStart = "monday", item: Items = None,
                       output: Format = None) -> Response:
    """Peak usage of the seats of an agent group's members (membership as of each instant),
    with the group's enabled agents (item 100)."""
    return await _group_report("agent-group", request, ctx, principal, group, start, end,
                               granularity, week_start, item, output)


@router.get("/reports/place-group", summary="Place group report", responses=REPORT_RESPONSES,
            response_model=ReportDocument)
async def place_group_report(request: Request, ctx: Ctx, principal: Caller, group: GroupQ,
                       start: From, end: To, granularity: GranularityQ = "day",
                       week_start: WeekStart = "monday", item: Items = None,
                       output: Format = None) -> Response:
    """Peak usage of a place group's places (membership as of each instant)."""
    return await _group_report("place-group", request, ctx, principal, group, start, end,
                               granularity, week_start, item, output)


# ----------------------------------------------------------------------------- provisioning


def _known_item(connection: sa.Connection, item_id: int) -> bool:
    return item_id in q.item_names(connection)


@router.get("/provisioned-counts", summary="Provisioned counts", responses=ERRORS,
            response_model=list[ProvisionedCountRow])
def list_provisioned(ctx: Ctx, principal: Caller,
                     tenant: Annotated[list[DbId] | None, Query(
                         description="Tenant DBIDs (repeatable).")] = None,
                     item: Items = None) -> list[dict[str, Any]]:
    """The history of tenant limits (every effective date)."""
    tenants = list(tenant) if tenant else None
    if tenants is not None:
        refused = [t for t in tenants if not principal.may_see_tenant(t)]
        if refused:
            raise forbidden(f"tenant: this token may not see tenant(s) "
                            f"{', '.join(map(str, refused))}")
    elif not principal.is_provider:
        tenants = sorted(principal.tenant_ids)
    with ctx.engine.connect() as connection:
        return provisioning.list_counts(connection, tenants, list(item) if item else None)


@router.put("/provisioned-counts", summary="Set a provisioned count (provider only)",
            responses=ERRORS, response_model=ProvisionedCountRow)
def put_provisioned(ctx: Ctx, principal: Provider, body: ProvisionedCount,
                    response: Response) -> dict[str, Any]:
    """Insert or replace the quantity of (tenant, item, effective_date)."""
    with ctx.engine.begin() as connection:
        problems = []
        if body.tenant_id not in q.tenant_subjects(connection):
            problems.append(f"tenant_id: {body.tenant_id} is not a known tenant")
        if not _known_item(connection, body.item_id):
            problems.append(f"item_id: {body.item_id} is not a sellable item or bundle id")
        if problems:
            raise InputError(problems, what="provisioned count")
        created = provisioning.upsert_count(connection, body.tenant_id, body.item_id,
                                            body.effective_date, body.quantity)
        rows = provisioning.list_counts(connection, [body.tenant_id], [body.item_id])
    ctx.reports.invalidate()
    response.status_code = 201 if created else 200
    return next(r for r in rows if r["effective_date"] == body.effective_date.isoformat())


@router.delete("/provisioned-counts", summary="Delete a provisioned count (provider only)",
               responses={**ERRORS, 404: {"model": ErrorBody, "description": "No such row."}},
               status_code=204)
def delete_provisioned(ctx: Ctx, principal: Provider,
                       body: Annotated[ProvisionedCountKey, Body()]) -> Response:
    """Delete the value of (tenant, item, effective_date)."""
    with ctx.engine.begin() as connection:
        if not provisioning.delete_count(connection, body.tenant_id, body.item_id,
                                         body.effective_date):
            raise HttpError(404, f"no provisioned count for tenant {body.tenant_id}, item "
                            f"{body.item_id}, effective {body.effective_date}")
    ctx.reports.invalidate()
    return Response(status_code=204)


# ----------------------------------------------------------------------------- uploads

XML_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/xml": {"schema": {"type": "string"}}}}}


async def _xml_body(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_UPLOAD_BYTES:
        raise HttpError(413, f"the file is larger than {MAX_UPLOAD_BYTES} bytes")
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_UPLOAD_BYTES:
            raise HttpError(413, f"the file is larger than {MAX_UPLOAD_BYTES} bytes")
    if not data.strip():
        raise InputError(["body: the XML file is empty"], what="upload")
    return data


@router.get("/bundle-sets", summary="Bundle sets", responses=ERRORS)
def list_bundle_sets(ctx: Ctx, principal: Caller) -> list[dict[str, Any]]:
    """Every uploaded bundle set with its bundles."""
    with ctx.engine.connect() as connection:
        sets = catalog.load_bundle_sets(connection)
    return [{"id": s.id, "name": s.name, "description": s.description,
             "issue_date": s.issue_date.isoformat(), "valid_from": s.valid_from.isoformat(),
             "valid_to": s.valid_to.isoformat(),
             "bundles": [{"id": b.id, "name": b.name, "description": b.description,
                          "include_items": list(b.include), "exclude_items": list(b.exclude)}
                         for b in s.bundles]} for s in sets]


@router.post("/bundle-sets", summary="Upload a bundle set (provider only)", status_code=201,
             responses={**ERRORS, 413: {"model": ErrorBody}}, openapi_extra=XML_BODY,
             response_model=UploadResult)
async def upload_bundle_set(request: Request, ctx: Ctx, principal: Provider) -> dict[str, Any]:
    """An XML `<lrm_bundle_set>`; every problem is listed in a 422 and nothing is stored on
    error. A set with an existing id replaces it. It applies to dates computed from now on:
    recompute older dates with `lrm job run --date D --to D2 --force`."""
    data = await _xml_body(request)
    parsed = parse_bundle_set(data, ctx.catalogue)
    with ctx.engine.begin() as connection:
        catalog.store_bundle_set(connection, parsed, data.decode("utf-8", "replace"))
    ctx.reports.invalidate()
    return {"id": parsed.id, "kind": "bundle-set", "summary": {
        "name": parsed.name, "bundles": len(parsed.bundles),
        "valid_from": parsed.valid_from.isoformat(), "valid_to": parsed.valid_to.isoformat()}}


@router.get("/entitlements", summary="Entitlement files (provider only)", responses=ERRORS)
def list_entitlements(ctx: Ctx, principal: Provider) -> list[dict[str, Any]]:
    """Every uploaded entitlement file with its lines."""
    with ctx.engine.connect() as connection:
        files = catalog.load_entitlements(connection)
    return [{"id": e.id, "customer_name": e.customer_name, "customer_id": e.customer_id,
             "site_id": e.site_id, "issue_date": e.issue_date.isoformat(),
             "valid_from": e.valid_from.isoformat(), "valid_to": e.valid_to.isoformat(),
             "lines": [{"item_id": line.item_id, "quantity": line.quantity,
                        "burst_limit": line.burst_limit, "license_type": line.license_type}
                       for line in e.lines]} for e in files]


@router.post("/entitlements", summary="Upload an entitlement file (provider only)",
             status_code=201, responses={**ERRORS, 413: {"model": ErrorBody}},
             openapi_extra=XML_BODY, response_model=UploadResult)
async def upload_entitlement(request: Request, ctx: Ctx, principal: Provider) -> dict[str, Any]:
    """An XML `<entitlement>` file; every problem is listed in a 422, nothing stored on error.
    It gives the system report's limits for the days it is valid (newest issue wins)."""
    data = await _xml_body(request)
    parsed = parse_entitlement(data, ctx.catalogue)
    with ctx.engine.begin() as connection:
        stored = catalog.store_entitlement(connection, parsed, data.decode("utf-8", "replace"))
    ctx.reports.invalidate()
    return {"id": stored, "kind": "entitlement", "summary": {
        "customer_name": parsed.customer_name, "lines": len(parsed.lines),
        "valid_from": parsed.valid_from.isoformat(), "valid_to": parsed.valid_to.isoformat()}}


# ----------------------------------------------------------------------------- catalogue


@router.get("/sellable-items", summary="Sellable items and bundles", responses=ERRORS)
def sellable_items(ctx: Ctx, principal: Caller) -> list[dict[str, Any]]:
    """The item catalogue (built-in and configured items) and every uploaded bundle."""
    items: list[dict[str, Any]] = [{"id": i.id, "code": i.code, "name": i.name, "kind": i.kind}
                                   for i in ctx.catalogue.items]
    with ctx.engine.connect() as connection:
        for s in catalog.load_bundle_sets(connection):
            items += [{"id": b.id, "code": f"bundle_{b.id}", "name": b.name, "kind": "bundle",
                       "bundle_set": s.id} for b in s.bundles]
    return items


@router.get("/tenants", summary="Tenants visible to the caller", responses=ERRORS)
def tenants(ctx: Ctx, principal: Caller) -> list[dict[str, Any]]:
    """Tenants (and their groups) this token may see."""
    reference = _reference(ctx)  # the tenants and groups the reports use, as of this version
    owned: dict[tuple[str, int | None], list[dict[str, Any]]] = {}
    for level, groups in reference.groups.items():
        for group in groups.values():
            owned.setdefault((level, group.tenant_id), []).append(
                {"id": group.id, "name": group.name})
    return [{"id": t, "name": reference.tenants[t].name,
             "agent_groups": owned.get(("agent_group", t), []),
             "place_groups": owned.get(("place_group", t), [])}
            for t in sorted(reference.tenants) if principal.may_see_tenant(t)]


@router.get("/jobs", summary="Recent job runs (provider only)", responses=ERRORS)
def jobs(ctx: Ctx, principal: Provider,
         limit: Annotated[int, Query(ge=1, le=1000, description="How many runs.")] = 50,
         ) -> list[dict[str, Any]]:
    """Recent nightly job runs, newest first, with per-source outcome and bad-row counts."""
    with ctx.engine.connect() as connection:
        return [run.as_dict() for run in job_runs.recent_runs(connection, limit)]
