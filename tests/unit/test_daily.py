"""Daily values with excluded time and latest-minute ties, weekly/monthly aggregation, enabled
agents and GVP daily values."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from lrm.domain._arrays import i64
from lrm.domain.calendar import Granularity, business_day, period_start
from lrm.domain.config import build_config_history
from lrm.domain.daily import daily_peak, enabled_agents_daily, gvp_daily
from lrm.domain.report_rows import day_number, day_of
from lrm.domain.report_table import NO_TIME, DailyColumns, period_starts, winners
from lrm.domain.vocabulary import Vocabulary
from tests.strategies import document, person


def test_the_latest_minute_at_the_maximum_is_the_peak() -> None:
    """Ties go to the latest minute; excluded minutes are ignored even when higher."""
    rows = np.array([[1, 3, 2, 3, 0], [5, 1, 1, 1, 1]], dtype=np.int32)
    excluded = np.array([False, False, False, False, False])
    assert [a.tolist() for a in daily_peak(rows, excluded)] == [[3, 5], [3, 0]]
    excluded = np.array([True, False, False, True, False])
    assert [a.tolist() for a in daily_peak(rows, excluded)] == [[3, 1], [1, 4]]


def test_an_all_zero_day_peaks_at_its_latest_non_excluded_minute() -> None:
    """Value 0 at the latest minute not excluded; a fully excluded day has no peak (-1)."""
    rows = np.zeros((1, 4), dtype=np.int32)
    assert [a.tolist() for a in daily_peak(rows, np.array([False, False, True, True]))] == \
        [[0], [1]]
    assert [a.tolist() for a in daily_peak(rows, np.ones(4, dtype=np.bool_))] == [[0], [-1]]


@given(st.lists(st.lists(st.integers(0, 4), min_size=6, max_size=6), min_size=1, max_size=5),
       st.lists(st.booleans(), min_size=6, max_size=6))
def test_daily_peak_matches_a_plain_loop(rows: list[list[int]], excluded: list[bool]) -> None:
    """Vectorised over rows and leading axes, equal to a loop with >= on every minute."""
    values, minutes = daily_peak(np.array(rows, dtype=np.int32)[None], np.array(excluded))
    for r, row in enumerate(rows):
        best, at = -1, -1
        for m, v in enumerate(row):
            if not excluded[m] and v >= best:
                best, at = v, m
        assert (values[0, r], minutes[0, r]) == ((best, at) if at >= 0 else (0, -1))


def _aggregate(days: list[date], values: list[int], granularity: Granularity,
               week_start: str = "monday") -> list[tuple[date, int, date]]:
    """(period start, value, day) of each period's winner; a negative value is a day without a
    row."""
    kept = [(d, v) for d, v in zip(days, values, strict=True) if v >= 0]
    n = len(kept)
    columns = DailyColumns(subject=np.full(n, 101), item=np.ones(n, dtype=np.int64),
                           day=np.array([day_number(d) for d, _ in kept], dtype=np.int64),
                           value=np.array([v for _, v in kept], dtype=np.int64),
                           peak_ts=np.full(n, NO_TIME))
    periods = period_starts(columns.day, granularity, week_start)
    return [(day_of(int(periods[w])), int(columns.value[w]), day_of(int(columns.day[w])))
            for w in winners(columns, periods).tolist()]


def test_weekly_and_monthly_values_are_the_maximum_daily_value_latest_on_ties() -> None:
    """Period starts align on the week start / the 1st even when the range starts inside a
    period; ties go to the latest day; days without a row are skipped."""
    days = [date(2026, 11, 25) + timedelta(days=k) for k in range(10)]  # Wed 25 … Fri 4 Dec
    values = [3, 5, 5, 1, 0, -1, 2, 2, 7, -1]
    assert _aggregate(days, values, "week", "monday") == [
        (date(2026, 11, 23), 5, days[2]), (date(2026, 11, 30), 7, days[8])]
    assert _aggregate(days, values, "month") == [
        (date(2026, 11, 1), 5, days[2]), (date(2026, 12, 1), 7, days[8])]
    assert [p for p, _, _ in _aggregate(days, values, "week", "sunday")] == [
        date(2026, 11, 22), date(2026, 11, 29)]
    assert _aggregate(days[:1], [-1], "day") == []


@given(st.lists(st.integers(-1, 3), min_size=1, max_size=40), st.sampled_from(
    ["day", "week", "month"]), st.sampled_from(["monday", "wednesday", "sunday"]))
def test_aggregation_matches_a_plain_loop(values: list[int], granularity: Granularity,
                                          week_start: str) -> None:
    """Each period's value is the plain maximum over its days, at the latest such day."""
    days = [date(2026, 12, 20) + timedelta(days=k) for k in range(len(values))]
    got = _aggregate(days, values, granularity, week_start)
    expected: dict[date, tuple[int, int]] = {}
    for j, d in enumerate(days):
        p = period_start(d, granularity, week_start)
        best = expected.get(p, (-1, -1))
        if values[j] >= 0 and values[j] >= best[0]:
            best = (values[j], j)
        if best[1] >= 0:
            expected[p] = best
    assert got == [(p, expected[p][0], days[expected[p][1]]) for p in sorted(expected)]


def test_gvp_daily_value_is_the_latest_maximum_five_minute_bin_inside_the_day() -> None:
    """Bins outside the business day are ignored; the peak time is the bin start."""
    day = business_day(date(2026, 11, 24), "Europe/Berlin")
    bins = [day.start_ts - 300, day.start_ts, day.start_ts + 600, day.start_ts + 900,
            day.end_ts]
    assert gvp_daily(day, bins, [99, 3, 7, 7, 99]) == (7, 15)
    assert gvp_daily(day, [], []) == (0, -1)


def test_enabled_agents_per_group_count_enabled_members_and_places_in_state_one() -> None:
    """Agent groups count members that are enabled agents; place groups count member places
    with state 1; the latest document wins ties."""
    day = business_day(date(2026, 11, 24), "UTC")
    doc1 = document(persons=[person(1), person(2, state=2), person(3, is_agent=1)],
                    places={3001: 101, 3002: 101},
                    agent_groups={7001: [1, 2, 3], 7002: [2]}, place_groups={8001: [3001, 9]})
    doc1["places"][1]["state"] = 2
    doc2 = document(persons=[person(1), person(2), person(3)], places={3001: 101},
                    agent_groups={7001: [1], 7002: [2]}, place_groups={8001: [3001]})
    history = build_config_history([(day.start_ts - 60, doc1), (day.start_ts + 3600, doc2)],
                                   Vocabulary())
    agent = enabled_agents_daily(day, history, "agent_group", i64([7001, 7002]))
    assert (agent.value.tolist(), agent.minute.tolist()) == ([1, 1], [60, 60])
    place = enabled_agents_daily(day, history, "place_group", i64([8001]))
    assert (place.value.tolist(), place.minute.tolist()) == ([1], [60])
    system = enabled_agents_daily(day, history, "system", i64([101]))
    assert (system.subject_ids.tolist(), system.value.tolist(), system.minute.tolist()) == \
        ([0], [3], [60])
