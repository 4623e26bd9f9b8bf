"""The worked acceptance examples of research/lrm-domain.md §9a, with their numbers written out,
and the same kind of hand-checked days across DST changes."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np

from lrm.domain.bundles import Bundle, BundleSet
from lrm.domain.calendar import BusinessDay, business_day
from lrm.domain.count import DayResult, LevelResult, count_day
from lrm.domain.items import build_catalogue
from lrm.domain.sessions import SessionTable
from tests.strategies import document, local_ts, person, session_table

CATALOGUE = build_catalogue()
DAY = business_day(date(2026, 11, 24), "UTC")
VOICE, MULTIMEDIA = 1, 2


def row(level: LevelResult, subject: int, item: int) -> np.ndarray:
    return level.minute_peaks[level.subject_ids.tolist().index(subject),
                              level.item_ids.tolist().index(item)]


def daily(level: LevelResult, subject: int, item: int) -> tuple[int, int]:
    """(daily value, peak minute index) of one subject and item."""
    s, i = level.subject_ids.tolist().index(subject), level.item_ids.tolist().index(item)
    return int(level.daily_value[s, i]), int(level.daily_minute[s, i])


def at(day: BusinessDay, hhmm: str, *, fold: int = 0) -> int:
    """Minute index of a local time on `day`."""
    return (local_ts(day, hhmm, fold=fold) - day.start_ts) // 60


def count(sessions: SessionTable, samples: list[tuple[int, dict[str, Any]]], *,
          day: BusinessDay = DAY, bundles: BundleSet | None = None,
          windows: tuple[str, ...] = ()) -> DayResult:
    return count_day(day, sessions, samples, CATALOGUE, bundles, list(windows), day.end_ts + 3600)


def minutes(day: BusinessDay, start: str, end: str) -> range:
    """Minute indices from local start (inclusive) to local end (exclusive) on an ordinary day."""
    h1, m1 = (int(x) for x in start.split(":"))
    h2, m2 = (int(x) for x in end.split(":"))
    return range(h1 * 60 + m1, h2 * 60 + m2)


# Example 1: Place1 carries DN1 and DN2; DN4 has no place.
EXAMPLE_1 = document(persons=[person(1001), person(1002), person(1003)],
                     places={3001: 101}, dns={4001: (101, 501), 4002: (101, 501),
                                              4004: (101, 501)},
                     switches={501: "CFGSIPSwitch"})


def example_1_sessions() -> SessionTable:
    return session_table(
        (local_ts(DAY, "09:00"), local_ts(DAY, "12:00"), 1001, 3001, 4001, VOICE),   # A
        (local_ts(DAY, "10:00"), local_ts(DAY, "11:00"), 1002, 3001, 4002, VOICE),   # B
        (local_ts(DAY, "10:30"), local_ts(DAY, "10:45"), 1003, -1, 4004, VOICE))     # C


def test_example_1_a_place_collapses_its_dns_and_the_latest_minute_wins_ties() -> None:
    """§9a-1: 09:00–10:29 → 1, 10:30–10:44 → 2 (Place1 + DN4), 10:45–11:59 → 1; daily peak 2
    at 10:44 (the latest minute at the maximum)."""
    result = count(example_1_sessions(), [(DAY.start_ts - 600, EXAMPLE_1)])
    tenant = result.levels["tenant"]
    expected = np.zeros(DAY.minutes, dtype=np.int32)
    expected[list(minutes(DAY, "09:00", "10:30"))] = 1
    expected[list(minutes(DAY, "10:30", "10:45"))] = 2
    expected[list(minutes(DAY, "10:45", "12:00"))] = 1
    for item in (1, 2, 3):  # concurrent, voice and SIP voice seats all see the same seats
        assert row(tenant, 101, item).tolist() == expected.tolist()
        assert daily(tenant, 101, item) == (2, at(DAY, "10:44"))
    assert daily(result.levels["system"], 0, 1) == (2, at(DAY, "10:44"))


def test_example_2_a_peak_reached_at_10_30_40_is_reported_at_10_30() -> None:
    """§9a-2: the peak time is the start of the minute containing the peak instant."""
    sessions = session_table(
        (local_ts(DAY, "09:00"), local_ts(DAY, "12:00"), 1001, 3001, 4001, VOICE),
        (local_ts(DAY, "10:30:40"), local_ts(DAY, "10:30:50"), 1003, -1, 4004, VOICE))
    tenant = count(sessions, [(DAY.start_ts, EXAMPLE_1)]).levels["tenant"]
    assert daily(tenant, 101, 1) == (2, at(DAY, "10:30"))
    assert row(tenant, 101, 1)[629:632].tolist() == [1, 2, 1]


def test_example_1_with_excluded_time_ignores_the_peak_minutes() -> None:
    """Excluding 10:30–10:45 leaves a daily value of 1 at the latest remaining minute 11:59."""
    result = count(example_1_sessions(), [(DAY.start_ts, EXAMPLE_1)],
                   windows=("10:30-10:45",))
    tenant = result.levels["tenant"]
    assert daily(tenant, 101, 1) == (1, at(DAY, "11:59"))


def test_example_6_include_and_exclude_are_judged_per_seat_at_each_instant() -> None:
    """§9a-6: bundle B = include {multimedia, voice}, exclude {web media}. A seat whose session
    is multimedia with chat (uses X and Z) does not count; a voice-only seat does."""
    doc = document(persons=[person(1001, media="chat"), person(1002)],
                   places={3001: 101, 3002: 101}, dns={4002: (101, 501)},
                   switches={501: "CFGSIPSwitch"})
    sessions = session_table(
        (local_ts(DAY, "10:00"), local_ts(DAY, "11:00"), 1001, 3001, -1, MULTIMEDIA),
        (local_ts(DAY, "10:00"), local_ts(DAY, "11:00"), 1002, 3002, 4002, VOICE))
    bundle = Bundle(10001, "B", "", include=(2, 4), exclude=(5,))
    bundles = BundleSet(10000, "set", "", DAY.date, DAY.date, DAY.date, (bundle,))
    result = count(sessions, [(DAY.start_ts, doc)], bundles=bundles)
    tenant = result.levels["tenant"]
    assert daily(tenant, 101, 10001) == (1, at(DAY, "10:59"))
    assert daily(tenant, 101, 1) == (2, at(DAY, "10:59"))
    assert daily(tenant, 101, 5) == (1, at(DAY, "10:59"))
    assert "agent_group" in result.levels
    assert 10001 not in result.levels["agent_group"].item_ids.tolist()


def test_example_6_a_later_session_using_an_excluded_item_stops_the_seat_counting() -> None:
    """The bundle follows the items a seat uses at each instant: while a chat session shares
    the place of a voice session, the seat uses web media and leaves the bundle."""
    doc = document(persons=[person(1001, media="chat"), person(1002)],
                   places={3001: 101}, dns={4001: (101, 501)}, switches={501: "CFGSIPSwitch"})
    sessions = session_table(
        (local_ts(DAY, "10:00"), local_ts(DAY, "11:00"), 1002, 3001, 4001, VOICE),
        (local_ts(DAY, "10:20"), local_ts(DAY, "10:40"), 1001, 3001, -1, MULTIMEDIA))
    bundle = Bundle(10001, "B", "", include=(2,), exclude=(5,))
    result = count(sessions, [(DAY.start_ts, doc)],
                   bundles=BundleSet(10000, "s", "", DAY.date, DAY.date, DAY.date, (bundle,)))
    got = row(result.levels["tenant"], 101, 10001)
    assert got[minutes(DAY, "10:00", "10:20")].tolist() == [1] * 20
    assert got[minutes(DAY, "10:20", "10:40")].tolist() == [0] * 20
    assert got[minutes(DAY, "10:40", "11:00")].tolist() == [1] * 20


def test_example_10_group_membership_follows_the_configuration_in_force() -> None:
    """§9a-10 (improved mode): an agent moved from G1 to G2 at 15:00 counts in G1 before 15:00
    and in G2 from 15:00."""
    before = document(persons=[person(1001)], places={3001: 101},
                      agent_groups={7001: [1001], 7002: []})
    after = document(persons=[person(1001)], places={3001: 101},
                     agent_groups={7001: [], 7002: [1001]})
    sessions = session_table((local_ts(DAY, "09:00"), local_ts(DAY, "17:00"), 1001, 3001, -1,
                              MULTIMEDIA))
    result = count(sessions, [(DAY.start_ts - 600, before), (local_ts(DAY, "15:00"), after)])
    groups = result.levels["agent_group"]
    g1, g2 = row(groups, 7001, 1), row(groups, 7002, 1)
    assert g1.sum() == 6 * 60 and g1[minutes(DAY, "09:00", "15:00")].all()
    assert g2.sum() == 2 * 60 and g2[minutes(DAY, "15:00", "17:00")].all()
    assert daily(groups, 7001, 1) == (1, at(DAY, "14:59"))
    assert daily(groups, 7002, 1) == (1, at(DAY, "16:59"))
    assert daily(result.levels["tenant"], 101, 1) == (1, at(DAY, "16:59"))


def test_media_added_mid_session_counts_from_the_sample_that_shows_it() -> None:
    """A person's media changes at 12:00 (chat added): the web-media seat counts from 12:00."""
    before = document(persons=[person(1001, media="email")], places={3001: 101})
    after = document(persons=[person(1001, media="email,chat")], places={3001: 101})
    sessions = session_table((local_ts(DAY, "11:00"), local_ts(DAY, "13:00"), 1001, 3001, -1,
                              MULTIMEDIA))
    tenant = count(sessions, [(DAY.start_ts, before),
                              (local_ts(DAY, "12:00"), after)]).levels["tenant"]
    assert row(tenant, 101, 5).sum() == 60
    assert row(tenant, 101, 6).sum() == 120
    assert daily(tenant, 101, 5) == (1, at(DAY, "12:59"))


