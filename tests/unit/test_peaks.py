"""Distinct-seat transitions and per-minute peaks, against a per-second brute force on short
horizons (so hypothesis can try many shapes)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lrm.domain._arrays import i64
from lrm.domain.peaks import level_minute_peaks, minute_peaks, predicate_mask
from lrm.domain.seats import Transitions, seat_transitions

HORIZON = 300  # five minutes: enough for minute boundaries, small enough to brute-force


def brute_force(rows: list[tuple[int, int, int, int, int]], n_subjects: int,
                predicates: list[tuple[int, int]], horizon: int) -> np.ndarray:
    """Per second: the union of item masks of the active rows per (subject, seat), then the
    number of seats satisfying each predicate; per minute the maximum."""
    out = np.zeros((n_subjects, len(predicates), horizon // 60), dtype=np.int32)
    for t in range(horizon):
        seats: dict[tuple[int, int], int] = {}
        for subject, seat, start, end, mask in rows:
            if start <= t < end:
                seats[(subject, seat)] = seats.get((subject, seat), 0) | mask
        for (subject, _), mask in seats.items():
            for p, (include, exclude) in enumerate(predicates):
                if mask & include and not mask & exclude:
                    level = sum(1 for (s2, _), m2 in seats.items() if s2 == subject
                                and m2 & include and not m2 & exclude)
                    out[subject, p, t // 60] = max(out[subject, p, t // 60], level)
    return out


times = st.sampled_from([0, 1, 59, 60, 61, 119, 120, 150, 179, 180, 181, 240, 299, 300])
rows_strategy = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 3), times, times, st.integers(0, 7)),
    max_size=14)
predicates = [(1, 0), (2, 0), (4, 0), (3, 4), (6, 1), (7, 0)]


def columns(rows: list[tuple[int, int, int, int, int]]) -> list[np.ndarray]:
    return [i64([r[k] for r in rows]) for k in range(5)]


@given(rows_strategy)
def test_minute_peaks_equal_the_per_second_brute_force(rows: list[tuple[int, ...]]) -> None:
    """Distinct seats per subject, item bits and include/exclude predicates, ties at equal
    timestamps, zero-length and reversed rows: the per-minute maximum equals brute force."""
    subject, seat, start, end, mask = columns(rows)
    got = level_minute_peaks(subject, seat, start, end, mask, 3, predicates, horizon=HORIZON)
    assert got.tolist() == brute_force(rows, 3, predicates, HORIZON).tolist()


@given(rows_strategy, st.lists(st.tuples(st.integers(0, 15), st.integers(0, 15)), max_size=8))
def test_repeated_and_never_counting_predicates_equal_the_brute_force(
        rows: list[tuple[int, ...]], drawn: list[tuple[int, int]]) -> None:
    """Predicates that share a table (swept once, copied to each) and predicates no seat
    satisfies (bit 3 is never set; include 0 matches nothing): still each its own brute force."""
    subject, seat, start, end, mask = columns(rows)
    got = level_minute_peaks(subject, seat, start, end, mask, 3, drawn, horizon=HORIZON)
    assert got.tolist() == brute_force(rows, 3, drawn, HORIZON).tolist()


@given(rows_strategy, st.integers(0, 7))
def test_one_mask_for_every_row_equals_the_brute_force(rows: list[tuple[int, ...]],
                                                      mask: int) -> None:
    """The sweep's shortcut when every segment has the same mask (one running count)."""
    same = [(subject, seat, start, end, mask) for subject, seat, start, end, _ in rows]
    subject, seat, start, end, masks = columns(same)
    got = level_minute_peaks(subject, seat, start, end, masks, 3, predicates, horizon=HORIZON)
    assert got.tolist() == brute_force(same, 3, predicates, HORIZON).tolist()


@given(rows_strategy, st.integers(0, 7))
def test_keys_too_wide_for_one_word_give_the_same_transitions(rows: list[tuple[int, ...]],
                                                              mask: int) -> None:
    """With a horizon of 2**30 s, (pair, start, end) no longer fits one int64 key and the
    sorts take their argsort paths: the transitions are the same as with a short horizon."""
    for masks in ([r[4] for r in rows], [mask] * len(rows)):
        subject, seat, start, end, _ = columns(rows)
        short = seat_transitions(subject, seat, start, end, i64(masks), horizon=HORIZON)
        wide = seat_transitions(subject, seat, start, end, i64(masks), horizon=2**30)
        for name in ("subject", "t", "before", "after"):
            assert getattr(wide, name).tolist() == getattr(short, name).tolist(), name


@given(rows_strategy)
def test_masks_with_high_bits_give_the_same_peaks(rows: list[tuple[int, ...]]) -> None:
    """Item bits far up the mask (custom items) take the sweep's general path
    for ranking (before, after) mask pairs: the peaks do not change."""
    subject, seat, start, end, mask = columns(rows)
    low = level_minute_peaks(subject, seat, start, end, mask, 3, predicates, horizon=HORIZON)
    for shift in (20, 60):
        high = level_minute_peaks(subject, seat, start, end, mask << np.int64(shift), 3,
                                  [(include << shift, exclude << shift)
                                   for include, exclude in predicates], horizon=HORIZON)
        assert high.tolist() == low.tolist()


def test_a_whole_day_equals_the_brute_force() -> None:
    """At a real horizon (86,400 s: 17 bits of time in the sweep's keys): sessions across
    minute boundaries, back-to-back, overlapping on one seat, and ending at the day's end."""
    day = 86_400
    rows = [(0, 1, 0, 61, 1), (0, 1, 61, 3_600, 1), (0, 2, 30, 90, 3), (0, 2, 45, 50, 4),
            (1, 1, 86_000, day, 2), (1, 3, 86_339, 86_341, 1), (2, 4, 43_200, 43_260, 6),
            (0, 5, 59, 60, 7), (0, 5, 120, 120, 7)]
    subject, seat, start, end, mask = columns(rows)
    got = level_minute_peaks(subject, seat, start, end, mask, 3, predicates, horizon=day)
    assert got.tolist() == brute_force(rows, 3, predicates, day).tolist()


