"""The one row-building function behind every report (SPEC §7): the CLI, the HTTP API and the web
page all call `build_report` and only render its rows differently (`as_document`, `as_csv`)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Literal, cast
from zoneinfo import ZoneInfo

import orjson
import sqlalchemy as sa

from lrm.domain.calendar import WEEKDAYS, Granularity
from lrm.domain.errors import InputError
from lrm.domain.report_rows import (
    LimitTable,
    ReportReference,
    ReportRow,
    Subject,
    columns_for,
    entitlement_limits,
    missing_dates,
)
from lrm.domain.report_table import (
    DailyColumns,
    MinuteColumns,
    ReportTable,
    daily_table,
    detailed_table,
)
from lrm.store import report_queries as q

ReportKind = Literal["tenant", "system", "agent-group", "place-group"]
LEVEL_OF: dict[str, str] = {"tenant": "tenant", "system": "system",
                            "agent-group": "agent_group", "place-group": "place_group"}
GRANULARITIES = ("detailed", "day", "week", "month")
MAX_DETAILED_DAYS = 7
MAX_RANGE_DAYS = 3660


@dataclass(frozen=True)
class ReportRequest:
    kind: ReportKind
    start: date
    end: date
    granularity: Granularity = "day"
    week_start: str = "monday"
    tenants: tuple[int, ...] = ()
    group: int | None = None
    items: tuple[int, ...] = ()


@dataclass(frozen=True)
class Report:
    request: ReportRequest
    table: ReportTable
    columns: list[str]
    generated_at: datetime
    last_complete_date: date | None
    missing: list[date] = field(default_factory=list)

    @property
    def rows(self) -> list[ReportRow]:
        """The rows as dicts (the CLI table, the JSON document, CSV)."""
        return self.table.rows()


def parse_date(value: str, parameter: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InputError([f"{parameter}: {value!r} is not a date in YYYY-MM-DD form"],
                         what="report request") from exc


def validate_request(request: ReportRequest) -> None:
    """Check what can be checked without the database; every problem is listed."""
    problems: list[str] = []
    if request.kind not in LEVEL_OF:
        problems.append(f"report: {request.kind!r} is not one of {', '.join(LEVEL_OF)}")
    if request.granularity not in GRANULARITIES:
        problems.append(f"granularity: {request.granularity!r} is not one of "
                        f"{', '.join(GRANULARITIES)}")
    if request.week_start not in WEEKDAYS:
        problems.append(f"week_start: {request.week_start!r} is not a weekday name "
                        "(monday … sunday)")
    if request.start > request.end:
        problems.append(f"from: {request.start} is after to ({request.end})")
    span = (request.end - request.start).days + 1
    if request.granularity == "detailed" and span > MAX_DETAILED_DAYS:
        problems.append(f"to: detailed reports cover at most {MAX_DETAILED_DAYS} days "
                        f"(asked for {span}); use day granularity for longer ranges")
    elif span > MAX_RANGE_DAYS:
        problems.append(f"to: a report covers at most {MAX_RANGE_DAYS} days (asked for {span})")
    if request.kind in ("agent-group", "place-group") and request.group is None:
        problems.append("group: required for group reports")
    if request.kind in ("system", "agent-group", "place-group") and request.tenants:
        problems.append(f"tenant: not accepted by the {request.kind} report")
    if problems:
        raise InputError(problems, what="report request")


@dataclass(frozen=True)
class ReportPlan:
    """A request checked against the reference data, with what its rows need besides the
    values: which subjects and items to read, their names, the limits."""

    request: ReportRequest
    reference: ReportReference
    level: str
    subjects: dict[int, Subject]
    subject_ids: list[int]
    items: list[int] | None  # None: every item with values
    limits: LimitTable

    @property
    def detailed(self) -> bool:
        return self.request.granularity == "detailed"

    @property
    def subject_days(self) -> int:
        """Subjects × days: what the size of the report grows with."""
        return len(self.subject_ids) * ((self.request.end - self.request.start).days + 1)


def plan_report(request: ReportRequest, reference: ReportReference) -> ReportPlan:
    """Check `request` (every problem listed in one InputError) and plan its rows."""
    validate_request(request)
    level = LEVEL_OF[request.kind]
    problems = [f"item: {item} is not a sellable item or bundle id" for item in request.items
                if item not in reference.item_names]
    subjects: dict[int, Subject]
    if level == "tenant":
        subjects = reference.tenants
        problems += [f"tenant: {t} is not a known tenant" for t in request.tenants
                     if t not in subjects]
        subject_ids = list(request.tenants) or sorted(subjects)
    elif level == "system":
        subjects = {0: Subject(0, "system")}
        subject_ids = [0]
    else:
        subjects = reference.groups[level]
        if request.group not in subjects:
            problems.append(f"group: {request.group} is not a known {request.kind}")
        subject_ids = [cast(int, request.group)]
    if problems:
        raise InputError(problems, what="report request")
    if level == "tenant":
        limits = reference.provisioned_table
    elif level == "system":
        limits = LimitTable.of(entitlement_limits(reference.entitlements, request.start,
                                                  request.end))
    else:
        limits = LimitTable.of({})
    return ReportPlan(request=request, reference=reference, level=level, subjects=subjects,
                      subject_ids=subject_ids, items=list(request.items) or None,
                      limits=limits)


def finish_report(plan: ReportPlan, values: DailyColumns | MinuteColumns, zone: ZoneInfo, *,
                  now: datetime | None = None) -> Report:
    """The report of `plan` from the values read for it (`MinuteColumns` for detailed
    reports, `DailyColumns` otherwise)."""
    request, ref = plan.request, plan.reference
    if isinstance(values, MinuteColumns):
        table = detailed_table(values, level=plan.level, zone=zone, subjects=plan.subjects,
                               item_names=ref.item_names, limits=plan.limits)
    else:
        table = daily_table(values, level=plan.level, granularity=request.granularity,
                            week_start=request.week_start, zone=zone, subjects=plan.subjects,
                            item_names=ref.item_names, limits=plan.limits)
    return Report(
        request=request, table=table, columns=columns_for(plan.level),
        generated_at=(now or datetime.now(UTC)).replace(microsecond=0),
        last_complete_date=ref.last_complete_date,
        missing=missing_dates(request.start, request.end, ref.succeeded_dates),
    )


def build_report(connection: sa.Connection, request: ReportRequest, zone: ZoneInfo, *,
                 reference: ReportReference | None = None,
                 now: datetime | None = None) -> Report:
    """Rows of SPEC §7 for `request`, read from the LRM DB. `reference` is the data besides the
    values (read here when not given; the API passes the one of the current data version)."""
    validate_request(request)  # before reading anything
    plan = plan_report(request, reference if reference is not None
                       else q.load_reference(connection))
    read = q.minute_series if plan.detailed else q.daily_values
    return finish_report(plan, read(connection, plan.level, subject_ids=plan.subject_ids,
                                    item_ids=plan.items, start=request.start, end=request.end),
                         zone, now=now)


def as_document(report: Report, rows: object = None) -> dict[str, object]:
    """The JSON document of SPEC §7 (`rows`: in place of the report's rows)."""
    request = report.request
    return {
        "report": request.kind,
        "granularity": request.granularity,
        "week_start": request.week_start,
        "from": request.start.isoformat(),
        "to": request.end.isoformat(),
        "generated_at": report.generated_at.isoformat().replace("+00:00", "Z"),
        "freshness": {
            "last_complete_date": (report.last_complete_date.isoformat()
                                   if report.last_complete_date else None),
            "missing_dates": [d.isoformat() for d in report.missing],
        },
        "columns": report.columns,
        "rows": report.rows if rows is None else rows,
    }


def as_json(report: Report) -> bytes:
    """The JSON document as compact UTF-8: the document around the rows by orjson, the rows
    assembled from their distinct texts by the table (byte for byte the same as
    `orjson.dumps(as_document(report))`)."""
    around = orjson.dumps(as_document(report, rows=[]))
    if not around.endswith(b"[]}"):
        raise AssertionError("the rows must be the last key of the report document")
    return report.table.json_rows(around[:-3], b"}")


def as_csv(report: Report) -> str:
    """The same rows as CSV with a header line (CRLF line ends, as RFC 4180 says)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(report.columns)
    for row in report.rows:
        writer.writerow([_csv_cell(row.get(column)) for column in report.columns])
    return buffer.getvalue()


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value

