"""Resolving sessions into segments: seats, tenants at login, channels, set-aside rows, splits
at configuration changes, group memberships."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

from lrm.domain.calendar import business_day
from lrm.domain.config import build_config_history
from lrm.domain.resolve import (
    SEAT_DN,
    SEAT_PERSON,
    SEAT_PLACE,
    Resolution,
    resolve_sessions,
    seat_key,
)
from lrm.domain.vocabulary import Vocabulary
from tests.strategies import document, local_ts, person, session_table

DAY = business_day(date(2026, 11, 24), "UTC")
DOC = document(tenants=(101, 102, 103),
               persons=[person(1001, 101, media="chat"), person(1002, 102)],
               places={3001: 102}, dns={4001: (103, 501)}, switches={501: "CFGSIPSwitch"},
               agent_groups={7001: [1001]}, place_groups={8001: [3001]})


def resolve(*rows: tuple[int, int, int, int, int, int],
            samples: list[tuple[int, dict[str, Any]]] | None = None,
            now: int | None = None) -> Resolution:
    history = build_config_history(samples or [(DAY.start_ts, DOC)], Vocabulary(("chat",)))
    return resolve_sessions(session_table(*rows), history, DAY,
                            DAY.end_ts + 3600 if now is None else now)


T10, T11 = local_ts(DAY, "10:00"), local_ts(DAY, "11:00")


def test_the_seat_is_the_place_else_the_dn_else_the_person() -> None:
    """Seat keys: place when present, else DN (> 0), else person."""
    res = resolve((T10, T11, 1001, 3001, 4001, 1), (T10, T11, 1001, -1, 4001, 1),
                  (T10, T11, 1001, -1, 0, 2), (T10, T11, 1001, 0, -1, 2))
    assert res.segments.seat.tolist() == [seat_key(SEAT_PLACE, 3001), seat_key(SEAT_DN, 4001),
                                          seat_key(SEAT_PERSON, 1001),
                                          seat_key(SEAT_PERSON, 1001)]


def test_the_tenant_is_the_persons_else_the_places_else_the_dns() -> None:
    """Person 1001 → 101; unknown person with place 3001 → 102; DN 4001 only → 103."""
    res = resolve((T10, T11, 1001, 3001, 4001, 1), (T10, T11, 9999, 3001, 4001, 1),
                  (T10, T11, -1, -1, 4001, 1))
    assert res.segments.tenant.tolist() == [101, 102, 103]
    assert res.counts["unknown_reference"] == 1


def test_channel_comes_from_the_provider_tag_or_the_dn() -> None:
    """Tag 1 voice, tag 2 multimedia, NULL tag with a DN voice, NULL without DN unknown."""
    res = resolve((T10, T11, 1001, -1, 4001, 1), (T10, T11, 1001, -1, -1, 2),
                  (T10, T11, 1001, -1, 4001, 0), (T10, T11, 1001, -1, -1, 0))
    assert res.segments.channel.tolist() == [1, 2, 1, 0]
    assert res.counts["unknown_channel"] == 1


def test_bad_rows_get_exactly_one_set_aside_kind_in_order() -> None:
    """end_before_start before start_in_future before unknown_tenant; the rest are counted."""
    now = T11
    res = resolve((T11, T10, 9999, -1, -1, 1),            # reversed (and unknown tenant)
                  (now + 301, now + 900, 9999, -1, -1, 1),  # future (and unknown tenant)
                  (now + 300, -1, 1001, -1, -1, 2),        # within tolerance: counted
                  (T10, T11, 9999, 9998, 9997, 1),          # unknown tenant
                  (T10, T10, 1001, -1, -1, 2),              # zero length
                  (DAY.start_ts - 500, DAY.start_ts - 100, 1001, -1, -1, 2),  # other day
                  now=now)
    c = res.counts
    assert (c["end_before_start"], c["start_in_future"], c["unknown_tenant"]) == (1, 1, 1)
    assert (c["counted"], c["zero_length"], c["outside_day"], c["open"]) == (1, 1, 1, 1)
    assert c["sessions"] == 6
    assert res.segments.end.tolist() == [DAY.end_ts]


def test_sessions_are_clipped_to_the_business_day() -> None:
    """A night shift from the day before and an open session are clipped to [start, end)."""
    res = resolve((DAY.start_ts - 3600, T10, 1001, -1, -1, 2), (T11, -1, 1002, -1, -1, 2))
    assert list(zip(res.segments.start.tolist(), res.segments.end.tolist(), strict=True)) == \
        [(DAY.start_ts, T10), (T11, DAY.end_ts)]


def test_sessions_split_only_at_changes_that_touch_them() -> None:
    """A media change of person 1001 at 10:30 splits its session; person 1002's session is not
    split; unrelated changes (a rename) split nothing."""
    changed = copy.deepcopy(DOC)
    changed["persons"][0]["userProperties"]["lrm"]["media"] = ""
    renamed = copy.deepcopy(changed)
    renamed["persons"][1]["userName"] = "someone else"
    samples = [(DAY.start_ts, DOC), (local_ts(DAY, "10:30"), changed),
               (local_ts(DAY, "10:40"), renamed)]
    res = resolve((T10, T11, 1001, -1, -1, 2), (T10, T11, 1002, -1, -1, 2), samples=samples)
    seg = res.segments
    assert seg.session.tolist() == [0, 0, 1]
    assert seg.start.tolist() == [T10, local_ts(DAY, "10:30"), T10]
    assert seg.media.tolist() == [1, 0, 0]


def test_group_pairs_follow_membership_in_force() -> None:
    """Agent groups by person, place groups by place; removal at 10:30 ends the pairing."""
    moved = copy.deepcopy(DOC)
    moved["agent-groups"][0]["members"] = []
    samples = [(DAY.start_ts, DOC), (local_ts(DAY, "10:30"), moved)]
    res = resolve((T10, T11, 1001, 3001, -1, 2), samples=samples)
    seg = res.segments
    agent = [(seg.start[s], g) for s, g in zip(res.agent_groups.segment.tolist(),
                                               res.agent_groups.group.tolist(), strict=True)]
    place = sorted((int(seg.start[s]), g) for s, g in zip(res.place_groups.segment.tolist(),
                                                          res.place_groups.group.tolist(),
                                                          strict=True))
    assert agent == [(T10, 7001)]
    assert place == [(T10, 8001), (local_ts(DAY, "10:30"), 8001)]


def test_without_configuration_every_session_is_set_aside_as_unknown_tenant() -> None:
    """No sample at all: tenants cannot be resolved."""
    history = build_config_history([], Vocabulary())
    res = resolve_sessions(session_table((T10, T11, 1001, -1, -1, 2)), history, DAY,
                           DAY.end_ts)
    assert res.counts["unknown_tenant"] == 1
    assert len(res.segments) == 0
