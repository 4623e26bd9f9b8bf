"""The whole count against the brute-force per-second oracle, plus algebraic properties."""

from __future__ import annotations

from unittest.mock import patch

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lrm.domain import count
from lrm.domain.config import build_config_history
from lrm.domain.count import DayResult, LevelPart, LevelResult, count_day
from lrm.domain.resolve import resolve_sessions
from lrm.domain.sessions import SessionTable
from lrm.domain.vocabulary import Vocabulary
from tests.oracle import oracle_count
from tests.strategies import PERSONS, PLACES, Scenario, scenarios


def run(sc: Scenario, *, workers: int = 1) -> DayResult:
    return count_day(sc.day, sc.sessions, sc.samples, sc.catalogue, sc.bundle_set, sc.windows,
                     sc.now_ts, workers=workers)


def assert_matches_oracle(sc: Scenario, result: DayResult) -> None:
    expected = oracle_count(sc.day, sc.sessions, sc.samples, sc.catalogue, sc.bundle_set,
                            sc.windows, sc.now_ts)
    for kind, n in expected.counts.items():
        assert result.counts[kind] == n, kind
    assert result.excluded.tolist() == expected.excluded
    for level, lr in result.levels.items():
        assert lr.subject_ids.tolist() == expected.subjects[level], level
        assert lr.item_ids.tolist() == expected.items[level], level
        assert lr.minute_peaks.shape == (lr.subject_ids.size, lr.item_ids.size, sc.day.minutes)
        for s, subject in enumerate(lr.subject_ids.tolist()):
            for i, item in enumerate(lr.item_ids.tolist()):
                key = (level, subject, item)
                assert lr.minute_peaks[s, i].tolist() == expected.minute[key], key
                got = (int(lr.daily_value[s, i]), int(lr.daily_minute[s, i]))
                assert got == expected.daily[key], key
            enabled = (int(lr.enabled.value[s]), int(lr.enabled.minute[s]))
            assert enabled == expected.enabled[(level, subject)], (level, subject)


@settings(max_examples=120)
@given(scenarios())
def test_count_day_equals_the_per_second_oracle(sc: Scenario) -> None:
    """Every per-minute value, daily value, latest-tie peak minute, enabled-agent value and
    set-aside count equals the brute-force oracle, at every level, for items and bundles."""
    assert_matches_oracle(sc, run(sc))


@settings(max_examples=40)
@given(scenarios(max_sessions=25))
def test_busy_days_with_many_sessions_per_seat_equal_the_oracle(sc: Scenario) -> None:
    """With up to 25 sessions on a handful of seats (many overlaps and ties), the count still
    equals the oracle."""
    assert_matches_oracle(sc, run(sc))


@settings(max_examples=40)
@given(scenarios())
def test_threaded_and_sequential_counts_are_identical(sc: Scenario) -> None:
    """Computing the levels on two threads gives exactly the sequential result."""
    a, b = run(sc, workers=1), run(sc, workers=2)
    assert a.counts == b.counts
    for level in a.levels:
        np.testing.assert_array_equal(a.levels[level].minute_peaks, b.levels[level].minute_peaks)
        np.testing.assert_array_equal(a.levels[level].daily_value, b.levels[level].daily_value)
        np.testing.assert_array_equal(a.levels[level].daily_minute, b.levels[level].daily_minute)


@settings(max_examples=60)
@given(scenarios(max_sessions=25), st.sampled_from([1, 2]))
def test_parts_cover_each_level_in_order_before_its_result(sc: Scenario, workers: int) -> None:
    """Counted in batches of a few rows, every level's parts come in subject order, cover its
    subjects exactly, hold the very values of its result, and come before it; the result
    still equals the oracle."""
    events: list[LevelPart | LevelResult] = []
    with patch.object(count, "_ROWS_PER_BATCH", 3):
        result = count_day(sc.day, sc.sessions, sc.samples, sc.catalogue, sc.bundle_set,
                           sc.windows, sc.now_ts, workers=workers, on_part=events.append,
                           on_level=events.append)
    assert_matches_oracle(sc, result)
    for level, whole in result.levels.items():
        mine = [e for e in events if e.level == level]
        assert isinstance(mine[-1], LevelResult) and mine[-1] is whole
        parts = mine[:-1]
        assert all(type(p) is LevelPart for p in parts)
        lo = 0
        for part in parts:
            hi = lo + part.subject_ids.size
            assert part.subject_ids.tolist() == whole.subject_ids[lo:hi].tolist()
            assert part.item_ids.tolist() == whole.item_ids.tolist()
            np.testing.assert_array_equal(part.minute_peaks, whole.minute_peaks[lo:hi])
            np.testing.assert_array_equal(part.daily_value, whole.daily_value[lo:hi])
            np.testing.assert_array_equal(part.daily_minute, whole.daily_minute[lo:hi])
            lo = hi
        assert lo == whole.subject_ids.size