def test_enabled_agents_take_the_maximum_over_the_samples_of_the_day() -> None:
    """Item 100: 2 enabled agents until 12:00, then 3 (one enabled), then 1: daily 3 at 12:00;
    disabled persons and non-agents do not count."""
    docs = [document(persons=[person(1), person(2), person(3, state=2), person(4, is_agent=1)]),
            document(persons=[person(1), person(2), person(3), person(4, is_agent=1)]),
            document(persons=[person(1), person(2, state=2), person(3, state=2)])]
    samples = [(DAY.start_ts - 86400, docs[0]), (local_ts(DAY, "12:00"), docs[1]),
               (local_ts(DAY, "18:00"), docs[2])]
    result = count(session_table(), samples)
    tenant = result.levels["tenant"]
    assert (int(tenant.enabled.value[0]), int(tenant.enabled.minute[0])) == (3, 720)
    assert int(result.levels["system"].enabled.value[0]) == 3


def test_a_session_across_midnight_counts_from_the_day_start_with_its_login_tenant() -> None:
    """A night shift from 22:00 the day before to 02:00 counts 00:00–01:59, with the tenant of
    the configuration in force at login (the person moved tenant at 00:30)."""
    at_login = document(tenants=(101, 102), persons=[person(1001, tenant=101)])
    moved = document(tenants=(101, 102), persons=[person(1001, tenant=102)])
    sessions = session_table((DAY.start_ts - 7200, local_ts(DAY, "02:00"), 1001, -1, -1,
                              MULTIMEDIA))
    tenant = count(sessions, [(DAY.start_ts - 86400, at_login),
                              (local_ts(DAY, "00:30"), moved)]).levels["tenant"]
    assert row(tenant, 101, 1)[:121].tolist() == [1] * 120 + [0]
    assert row(tenant, 102, 1).sum() == 0


