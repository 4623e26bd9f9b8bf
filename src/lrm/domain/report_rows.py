"""Report rows (SPEC §7), built from daily or per-minute values. Pure: the store fetches, this
module decides periods, peaks, limits and formats; every renderer (JSON, CSV, CLI table, web page)
shows exactly these rows.

Choices where the spec is silent:
- Week/month rows take the maximum daily value in the period, the **latest** day on ties, and
  show that day's peak as `YYYY-MM-DD HH:MM`.
- The limit of a week/month row is the one in force on the day of the period's peak (that is the
  day whose value `over_limit` compares); its effective date is shown beside it.
- A row without a limit has `limit`, `limit_effective_date` = null and `over_limit` = false.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from lrm.domain.calendar import Granularity, period_start


class DailyValue(NamedTuple):
    """One usage_daily row. A tuple: a month report reads about a thousand of them per request,
    straight from the driver's rows."""

    subject_id: int
    item_id: int
    business_date: date
    peak_value: int
    peak_time: datetime | None  # aware UTC instant of the peak minute's start


@dataclass(frozen=True)
class LimitHistory:
    """Limits of one (subject, item) by effective date, oldest first."""

    effective_dates: Sequence[date]
    quantities: Sequence[int]

    def in_force(self, day: date) -> tuple[int, date] | None:
        index = bisect.bisect_right(self.effective_dates, day) - 1
        if index < 0:
            return None
        return self.quantities[index], self.effective_dates[index]


@dataclass(frozen=True)
class DailyLimits:
    """Limits that can start and stop on any day (entitlement files): day → (quantity,
    effective date)."""

    by_day: dict[date, tuple[int, date]]

    def in_force(self, day: date) -> tuple[int, date] | None:
        return self.by_day.get(day)


Limits = LimitHistory | DailyLimits


@dataclass(frozen=True)
class Subject:
    """What a row is about: a tenant, a group (with its tenant), or the system (id 0)."""

    id: int
    name: str
    tenant_id: int | None = None
    tenant_name: str | None = None


@dataclass(frozen=True)
class EntitlementFile:
    """An uploaded entitlement file: item quantities valid from `valid_from` to `valid_to`."""

    id: int
    issue_date: date
    valid_from: date
    valid_to: date
    quantities: dict[int, int]  # item id → quantity


def entitlement_limits(files: Sequence[EntitlementFile], start: date,
                       end: date) -> dict[tuple[int, int], Limits]:
    """System limits (subject 0) for [start, end]: for each day the active file (its validity
    contains the day, the newest issue wins) gives each item's quantity, effective from the
    file's valid_from."""
    relevant = [f for f in files if f.valid_from <= end and f.valid_to >= start]
    per_item: dict[int, dict[date, tuple[int, date]]] = {}
    for offset in range((end - start).days + 1 if relevant else 0):
        day = start + timedelta(days=offset)
        active = [f for f in relevant if f.valid_from <= day <= f.valid_to]
        if not active:
            continue
        chosen = max(active, key=lambda f: (f.issue_date, f.id))
        for item_id, quantity in chosen.quantities.items():
            per_item.setdefault(item_id, {})[day] = (quantity, chosen.valid_from)
    return {(0, item): DailyLimits(days) for item, days in per_item.items()}


@dataclass(frozen=True)
class ReportReference:
    """Everything a report reads besides its values: names, limits and which dates have a
    succeeded run. Small tables, read together, so that the API can keep one per data version
    and a report costs a single query."""

    item_names: dict[int, str]
    tenants: dict[int, Subject]
    groups: dict[str, dict[int, Subject]]  # level (agent_group, place_group) → id → group
    provisioned: dict[tuple[int, int], Limits]  # (tenant, item) → every effective date
    entitlements: Sequence[EntitlementFile]
    succeeded_dates: frozenset[date]

    @property
    def last_complete_date(self) -> date | None:
        return max(self.succeeded_dates, default=None)


ReportRow = dict[str, object]


_SUBJECT_ITEM_DAY = operator.itemgetter(0, 1, 2)  # of a DailyValue


def aggregate(values: Iterable[DailyValue], granularity: Granularity,
              week_start: str = "monday") -> list[tuple[date, DailyValue]]:
    """(period_start, the winning daily value) per (subject, item, period): the maximum daily
    value, the latest day on ties. Sorted by subject, item, period."""
    if granularity == "day":
        # Every (subject, item, day) has one daily value: nothing to choose between.
        ordered = sorted(values, key=_SUBJECT_ITEM_DAY)
        return [(value.business_date, value) for value in ordered]
    best: dict[tuple[int, int, date], DailyValue] = {}
    for value in values:
        key = (value.subject_id, value.item_id,
               period_start(value.business_date, granularity, week_start))
        current = best.get(key)
        if current is None or (value.peak_value, value.business_date) >= (
                current.peak_value, current.business_date):
            best[key] = value
    return [(key[2], best[key]) for key in sorted(best)]


