"""Report rows as columns (`lrm.domain.report_table`) against the row-by-row oracle
(`tests/report_oracle.py`), on random values around DST changes, in zones with odd offsets,
with ties, missing peak times and limits that change, stop and start again; and the JSON
assembled from distinct texts against orjson's rendering of the same rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from lrm.domain import report_table
from lrm.domain.calendar import business_day, local_ts, utc_offsets
from lrm.domain.report_rows import (
    DailyLimits,
    EntitlementFile,
    LimitHistory,
    Limits,
    LimitTable,
    Subject,
    day_number,
    entitlement_limits,
)
from lrm.domain.report_table import (
    NO_TIME,
    DailyColumns,
    MinuteColumns,
    daily_table,
    detailed_table,
)
from tests import report_oracle as oracle

# Zones with DST both ways, half-hour and 45-minute offsets, a 30-minute DST shift.
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata",
         "Pacific/Chatham", "America/Sao_Paulo")
FIRST = date(2026, 3, 20)  # the days drawn run past the March and April changes
DAYS = 50
SUBJECTS = {101: Subject(101, "Acme"), 102: Subject(102, 'Quote " and \\ Ünïcode'),
            7001: Subject(7001, "Sales", 101, "Acme")}
ITEM_NAMES = {1: "Concurrent seat", 2: "Voice seat", 10001: "Bundle \u2028 odd"}
LEVELS = ("tenant", "system", "agent_group")
# Small limits (often exceeded), and the largest a limit can be (a 32-bit column).
QUANTITIES = st.one_of(st.integers(0, 4), st.just(2**31 - 1))


def columns(values: Sequence[oracle.DailyValue]) -> DailyColumns:
    def ints(get: object) -> np.ndarray:
        return np.array([get(v) for v in values], dtype=np.int64)  # type: ignore[operator]

    return DailyColumns(
        subject=ints(lambda v: v.subject_id), item=ints(lambda v: v.item_id),
        day=ints(lambda v: day_number(v.business_date)), value=ints(lambda v: v.peak_value),
        peak_ts=ints(lambda v: NO_TIME if v.peak_time is None else int(v.peak_time.timestamp())))


@st.composite
def daily_values(draw: st.DrawFn, zone: ZoneInfo) -> list[oracle.DailyValue]:
    pairs = draw(st.lists(st.tuples(st.sampled_from((101, 102, 7001, 55)),
                                    st.sampled_from((1, 2, 10001, 77))), unique=True,
                          max_size=4))
    keys = [(subject, item, offset) for subject, item in pairs
            for offset in draw(st.lists(st.integers(0, DAYS - 1), unique=True, max_size=25))]
    values = []
    for subject, item, offset in keys:
        day = business_day(FIRST + timedelta(days=offset), zone)
        minute = draw(st.one_of(st.none(), st.integers(0, day.minutes - 1),
                                st.sampled_from((0, day.minutes - 1, 120, 180))))
        values.append(oracle.DailyValue(
            subject, item, day.date, draw(st.one_of(st.integers(0, 3),
                                                    st.sampled_from((9_999, 10_000, 123_456)))),
            None if minute is None else datetime.fromtimestamp(day.minute_ts(minute), UTC)))
    return values


@st.composite
def limits(draw: st.DrawFn) -> dict[tuple[int, int], Limits]:
    found: dict[tuple[int, int], Limits] = {}
    for pair in draw(st.lists(st.tuples(st.sampled_from((101, 102, 7001, 0)),
                                        st.sampled_from((1, 2, 10001))), unique=True)):
        if draw(st.booleans()):
            dates = sorted(draw(st.lists(st.integers(-5, DAYS), min_size=1, max_size=4,
                                         unique=True)))
            found[pair] = LimitHistory([FIRST + timedelta(days=d) for d in dates],
                                       draw(st.lists(QUANTITIES, min_size=len(dates),
                                                     max_size=len(dates))))
        else:
            days = draw(st.lists(st.integers(0, DAYS - 1), unique=True, max_size=20))
            found[pair] = DailyLimits({
                FIRST + timedelta(days=d): (draw(QUANTITIES),
                                            FIRST + timedelta(days=draw(st.integers(-3, d))))
                for d in days})
    return found


@settings(max_examples=300, deadline=None)
@given(data=st.data(), zone_name=st.sampled_from(ZONES), level=st.sampled_from(LEVELS),
       granularity=st.sampled_from(("day", "week", "month")),
       week_start=st.sampled_from(oracle.WEEKDAYS))
def test_daily_rows_equal_the_oracle(data: st.DataObject, zone_name: str, level: str,
                                     granularity: str, week_start: str) -> None:
    zone = ZoneInfo(zone_name)
    values = data.draw(daily_values(zone))
    if data.draw(st.booleans(), label="in the order the store reads them"):
        values.sort(key=lambda v: (v.subject_id, v.item_id, v.business_date))
    limit_map = data.draw(limits())
    expected = oracle.daily_rows(values, level=level, granularity=granularity,
                                 week_start=week_start, zone=zone, subjects=SUBJECTS,
                                 item_names=ITEM_NAMES, limits=limit_map)
    table = daily_table(columns(values), level=level, granularity=granularity,  # type: ignore[arg-type]
                        week_start=week_start, zone=zone, subjects=SUBJECTS,
                        item_names=ITEM_NAMES, limits=LimitTable.of(limit_map))
    assert table.rows() == expected
    assert table.json_rows() == orjson.dumps(expected)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), zone_name=st.sampled_from(ZONES), level=st.sampled_from(LEVELS))
def test_detailed_rows_equal_the_oracle(data: st.DataObject, zone_name: str,
                                        level: str) -> None:
    zone = ZoneInfo(zone_name)
    keys = data.draw(st.lists(st.tuples(st.sampled_from((101, 102, 55)),
                                        st.sampled_from((1, 2, 77)),
                                        st.sampled_from((8, 9, 10, 14, 15, 16, 22))),
                              unique=True, max_size=5))
    series = []
    for subject, item, offset in keys:
        day = business_day(FIRST + timedelta(days=offset), zone)
        rng = np.random.default_rng(data.draw(st.integers(0, 2**32)))
        peaks = rng.integers(0, 4, day.minutes).tolist()
        series.append(oracle.MinuteSeries(subject, item, day.date,
                                          datetime.fromtimestamp(day.start_ts, UTC), peaks))
    limit_map = data.draw(limits())
    expected = oracle.detailed_rows(series, level=level, zone=zone, subjects=SUBJECTS,
                                    item_names=ITEM_NAMES, limits=limit_map)
    table = detailed_table(MinuteColumns(
        subject=np.array([s.subject_id for s in series], dtype=np.int64),
        item=np.array([s.item_id for s in series], dtype=np.int64),
        day=np.array([day_number(s.business_date) for s in series], dtype=np.int64),
        day_start_ts=np.array([int(s.day_start.timestamp()) for s in series], dtype=np.int64),
        lengths=np.array([len(s.peaks) for s in series], dtype=np.int64),
        peaks=np.array([p for s in series for p in s.peaks], dtype=np.int64)),
        level=level, zone=zone, subjects=SUBJECTS, item_names=ITEM_NAMES,
        limits=LimitTable.of(limit_map))
    assert table.rows() == expected
    assert table.json_rows() == orjson.dumps(expected)


@settings(max_examples=150, deadline=None)
@given(zone_name=st.sampled_from((*ZONES, "Europe/Dublin", "Africa/Casablanca",
                                  "Antarctica/Troll", "America/St_Johns")),
       year=st.integers(1900, 2100), data=st.data())
def test_local_time_equals_the_zones_wall_clock(zone_name: str, year: int,
                                                data: st.DataObject) -> None:
    zone = ZoneInfo(zone_name)
    begin = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
    ts = data.draw(st.lists(st.one_of(st.integers(begin - 86_400, begin + 366 * 86_400),
                                      st.integers(begin, begin + 366 * 86_400).map(
                                          lambda t: t - t % 1800)), min_size=1, max_size=20))
    local = local_ts(zone, np.array(ts, dtype=np.int64))
    for instant, wall in zip(ts, local.tolist(), strict=True):
        expected = datetime.fromtimestamp(instant, zone).replace(tzinfo=None)
        assert datetime(1970, 1, 1) + timedelta(seconds=wall) == expected


def test_offsets_change_at_the_exact_second() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    starts, offsets = utc_offsets(berlin, int(datetime(2026, 1, 1, tzinfo=UTC).timestamp()),
                                  int(datetime(2027, 1, 1, tzinfo=UTC).timestamp()))
    assert [datetime.fromtimestamp(int(s), UTC) for s in starts[1:]] == [
        datetime(2026, 3, 29, 1, tzinfo=UTC), datetime(2026, 10, 25, 1, tzinfo=UTC)]
    assert offsets.tolist() == [3600, 7200, 3600]


NOV = [date(2026, 11, d) for d in range(1, 31)]
FILES = [EntitlementFile(1, date(2026, 1, 1), NOV[0], NOV[29], {1: 10}),
         EntitlementFile(2, date(2026, 2, 1), NOV[9], NOV[19], {1: 20, 2: 5})]


def test_a_limit_table_of_entitlements_ends_where_no_file_is_valid() -> None:
    table = LimitTable.of(entitlement_limits(FILES, date(2026, 10, 30), NOV[21]))
    days = [date(2026, 10, 31), NOV[8], NOV[9], NOV[19], NOV[20], NOV[21], date(2026, 11, 22)]
    n = np.array([day_number(d) for d in days], dtype=np.int64)
    for item, quantities, effective in (
            (1, [-1, 10, 20, 20, 10, 10, 10], [None, NOV[0], NOV[9], NOV[9], NOV[0], NOV[0],
                                               NOV[0]]),
            (2, [-1, -1, 5, 5, -1, -1, -1], [None, None, NOV[9], NOV[9], None, None, None])):
        quantity, since = table.in_force(np.zeros(n.size, dtype=np.int64),
                                         np.full(n.size, item, dtype=np.int64), n)
        assert quantity.tolist() == quantities
        assert since.tolist() == [-1 if d is None else day_number(d) for d in effective]


def test_limits_far_in_the_future_or_past_stay_with_their_own_pair() -> None:
    table = LimitTable.of({(1, 1): LimitHistory([date(1, 1, 1), date(9999, 12, 31)], [5, 7]),
                           (2, 1): LimitHistory([date(2026, 6, 1)], [9])})
    days = np.array([day_number(d) for d in (date(2026, 3, 1), date(2026, 6, 1),
                                             date(9999, 12, 31))], dtype=np.int64)
    one = np.ones(3, dtype=np.int64)
    assert [a.tolist() for a in table.in_force(one * 2, one, days)] == [
        [-1, 9, 9], [-1, days[1], days[1]]]
    assert [a.tolist() for a in table.in_force(one, one, days)] == [
        [5, 5, 7], [day_number(date(1, 1, 1))] * 2 + [days[2]]]


def test_a_month_row_takes_the_limit_of_its_peak_day() -> None:
    values = [oracle.DailyValue(101, 1, NOV[1], 7, datetime(2026, 11, 2, 9, 15, tzinfo=UTC)),
              oracle.DailyValue(101, 1, NOV[11], 9, datetime(2026, 11, 12, 22, 30, tzinfo=UTC)),
              oracle.DailyValue(101, 1, NOV[12], 9, None)]
    limit_table = LimitTable.of({(101, 1): LimitHistory([NOV[0], NOV[12]], [8, 10])})
    berlin = ZoneInfo("Europe/Berlin")
    rows = daily_table(columns(values), level="tenant", granularity="month",
                       week_start="monday", zone=berlin, subjects={101: Subject(101, "Acme")},
                       item_names={1: "Voice agent"}, limits=limit_table).rows()
    # The latest day at the maximum (Nov 13) wins; its limit is the one from Nov 13.
    assert rows == [{"tenant_id": 101, "tenant_name": "Acme", "item_id": 1,
                     "item_name": "Voice agent", "period_start": "2026-11-01", "weekday": None,
                     "peak_time": None, "peak_value": 9, "limit": 10,
                     "limit_effective_date": "2026-11-13", "over_limit": False}]
    day_rows = daily_table(columns(values[:2]), level="tenant", granularity="day",
                           week_start="monday", zone=berlin, subjects={}, item_names={},
                           limits=limit_table).rows()
    assert [(r["period_start"], r["weekday"], r["peak_time"], r["limit"], r["over_limit"],
             r["tenant_name"], r["item_name"]) for r in day_rows] == [
        ("2026-11-02", "Monday", "10:15", 8, False, "101", "1"),
        ("2026-11-12", "Thursday", "23:30", 8, True, "101", "1")]


def test_an_empty_report_has_no_rows() -> None:
    empty = np.empty(0, dtype=np.int64)
    table = daily_table(DailyColumns(empty, empty, empty, empty, empty), level="system",
                        granularity="week", week_start="sunday", zone=ZoneInfo("UTC"),
                        subjects={}, item_names={}, limits=LimitTable.of({}))
    assert table.rows() == [] and table.json_rows() == b"[]"


def test_only_ranges_of_up_to_a_year_keep_their_period_texts() -> None:
    """The texts of a range's days are kept across reports for ranges of up to a year; longer
    ones (up to ten years of days) are made each time, so that distinct long reports cannot
    make the process hold hundreds of MB."""
    def day_report(days: int) -> None:
        day = np.arange(day_number(FIRST), day_number(FIRST) + days, dtype=np.int64)
        ones = np.ones(days, dtype=np.int64)
        daily_table(DailyColumns(ones * 101, ones, day, ones, np.full(days, NO_TIME)),
                    level="tenant", granularity="day", week_start="monday",
                    zone=ZoneInfo("UTC"), subjects=SUBJECTS, item_names=ITEM_NAMES,
                    limits=LimitTable.of({}))

    kept = report_table._kept_period_columns
    kept.cache_clear()
    day_report(400)
    assert kept.cache_info().currsize == 1
    day_report(401)
    day_report(3660)
    assert kept.cache_info().currsize == 1
