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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from lrm.domain.calendar import Granularity, period_start


@dataclass(frozen=True)
class DailyValue:
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


ReportRow = dict[str, object]


def aggregate(values: Iterable[DailyValue], granularity: Granularity,
              week_start: str = "monday") -> list[tuple[date, DailyValue]]:
    """(period_start, the winning daily value) per (subject, item, period): the maximum daily
    value, the latest day on ties. Sorted by subject, item, period."""
    if granularity == "day":
        # Every (subject, item, day) has one daily value: nothing to choose between.
        ordered = sorted(values, key=lambda v: (v.subject_id, v.item_id, v.business_date))
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


def _limit_columns(limits: dict[tuple[int, int], Limits], subject_id: int, item_id: int,
                   day: date, peak_value: int) -> tuple[int | None, str | None, bool]:
    """(limit, limit_effective_date, over_limit)."""
    history = limits.get((subject_id, item_id))
    found = history.in_force(day) if history else None
    if found is None:
        return None, None, False
    quantity, effective = found
    return quantity, effective.isoformat(), peak_value > quantity


def _subject_columns(subject: Subject, level: str) -> dict[str, object]:
    if level == "system":
        return {}
    if level == "tenant":
        return {"tenant_id": subject.id, "tenant_name": subject.name}
    return {"group_id": subject.id, "group_name": subject.name,
            "tenant_id": subject.tenant_id, "tenant_name": subject.tenant_name}


_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
                  "Sunday")


def _hhmm(instant: datetime) -> str:
    return f"{instant.hour:02d}:{instant.minute:02d}"


def daily_rows(values: Iterable[DailyValue], *, level: str, granularity: Granularity,
               week_start: str, zone: ZoneInfo, subjects: dict[int, Subject],
               item_names: dict[int, str],
               limits: dict[tuple[int, int], Limits]) -> list[ReportRow]:
    """Rows for day, week or month granularity. (Formatting avoids strftime: a month report
    for one tenant is ~1,000 rows and this runs for every request.)"""
    rows: list[ReportRow] = []
    subject_columns: dict[int, dict[str, object]] = {}
    for start, value in aggregate(values, granularity, week_start):
        peak_text = None
        if value.peak_time is not None:
            local_peak = value.peak_time.astimezone(zone)
            peak_text = (_hhmm(local_peak) if granularity == "day"
                         else f"{local_peak.date().isoformat()} {_hhmm(local_peak)}")
        columns = subject_columns.get(value.subject_id)
        if columns is None:
            subject = subjects.get(value.subject_id,
                                   Subject(value.subject_id, str(value.subject_id)))
            columns = subject_columns[value.subject_id] = _subject_columns(subject, level)
        limit, effective, over = _limit_columns(limits, value.subject_id, value.item_id,
                                                value.business_date, value.peak_value)
        row = columns.copy()
        row["item_id"] = value.item_id
        row["item_name"] = item_names.get(value.item_id, str(value.item_id))
        row["period_start"] = start.isoformat()
        row["weekday"] = _WEEKDAY_NAMES[start.weekday()] if granularity == "day" else None
        row["peak_time"] = peak_text
        row["peak_value"] = value.peak_value
        row["limit"], row["limit_effective_date"], row["over_limit"] = limit, effective, over
        rows.append(row)
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
    for one in ordered:
        subject = subjects.get(one.subject_id, Subject(one.subject_id, str(one.subject_id)))
        fixed = {**_subject_columns(subject, level), "item_id": one.item_id,
                 "item_name": item_names.get(one.item_id, str(one.item_id))}
        for minute, value in enumerate(one.peaks):
            local = (one.day_start + timedelta(minutes=minute)).astimezone(zone)
            limit, effective, over = _limit_columns(limits, one.subject_id, one.item_id,
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


def missing_dates(start: date, end: date, complete: set[date]) -> list[date]:
    """Dates in [start, end] without a succeeded job run."""
    days = (end - start).days + 1
    return [start + timedelta(days=i) for i in range(days)
            if start + timedelta(days=i) not in complete]
