"""Limits beside report rows: entitlement files by day (newest issue wins, gaps have none), and
the limit of a week/month row taken on the day of its peak."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from lrm.domain.report_rows import (
    DailyValue,
    EntitlementFile,
    LimitHistory,
    Subject,
    daily_rows,
    entitlement_limits,
)

NOV = [date(2026, 11, d) for d in range(1, 31)]
FILES = [EntitlementFile(1, date(2026, 1, 1), NOV[0], NOV[29], {1: 10}),
         EntitlementFile(2, date(2026, 2, 1), NOV[9], NOV[19], {1: 20, 2: 5})]


def test_the_newest_issue_in_force_gives_each_days_limit() -> None:
    limits = entitlement_limits(FILES, date(2026, 10, 30), NOV[21])
    item_1, item_2 = limits[(0, 1)], limits[(0, 2)]
    assert item_1.in_force(date(2026, 10, 31)) is None  # before any file
    assert item_1.in_force(NOV[8]) == (10, NOV[0])
    assert item_1.in_force(NOV[9]) == (20, NOV[9])
    assert item_1.in_force(NOV[19]) == (20, NOV[9])
    assert item_1.in_force(NOV[20]) == (10, NOV[0])
    assert item_2.in_force(NOV[8]) is None and item_2.in_force(NOV[15]) == (5, NOV[9])
    assert item_2.in_force(NOV[21]) is None


def test_no_file_in_range_gives_no_limits() -> None:
    assert entitlement_limits(FILES, date(2026, 12, 1), date(2026, 12, 31)) == {}
    assert entitlement_limits([], NOV[0], NOV[29]) == {}


def test_a_month_row_takes_the_limit_of_its_peak_day() -> None:
    values = [DailyValue(101, 1, NOV[1], 7, datetime(2026, 11, 2, 9, 15, tzinfo=UTC)),
              DailyValue(101, 1, NOV[11], 9, datetime(2026, 11, 12, 22, 30, tzinfo=UTC)),
              DailyValue(101, 1, NOV[12], 9, None)]
    limits = {(101, 1): LimitHistory([NOV[0], NOV[12]], [8, 10])}
    rows = daily_rows(values, level="tenant", granularity="month", week_start="monday",
                      zone=ZoneInfo("Europe/Berlin"), subjects={101: Subject(101, "Acme")},
                      item_names={1: "Voice agent"}, limits=limits)
    # The latest day at the maximum (Nov 13) wins; its limit is the one from Nov 13.
    assert rows == [{"tenant_id": 101, "tenant_name": "Acme", "item_id": 1,
                     "item_name": "Voice agent", "period_start": "2026-11-01", "weekday": None,
                     "peak_time": None, "peak_value": 9, "limit": 10,
                     "limit_effective_date": "2026-11-13", "over_limit": False}]
    day_rows = daily_rows(values[:2], level="tenant", granularity="day", week_start="monday",
                          zone=ZoneInfo("Europe/Berlin"), subjects={}, item_names={},
                          limits=limits)
    assert [(r["period_start"], r["weekday"], r["peak_time"], r["limit"], r["over_limit"],
             r["tenant_name"], r["item_name"]) for r in day_rows] == [
        ("2026-11-02", "Monday", "10:15", 8, False, "101", "1"),
        ("2026-11-12", "Thursday", "23:30", 8, True, "101", "1")]
