"""Business days, excluded-time windows and report periods, including DST days."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lrm.domain.calendar import (
    business_day,
    day_containing,
    excluded_minute_mask,
    parse_window,
    period_start,
    weekday_index,
)
from lrm.domain.errors import InputError


@pytest.mark.parametrize(("d", "zone", "minutes", "start_utc"), [
    (date(2026, 11, 24), "UTC", 1440, "2026-11-24T00:00:00Z"),
    (date(2026, 3, 29), "Europe/Berlin", 1380, "2026-03-28T23:00:00Z"),
    (date(2026, 10, 25), "Europe/Berlin", 1500, "2026-10-24T22:00:00Z"),
    (date(2026, 3, 8), "America/New_York", 1380, "2026-03-08T05:00:00Z"),
    (date(2026, 11, 1), "America/New_York", 1500, "2026-11-01T04:00:00Z"),
    (date(2026, 7, 1), "Asia/Kolkata", 1440, "2026-06-30T18:30:00Z"),
])
def test_a_business_day_runs_from_local_midnight_to_the_next(d: date, zone: str, minutes: int,
                                                             start_utc: str) -> None:
    """23, 24 or 25 hours depending on DST; the start is local midnight in UTC."""
    from lrm.domain.calendar import utc_iso
    day = business_day(d, zone)
    assert day.minutes == minutes
    assert utc_iso(day.start_ts) == start_utc
    assert day.minute_label(0) == "00:00"
    assert day.minute_label(day.minutes - 1) == "23:59"
    assert day_containing(day.start_ts, zone) == day
    assert day_containing(day.end_ts - 1, zone) == day


def test_a_day_whose_midnight_is_skipped_starts_at_the_transition() -> None:
    """America/Havana springs forward at 00:00 → 01:00 (2026-03-08): the day starts at 01:00."""
    day = business_day(date(2026, 3, 8), "America/Havana")
    assert day.minutes == 1380
    assert day.minute_label(0) == "01:00"


def test_windows_exclude_minutes_whose_local_start_is_inside() -> None:
    """[from, to): "06:55-07:05" excludes 06:55 … 07:04 and nothing else."""
    day = business_day(date(2026, 11, 24), "Europe/Berlin")
    mask = excluded_minute_mask(day, ["06:55-07:05"])
    assert np.flatnonzero(mask).tolist() == list(range(415, 425))


def test_windows_may_wrap_past_midnight_and_end_at_24_00() -> None:
    """"22:00-01:00" is two pieces; "23:59-24:00" is the last minute; overlapping windows
    merge."""
    day = business_day(date(2026, 11, 24), "UTC")
    mask = excluded_minute_mask(day, ["22:00-01:00", "23:59-24:00", "00:30-00:40"])
    assert np.flatnonzero(mask).tolist() == [*range(60), *range(1320, 1440)]
    assert excluded_minute_mask(day, ["00:00-24:00"]).all()


def test_windows_on_dst_days_follow_the_wall_clock() -> None:
    """Autumn: the repeated hour is excluded twice; spring: the skipped hour excludes nothing."""
    autumn = business_day(date(2026, 10, 25), "Europe/Berlin")
    assert np.flatnonzero(excluded_minute_mask(autumn, ["02:00-03:00"])).tolist() == \
        list(range(120, 240))
    spring = business_day(date(2026, 3, 29), "Europe/Berlin")
    assert not excluded_minute_mask(spring, ["02:00-03:00"]).any()
    assert np.flatnonzero(excluded_minute_mask(spring, ["01:59-03:01"])).tolist() == \
        [119, 120]


def test_every_bad_window_is_reported() -> None:
    """All malformed windows are listed in one InputError."""
    day = business_day(date(2026, 11, 24), "UTC")
    with pytest.raises(InputError) as caught:
        excluded_minute_mask(day, ["7-8", "25:00-26:00", "10:00-10:00", "10:00-24:30"])
    assert caught.value.problems == [
        "'7-8' is not a window in HH:MM-HH:MM form",
        "'25:00-26:00': 25:00 is not a time of day",
        "'25:00-26:00': 26:00 is not a time of day (or 24:00)",
        "'10:00-10:00' is empty",
        "'10:00-24:30': 24:30 is not a time of day (or 24:00)",
    ]


@given(st.integers(0, 1439), st.integers(1, 1440))
def test_parse_window_round_trips(start: int, end: int) -> None:
    """Any HH:MM-HH:MM with distinct ends parses back to its minutes."""
    if start == end:
        return
    text = f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"
    assert parse_window(text) == (start, end)


@pytest.mark.parametrize(("d", "granularity", "week_start", "expected"), [
    (date(2026, 11, 25), "day", "monday", date(2026, 11, 25)),
    (date(2026, 11, 25), "detailed", "monday", date(2026, 11, 25)),
    (date(2026, 11, 25), "week", "monday", date(2026, 11, 23)),
    (date(2026, 11, 23), "week", "monday", date(2026, 11, 23)),
    (date(2026, 11, 25), "week", "sunday", date(2026, 11, 22)),
    (date(2026, 11, 25), "week", "Thursday", date(2026, 11, 19)),
    (date(2026, 11, 25), "week", 2, date(2026, 11, 25)),
    (date(2026, 11, 25), "month", "monday", date(2026, 11, 1)),
    (date(2026, 1, 1), "week", "monday", date(2025, 12, 29)),
])
def test_period_start_aligns_on_the_granularity(d: date, granularity: str,
                                                week_start: str | int, expected: date) -> None:
    """Weeks start on the requested weekday (across a year end), months on the 1st."""
    assert period_start(d, granularity, week_start) == expected


def test_bad_granularity_and_week_start_are_input_errors() -> None:
    """Unknown names are refused with a message naming the value."""
    with pytest.raises(InputError, match="fortnight"):
        period_start(date(2026, 1, 1), "fortnight")
    with pytest.raises(InputError, match="funday"):
        weekday_index("funday")
    with pytest.raises(InputError):
        weekday_index(7)