class _LimitColumns:
    """(limit, limit_effective_date, over_limit) of rows given in (subject, item) order: the
    current history and the texts of effective dates are remembered between rows."""

    def __init__(self, limits: dict[tuple[int, int], Limits]) -> None:
        self.limits = limits
        self.key: tuple[int, int] | None = None
        self.history: Limits | None = None
        self.texts: dict[date, str] = {}

    def of(self, subject_id: int, item_id: int, day: date,
           peak_value: int) -> tuple[int | None, str | None, bool]:
        if (subject_id, item_id) != self.key:
            self.key = (subject_id, item_id)
            self.history = self.limits.get(self.key)
        found = self.history.in_force(day) if self.history is not None else None
        if found is None:
            return None, None, False
        quantity, effective = found
        text = self.texts.get(effective)
        if text is None:
            text = self.texts[effective] = effective.isoformat()
        return quantity, text, peak_value > quantity


def _subject_columns(subject: Subject, level: str) -> dict[str, object]:
    if level == "system":
        return {}
    if level == "tenant":
        return {"tenant_id": subject.id, "tenant_name": subject.name}
    return {"group_id": subject.id, "group_name": subject.name,
            "tenant_id": subject.tenant_id, "tenant_name": subject.tenant_name}


_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
                  "Sunday")


# "HH:MM" of each minute of a day: formatting ~1,000 peak times per request is a hot path.
_HHMM = [f"{minute // 60:02d}:{minute % 60:02d}" for minute in range(1440)]


def daily_rows(values: Iterable[DailyValue], *, level: str, granularity: Granularity,
               week_start: str, zone: ZoneInfo, subjects: dict[int, Subject],
               item_names: dict[int, str],
               limits: dict[tuple[int, int], Limits]) -> list[ReportRow]:
    """Rows for day, week or month granularity. (A month report for one tenant is ~1,000 rows
    built for every request that is not cached: texts are looked up, not formatted, per row.)"""
    rows: list[ReportRow] = []
    subject_columns: dict[int, dict[str, object]] = {}
    names: dict[int, str] = {}
    period_columns: dict[date, tuple[str, str | None]] = {}
    limit_columns = _LimitColumns(limits)
    by_day = granularity == "day"
    for start, (subject_id, item_id, day, peak_value, peak_time) in aggregate(
            values, granularity, week_start):
        peak_text = None
        if peak_time is not None:
            local_peak = peak_time.astimezone(zone)
            peak_text = _HHMM[local_peak.hour * 60 + local_peak.minute]
            if not by_day:
                peak_text = f"{local_peak.date().isoformat()} {peak_text}"
        columns = subject_columns.get(subject_id)
        if columns is None:
            subject = subjects.get(subject_id, Subject(subject_id, str(subject_id)))
            columns = subject_columns[subject_id] = _subject_columns(subject, level)
        item_name = names.get(item_id)
        if item_name is None:
            item_name = names[item_id] = item_names.get(item_id, str(item_id))
        period = period_columns.get(start)
        if period is None:
            period = period_columns[start] = (
                start.isoformat(), _WEEKDAY_NAMES[start.weekday()] if by_day else None)
        limit, effective, over = limit_columns.of(subject_id, item_id, day, peak_value)
        rows.append({**columns, "item_id": item_id, "item_name": item_name,
                     "period_start": period[0], "weekday": period[1], "peak_time": peak_text,
                     "peak_value": peak_value, "limit": limit, "limit_effective_date": effective,
                     "over_limit": over})
    return rows


@dataclass(frozen=True)
class MinuteSeries:
    subject_id: int
    item_id: int
    business_date: date
    day_start: datetime  # aware UTC instant of the first minute
    peaks: Sequence[int]


def detailed_rows(series: Iterable[MinuteSeries], *, level: str, zone: ZoneInfo,
                  subjects: dict[int, Subject], item_names: dict[int, str],
                  limits: dict[tuple[int, int], Limits]) -> list[ReportRow]:
    """One row per minute: `period_start` is the local minute, `peak_time` its HH:MM."""
    rows: list[ReportRow] = []
    ordered = sorted(series, key=lambda s: (s.subject_id, s.item_id, s.business_date))
    limit_columns = _LimitColumns(limits)
    for one in ordered:
        subject = subjects.get(one.subject_id, Subject(one.subject_id, str(one.subject_id)))
        fixed = {**_subject_columns(subject, level), "item_id": one.item_id,
                 "item_name": item_names.get(one.item_id, str(one.item_id))}
        for minute, value in enumerate(one.peaks):
            local = (one.day_start + timedelta(minutes=minute)).astimezone(zone)
            limit, effective, over = limit_columns.of(one.subject_id, one.item_id,
                                                      one.business_date, int(value))
            rows.append({
                **fixed,
                "period_start": local.strftime("%Y-%m-%d %H:%M"),
                "weekday": None,
                "peak_time": local.strftime("%H:%M"),
                "peak_value": int(value),
                "limit": limit, "limit_effective_date": effective, "over_limit": over,
            })
    return rows


def columns_for(level: str) -> list[str]:
    """The column order of rows at `level` (CSV header, table header)."""
    subject = {"system": [], "tenant": ["tenant_id", "tenant_name"]}.get(
        level, ["group_id", "group_name", "tenant_id", "tenant_name"])
    return [*subject, "item_id", "item_name", "period_start", "weekday", "peak_time",
            "peak_value", "limit", "limit_effective_date", "over_limit"]


def missing_dates(start: date, end: date, complete: AbstractSet[date]) -> list[date]:
    """Dates in [start, end] without a succeeded job run."""
    days = (end - start).days + 1
    return [start + timedelta(days=i) for i in range(days)
            if start + timedelta(days=i) not in complete]
