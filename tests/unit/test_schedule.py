"""Scheduling decisions with literal clocks: nightly time in the report zone, DST, catch-up,
step-down deadline."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrm.domain.schedule import (
    LeaseTimings,
    Upcoming,
    catch_up_dates,
    latest_due_date,
    local_instant,
    local_today,
    next_run_at,
    nightly_dates,
    sample_marks,
    scheduled_run_at,
)

BERLIN = ZoneInfo("Europe/Berlin")
TWO = time(2, 0)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_next_run_is_local_time_in_the_report_zone() -> None:
    """02:00 Berlin in winter is 01:00 UTC; in summer 00:00 UTC."""
    assert next_run_at(utc(2026, 1, 10, 12), TWO, BERLIN) == utc(2026, 1, 11, 1)
    assert next_run_at(utc(2026, 7, 10, 12), TWO, BERLIN) == utc(2026, 7, 11, 0)


def test_next_run_is_strictly_after_now() -> None:
    """At the exact scheduled instant, the next run is the following day's."""
    assert next_run_at(utc(2026, 1, 11, 1), TWO, BERLIN) == utc(2026, 1, 12, 1)


def test_spring_forward_gap_runs_once() -> None:
    """02:30 does not exist on 2026-03-29 in Berlin: the run happens once, at 03:30 CEST."""
    at = time(2, 30)
    run = next_run_at(utc(2026, 3, 28, 12), at, BERLIN)
    assert run == utc(2026, 3, 29, 1, 30)
    assert next_run_at(run, at, BERLIN) == utc(2026, 3, 30, 0, 30)


def test_fall_back_repeated_hour_runs_once_at_first_occurrence() -> None:
    """02:30 happens twice on 2026-10-25 in Berlin: the run happens at the first one only."""
    at = time(2, 30)
    run = next_run_at(utc(2026, 10, 24, 12), at, BERLIN)
    assert run == utc(2026, 10, 25, 0, 30)
    assert next_run_at(run, at, BERLIN) == utc(2026, 10, 26, 1, 30)


def test_latest_due_date_switches_at_the_run_time() -> None:
    """Before 02:00 local the day before yesterday is the newest due date; after, yesterday."""
    assert latest_due_date(utc(2026, 1, 11, 0, 59), TWO, BERLIN) == date(2026, 1, 9)
    assert latest_due_date(utc(2026, 1, 11, 1, 0), TWO, BERLIN) == date(2026, 1, 10)


def test_scheduled_run_of_a_date_is_the_next_local_day() -> None:
    """The run for business date D is due at the nightly time on D+1."""
    assert scheduled_run_at(date(2026, 1, 10), TWO, BERLIN) == utc(2026, 1, 11, 1)


def test_nightly_run_recomputes_previous_days() -> None:
    """recompute_days = 2 computes D-2, D-1 and D, oldest first."""
    assert nightly_dates(date(2026, 1, 10), 2) == [date(2026, 1, 8), date(2026, 1, 9),
                                                    date(2026, 1, 10)]


def test_catch_up_skips_succeeded_dates() -> None:
    """A promotion runs only due dates without a succeeded run, within catch_up_days."""
    now = utc(2026, 1, 11, 12)
    succeeded = {date(2026, 1, 8), date(2026, 1, 10)}
    assert catch_up_dates(now, TWO, BERLIN, 4, succeeded) == [date(2026, 1, 7),
                                                              date(2026, 1, 9)]
    assert catch_up_dates(now, TWO, BERLIN, 0, set()) == []


def test_sample_marks_are_on_ten_minute_boundaries() -> None:
    """Configuration samples are taken at :00, :10, … :50."""
    marks = sample_marks(utc(2026, 1, 1, 10, 5), utc(2026, 1, 1, 10, 40))
    assert marks == [utc(2026, 1, 1, 10, 10), utc(2026, 1, 1, 10, 20), utc(2026, 1, 1, 10, 30)]