def test_a_session_ending_at_a_minute_boundary_does_not_count_in_that_minute() -> None:
    """[start, end) is half-open: a seat that ends at 60 s is not in minute 1."""
    subject, seat, start, end, mask = columns([(0, 0, 0, 60, 1)])
    got = level_minute_peaks(subject, seat, start, end, mask, 1, [(1, 0)], horizon=180)
    assert got[0, 0].tolist() == [1, 0, 0]


def test_back_to_back_sessions_on_one_seat_are_one_seat() -> None:
    """A session ending at t and one starting at t on the same seat never make two seats."""
    rows = [(0, 0, 0, 90, 1), (0, 0, 90, 180, 1)]
    got = level_minute_peaks(*columns(rows), 1, [(1, 0)], horizon=180)
    assert got[0, 0].tolist() == [1, 1, 1]


def test_handover_between_two_seats_at_the_same_second_is_not_a_peak_of_two() -> None:
    """Seat A ends and seat B starts at the same second: the level after all events is 1."""
    rows = [(0, 0, 0, 90, 1), (0, 1, 90, 180, 1)]
    got = level_minute_peaks(*columns(rows), 1, [(1, 0)], horizon=180)
    assert got[0, 0].tolist() == [1, 1, 1]


def test_a_peak_inside_a_minute_counts_even_if_absent_at_its_first_second() -> None:
    """A 10-second overlap in the middle of a minute makes that minute's value 2."""
    rows = [(0, 0, 0, 180, 1), (0, 1, 70, 80, 1)]
    got = level_minute_peaks(*columns(rows), 1, [(1, 0)], horizon=180)
    assert got[0, 0].tolist() == [1, 2, 1]


def test_a_seat_counts_for_a_bundle_only_while_it_uses_no_excluded_item() -> None:
    """Include {bit 0}, exclude {bit 1}: the seat stops counting while a second session on it
    uses the excluded item, and counts again afterwards."""
    rows = [(0, 0, 0, 180, 0b01), (0, 0, 60, 120, 0b10)]
    got = level_minute_peaks(*columns(rows), 1, [(0b01, 0b10)], horizon=180)
    assert got[0, 0].tolist() == [1, 0, 1]


def test_predicate_mask_is_any_included_and_no_excluded() -> None:
    """The bundle rule on masks: at least one included item and none excluded."""
    masks = i64([0b000, 0b001, 0b010, 0b011, 0b100, 0b101])
    assert predicate_mask(masks, (0b011, 0b100)).tolist() == [False, True, True, True, False,
                                                                False]


def test_transitions_record_only_changes_of_the_seat_mask() -> None:
    """Two identical overlapping sessions on one seat give one rise and one fall."""
    rows = [(0, 5, 10, 100, 1), (0, 5, 20, 50, 1)]
    tr = seat_transitions(*columns(rows), horizon=300)
    assert tr.t.tolist() == [10, 100]
    assert tr.before.tolist() == [0, 1]
    assert tr.after.tolist() == [1, 0]


@pytest.mark.slow
def test_more_than_65535_simultaneous_sessions_on_one_seat_stay_exact() -> None:
    """The packed 16-bit counters fall back to exact per-bit counting when one seat carries
    65,536 or more simultaneous segments."""
    n = 70_000
    start = np.zeros(n, dtype=np.int64)
    end = np.full(n, 120, dtype=np.int64)
    end[: n // 2] = 60
    mask = np.where(np.arange(n) % 2 == 0, 1, 2).astype(np.int64)
    got = level_minute_peaks(np.zeros(n, np.int64), np.zeros(n, np.int64), start, end, mask, 1,
                             [(1, 0), (2, 0), (1, 2)], horizon=180)
    assert got[0].tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 0]]


def test_minute_peaks_of_no_transitions_are_zero() -> None:
    """No rows: a matrix of zeros of the right shape."""
    tr = seat_transitions(i64([]), i64([]), i64([]), i64([]), i64([]), horizon=120)
    assert minute_peaks(tr, 2, [(1, 0)], horizon=120).tolist() == [[[0, 0]], [[0, 0]]]


def test_the_compiled_sweep_works_without_a_writable_cache() -> None:
    """Where numba finds no place for its cache (a read-only install, a service account
    without a home), the kernels are compiled in the process instead of failing the import."""
    script = textwrap.dedent("""
        from numba.core.caching import CacheImpl
        CacheImpl._locator_classes = []  # no cache location anywhere
        import numpy as np
        from lrm.domain._arrays import i64
        from lrm.domain.peaks import level_minute_peaks
        peaks = level_minute_peaks(i64([0, 0]), i64([1, 2]), i64([30, 90]), i64([150, 200]),
                                   i64([1, 1]), 1, [(1, 0)], horizon=300)
        print(peaks[0, 0].tolist())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[1,", "2,", "2,", "1,", "0]"]


@pytest.mark.parametrize(("subject", "t"), [(3, 10), (-1, 10), (0, 301), (0, -1)])
def test_transitions_out_of_range_are_refused_before_the_compiled_sweep(subject: int,
                                                                        t: int) -> None:
    transitions = Transitions(subject=i64([0, subject]), t=i64([5, t]), before=i64([0, 0]),
                              after=i64([1, 1]))
    with pytest.raises(ValueError, match="subjects in"):
        minute_peaks(transitions, 3, [(1, 0)], horizon=HORIZON)