def test_an_open_session_counts_until_the_end_of_the_day() -> None:
    """A session still open (TERMINATED NULL) is active until the day's last second."""
    sessions = session_table((local_ts(DAY, "23:00"), -1, 1001, 3001, -1, MULTIMEDIA))
    result = count(sessions, [(DAY.start_ts, EXAMPLE_1)])
    assert row(result.levels["tenant"], 101, 1)[-60:].tolist() == [1] * 60
    assert result.counts["open"] == 1


def test_bad_rows_are_set_aside_and_counted_by_kind() -> None:
    """End before start, start far in the future and unknown tenant are set aside (never
    counted, never silently dropped); an unknown DN with a known person is still counted."""
    now = DAY.end_ts + 3600
    sessions = session_table(
        (local_ts(DAY, "10:00"), local_ts(DAY, "09:00"), 1001, 3001, -1, VOICE),
        (now + 86400, -1, 1001, 3001, -1, VOICE),
        (local_ts(DAY, "10:00"), local_ts(DAY, "11:00"), 9999, 9998, 9997, VOICE),
        (local_ts(DAY, "10:00"), local_ts(DAY, "11:00"), 1001, -1, 9997, VOICE))
    result = count(sessions, [(DAY.start_ts, EXAMPLE_1)])
    counts = result.counts
    assert (counts["end_before_start"], counts["start_in_future"], counts["unknown_tenant"]) == \
        (1, 1, 1)
    assert (counts["counted"], counts["unknown_reference"]) == (1, 1)
    assert daily(result.levels["tenant"], 101, 1) == (1, at(DAY, "10:59"))