def _seat_item_rows(result: DayResult, level: str) -> dict[tuple[int, int], np.ndarray]:
    """Per-minute rows of the seat items (not bundles) of a level, by (subject, item)."""
    lr = result.levels[level]
    seat_items = set(result.levels["agent_group"].item_ids.tolist())
    return {(s, it): lr.minute_peaks[a, b]
            for a, s in enumerate(lr.subject_ids.tolist())
            for b, it in enumerate(lr.item_ids.tolist()) if it in seat_items}


@given(scenarios(), st.data())
def test_adding_a_session_never_lowers_a_seat_item_peak(sc: Scenario, data: st.DataObject) -> None:
    """One more login session can only raise (or keep) every seat-item per-minute value at every
    level. (Bundles are exempt by design: a session using an excluded item can stop a seat
    counting for a bundle.)"""
    start = data.draw(st.integers(sc.day.start_ts - 600, sc.day.end_ts))
    length = data.draw(st.sampled_from([0, 1, 60, 3600, -1]))
    extra = SessionTable.from_columns(
        created=[*sc.sessions.created.tolist(), start],
        terminated=[*sc.sessions.terminated.tolist(), -1 if length < 0 else start + length],
        person=[*sc.sessions.person.tolist(), data.draw(st.sampled_from(PERSONS))],
        place=[*sc.sessions.place.tolist(), data.draw(st.sampled_from([*PLACES, -1]))],
        dn=[*sc.sessions.dn.tolist(), -1],
        provider_tag=[*sc.sessions.provider_tag.tolist(), data.draw(st.sampled_from([1, 2]))])
    before = run(sc)
    after = count_day(sc.day, extra, sc.samples, sc.catalogue, sc.bundle_set, sc.windows,
                      sc.now_ts, workers=1)
    for level in before.levels:
        rows_after = _seat_item_rows(after, level)
        for key, row in _seat_item_rows(before, level).items():
            assert (rows_after[key] >= row).all(), (level, key)


@given(scenarios())
def test_system_lies_between_the_largest_tenant_and_the_sum_of_tenants(sc: Scenario) -> None:
    """For every seat item and minute (and for daily values): max over tenants <= system <=
    sum over tenants. The system is the peak of the sum, never the sum of peaks."""
    result = run(sc)
    tenant, system = result.levels["tenant"], result.levels["system"]
    seat_items = len(result.levels["agent_group"].item_ids)
    t = tenant.minute_peaks[:, :seat_items, :]
    s = system.minute_peaks[0, :seat_items, :]
    if t.shape[0]:
        assert (s <= t.sum(axis=0)).all()
        assert (s >= t.max(axis=0)).all()
        assert (system.daily_value[0, :seat_items] <= tenant.daily_value[:, :seat_items]
                .sum(axis=0)).all()
        assert (system.daily_value[0, :seat_items] >= tenant.daily_value[:, :seat_items]
                .max(axis=0)).all()
    else:
        assert not s.any()


@given(scenarios())
def test_per_minute_peak_is_at_least_the_snapshot_at_the_minute_start(sc: Scenario) -> None:
    """The per-minute value is never below the number of distinct seats active at the minute's
    first second (the snapshot the original product took), for the concurrent-seat item."""
    result = run(sc)
    history = build_config_history(sc.samples, Vocabulary(sc.catalogue.media_names()))
    segments = resolve_sessions(sc.sessions, history, sc.day, sc.now_ts).segments
    tenant = result.levels["tenant"]
    item = tenant.item_ids.tolist().index(1)
    for m in range(0, sc.day.minutes, 7):
        t = sc.day.minute_ts(m)
        active = (segments.start <= t) & (t < segments.end)
        for s, subject in enumerate(tenant.subject_ids.tolist()):
            seats = set(segments.seat[active & (segments.tenant == subject)].tolist())
            assert tenant.minute_peaks[s, item, m] >= len(seats)