def test_step_down_deadline() -> None:
    """The primary steps down once its last successful renew is older than the deadline."""
    timings = LeaseTimings(ttl_s=10, renew_interval_s=2, renew_deadline_s=6)
    assert not timings.must_step_down(last_renewed=100.0, now=105.9)
    assert timings.must_step_down(last_renewed=100.0, now=106.0)
    assert timings.seconds_until_step_down(100.0, 104.0) == pytest.approx(2.0)


def test_lease_timings_are_validated() -> None:
    """renew_interval < renew_deadline < ttl is enforced."""
    with pytest.raises(ValueError, match="renew_interval_s < renew_deadline_s < ttl_s"):
        LeaseTimings(ttl_s=5, renew_interval_s=2, renew_deadline_s=6)


def test_a_wake_up_just_before_the_run_time_does_not_lose_the_run() -> None:
    """The loop's wait ends 1 µs before 02:00 (nothing due); by its next check it is after
    02:00: tonight's run is due then, not moved to tomorrow."""
    run = utc(2026, 1, 11, 1)
    upcoming = Upcoming(utc(2026, 1, 10, 12), TWO, BERLIN)
    assert upcoming.job == run
    assert not upcoming.take_job(run - timedelta(microseconds=1))
    assert upcoming.take_job(run + timedelta(microseconds=1))
    assert upcoming.job == utc(2026, 1, 12, 1)
    assert upcoming.take_sample(utc(2026, 1, 10, 12, 9, 59)) is None
    assert upcoming.take_sample(utc(2026, 1, 10, 12, 10, 0, 5)) == utc(2026, 1, 10, 12, 10)
    assert upcoming.sample == utc(2026, 1, 10, 12, 20)


@settings(max_examples=300, deadline=None)
@given(start=st.integers(0, 400 * 86_400), gaps=st.lists(st.integers(0, 3 * 86_400), max_size=40),
       hour=st.integers(0, 23), minute=st.sampled_from([0, 1, 30, 59]))
def test_each_check_takes_the_run_and_the_mark_it_passed(start: int, gaps: list[int], hour: int,
                                                         minute: int) -> None:
    """Against brute force over every local day and every 10-minute mark (DST included):
    a check takes the nightly run (and a sample mark: the latest) exactly when a scheduled
    instant lies between the previous check (or the start) and it."""
    at = time(hour, minute)
    origin = utc(2026, 1, 1)
    checks = [origin + timedelta(seconds=start)]
    for gap in gaps:
        checks.append(checks[-1] + timedelta(seconds=gap))
    first_day = local_today(checks[0], BERLIN) - timedelta(days=1)
    runs = [local_instant(first_day + timedelta(days=i), at, BERLIN)
            for i in range((checks[-1] - checks[0]).days + 4)]
    upcoming = Upcoming(checks[0], at, BERLIN)
    for before, now in itertools.pairwise(checks):
        upcoming.follow(before)  # the loop's turn begins (a clock that only goes forward)
        assert upcoming.take_job(now) == any(before < r <= now for r in runs)
        marks = range(int(before.timestamp()) // 600 + 1, int(now.timestamp()) // 600 + 1)
        taken = upcoming.take_sample(now)
        assert taken == (datetime.fromtimestamp(marks[-1] * 600, UTC) if marks else None)


def test_a_clock_set_back_brings_the_run_and_the_mark_back() -> None:
    """Promoted while the clock was a day ahead, then set right: tonight's run and the next
    mark are due at their real instants, not a day later; a check just after the run time
    (a moment later than the wait's end) still takes it."""
    upcoming = Upcoming(utc(2026, 1, 11, 12), TWO, BERLIN)
    assert upcoming.job == utc(2026, 1, 12, 1)
    upcoming.follow(utc(2026, 1, 10, 12, 5))
    assert (upcoming.job, upcoming.sample) == (utc(2026, 1, 11, 1), utc(2026, 1, 10, 12, 10))
    upcoming.follow(utc(2026, 1, 11, 1, 0, 0, 5))
    assert upcoming.take_job(utc(2026, 1, 11, 1, 0, 0, 5))