# ----------------------------------------------------------------------------- DST days
def test_berlin_autumn_day_counts_the_repeated_hour_twice() -> None:
    """Europe/Berlin 2026-10-25 has 1500 minutes; a session from 01:30 (summer time) to 02:30
    (winter time) lasts two real hours: 120 minutes at 1."""
    day = business_day(date(2026, 10, 25), "Europe/Berlin")
    assert day.minutes == 1500
    sessions = session_table((local_ts(day, "01:30"), local_ts(day, "02:30", fold=1), 1001,
                              3001, -1, MULTIMEDIA))
    result = count(sessions, [(day.start_ts, EXAMPLE_1)], day=day)
    got = row(result.levels["tenant"], 101, 1)
    assert got.shape == (1500,)
    assert np.flatnonzero(got).tolist() == list(range(90, 210))
    assert daily(result.levels["tenant"], 101, 1) == (1, at(day, "02:29", fold=1)) == (1, 209)


def test_berlin_autumn_excluded_window_covers_both_occurrences_of_the_repeated_hour() -> None:
    """"02:00-02:30" excludes 02:00–02:29 summer time and 02:00–02:29 winter time: the latest
    non-excluded minute of the session above is 02:59 summer time (minute 179)."""
    day = business_day(date(2026, 10, 25), "Europe/Berlin")
    sessions = session_table((local_ts(day, "01:30"), local_ts(day, "02:30", fold=1), 1001,
                              3001, -1, MULTIMEDIA))
    result = count(sessions, [(day.start_ts, EXAMPLE_1)], day=day, windows=("02:00-02:30",))
    assert np.flatnonzero(result.excluded).tolist() == [*range(120, 150), *range(180, 210)]
    tenant = result.levels["tenant"]
    assert int(tenant.daily_minute[0, 0]) == 179
    assert day.minute_label(179) == "02:59"


def test_berlin_spring_day_has_1380_minutes_and_a_window_in_the_skipped_hour_is_empty() -> None:
    """Europe/Berlin 2026-03-29: 02:00–03:00 does not exist; 01:30–03:30 local is one real
    hour; a "02:00-03:00" window excludes nothing."""
    day = business_day(date(2026, 3, 29), "Europe/Berlin")
    assert day.minutes == 1380
    sessions = session_table((local_ts(day, "01:30"), local_ts(day, "03:30"), 1001, 3001, -1,
                              MULTIMEDIA))
    result = count(sessions, [(day.start_ts, EXAMPLE_1)], day=day, windows=("02:00-03:00",))
    assert not result.excluded.any()
    got = row(result.levels["tenant"], 101, 1)
    assert np.flatnonzero(got).tolist() == list(range(90, 150))
    assert daily(result.levels["tenant"], 101, 1) == (1, at(day, "03:29")) == (1, 149)


def test_new_york_dst_days_have_23_and_25_hours_and_keep_local_minutes() -> None:
    """America/New_York 2026-03-08 (1380 minutes) and 2026-11-01 (1500 minutes): a session
    10:00–10:45 local sits at the minute its local time says, shifted by the lost/extra hour."""
    for d, minutes_in_day, first in ((date(2026, 3, 8), 1380, 540), (date(2026, 11, 1), 1500, 660)):
        day = business_day(d, "America/New_York")
        assert day.minutes == minutes_in_day
        sessions = session_table((local_ts(day, "10:00"), local_ts(day, "10:45"), 1001, 3001,
                                  -1, MULTIMEDIA))
        result = count(sessions, [(day.start_ts, EXAMPLE_1)], day=day, windows=("10:40-11:00",))
        got = row(result.levels["tenant"], 101, 1)
        assert np.flatnonzero(got).tolist() == list(range(first, first + 45))
        assert daily(result.levels["tenant"], 101, 1) == (1, at(day, "10:39"))
        assert day.minute_label(at(day, "10:39")) == "10:39"


def test_new_york_autumn_night_shift_over_the_repeated_hour() -> None:
    """America/New_York 2026-11-01: 00:30 → 01:30 (second occurrence, EST) is two real hours."""
    day = business_day(date(2026, 11, 1), "America/New_York")
    sessions = session_table((local_ts(day, "00:30"), local_ts(day, "01:30", fold=1), 1001,
                              3001, -1, MULTIMEDIA))
    got = row(count(sessions, [(day.start_ts, EXAMPLE_1)], day=day).levels["tenant"], 101, 1)
    assert int(got.sum()) == 120
