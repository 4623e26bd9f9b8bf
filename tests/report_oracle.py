"""A row-by-row oracle for report rows (SPEC §7), written as plainly as possible: a dict per
row, dates and times formatted by `datetime`, the period's winner found by comparing values one
by one, limits looked up per row with `Limits.in_force`. It shares no code with
`lrm.domain.report_table` (it is the first version of the report rows, before they became
columns)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from lrm.domain.report_rows import Limits, Subject

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class DailyValue:
    subject_id: int
    item_id: int
    business_date: date
    peak_value: int
    peak_time: datetime | None  # aware UTC instant of the peak minute's start


@dataclass(frozen=True)
class MinuteSeries:
    subject_id: int
    item_id: int
    business_date: date
    day_start: datetime  # aware UTC instant of the first minute
    peaks: list[int]


def period_of(day: date, granularity: str, week_start: str) -> date:
    if granularity == "week":
        while day.weekday() != WEEKDAYS.index(week_start):
            day -= timedelta(days=1)
        return day
    if granularity == "month":
        return date(day.year, day.month, 1)
    return day


def subject_columns(subject: Subject, level: str) -> dict[str, object]:
    if level == "system":
        return {}
    if level == "tenant":
        return {"tenant_id": subject.id, "tenant_name": subject.name}
    return {"group_id": subject.id, "group_name": subject.name,
            "tenant_id": subject.tenant_id, "tenant_name": subject.tenant_name}


def limit_columns(limits: Mapping[tuple[int, int], Limits], subject: int, item: int,
                  day: date, value: int) -> dict[str, object]:
    history = limits.get((subject, item))
    found = history.in_force(day) if history is not None else None
    if found is None:
        return {"limit": None, "limit_effective_date": None, "over_limit": False}
    quantity, effective = found
    return {"limit": quantity, "limit_effective_date": effective.isoformat(),
            "over_limit": value > quantity}


def daily_rows(values: Iterable[DailyValue], *, level: str, granularity: str, week_start: str,
               zone: ZoneInfo, subjects: Mapping[int, Subject], item_names: Mapping[int, str],
               limits: Mapping[tuple[int, int], Limits]) -> list[dict[str, object]]:
    best: dict[tuple[int, int, date], DailyValue] = {}
    for value in values:
        key = (value.subject_id, value.item_id,
               period_of(value.business_date, granularity, week_start))
        current = best.get(key)
        if current is None or value.peak_value > current.peak_value or (
                value.peak_value == current.peak_value
                and value.business_date > current.business_date):
            best[key] = value
    rows = []
    for (subject_id, item_id, period) in sorted(best):
        value = best[(subject_id, item_id, period)]
        peak_text = None
        if value.peak_time is not None:
            local = value.peak_time.astimezone(zone)
            peak_text = local.strftime("%H:%M" if granularity == "day" else "%Y-%m-%d %H:%M")
        subject = subjects.get(subject_id, Subject(subject_id, str(subject_id)))
        rows.append({
            **subject_columns(subject, level), "item_id": item_id,
            "item_name": item_names.get(item_id, str(item_id)),
            "period_start": period.isoformat(),
            "weekday": WEEKDAY_NAMES[period.weekday()] if granularity == "day" else None,
            "peak_time": peak_text, "peak_value": value.peak_value,
            **limit_columns(limits, subject_id, item_id, value.business_date,
                            value.peak_value)})
    return rows


def detailed_rows(series: Iterable[MinuteSeries], *, level: str, zone: ZoneInfo,
                  subjects: Mapping[int, Subject], item_names: Mapping[int, str],
                  limits: Mapping[tuple[int, int], Limits]) -> list[dict[str, object]]:
    rows = []
    for one in sorted(series, key=lambda s: (s.subject_id, s.item_id, s.business_date)):
        subject = subjects.get(one.subject_id, Subject(one.subject_id, str(one.subject_id)))
        for minute, value in enumerate(one.peaks):
            local = (one.day_start + timedelta(minutes=minute)).astimezone(zone)
            rows.append({
                **subject_columns(subject, level), "item_id": one.item_id,
                "item_name": item_names.get(one.item_id, str(one.item_id)),
                "period_start": local.strftime("%Y-%m-%d %H:%M"), "weekday": None,
                "peak_time": local.strftime("%H:%M"), "peak_value": value,
                **limit_columns(limits, one.subject_id, one.item_id, one.business_date, value)})
    return rows


def utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
