"""Limits beside report rows: entitlement files by day (newest issue wins, gaps have none).
(The limit of a week/month row, taken on the day of its peak: test_report_table.py.) And the
freshness beside them: the dates of a range without a succeeded run."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from lrm.domain.report_rows import EntitlementFile, entitlement_limits, missing_dates

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


@given(st.dates(date(2024, 1, 1), date(2027, 12, 31)), st.integers(0, 400),
       st.sets(st.dates(date(2024, 1, 1), date(2028, 12, 31)), max_size=200))
def test_missing_dates_are_the_range_without_the_complete_dates(
        start: date, length: int, complete: set[date]) -> None:
    end = start + timedelta(days=length)
    every_day = {start + timedelta(days=i) for i in range(length + 1)}
    assert missing_dates(start, end, frozenset(complete)) == sorted(every_day - complete)
    assert missing_dates(end + timedelta(days=1), end, frozenset(complete)) == []


def test_missing_dates_reach_the_last_date_there_is() -> None:
    last = date.max
    assert missing_dates(last - timedelta(days=1), last, frozenset()) == [
        last - timedelta(days=1), last]
    assert missing_dates(last, last, frozenset({last})) == []
