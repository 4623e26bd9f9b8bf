"""The shape of the pure entry point: inputs validated, levels selectable, compact outputs."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from lrm.domain.bundles import Bundle, BundleSet
from lrm.domain.calendar import business_day
from lrm.domain.count import LevelPart, count_day
from lrm.domain.errors import InputError
from lrm.domain.items import build_catalogue
from lrm.domain.sessions import SessionTable
from lrm.job.pipeline import _flatten
from tests.strategies import document, local_ts, person, session_table

DAY = business_day(date(2026, 11, 24), "Europe/Berlin")
DOC = document(tenants=(101, 102), persons=[person(1001)], places={3001: 101},
               agent_groups={7001: [1001]}, place_groups={8001: [3001]})


def test_session_columns_must_have_equal_lengths_and_integer_types() -> None:
    """A SessionTable refuses ragged columns and wrong dtypes; from_columns coerces."""
    with pytest.raises(ValueError, match="differ in length"):
        SessionTable.from_columns(created=[1, 2], terminated=[3], person=[1], place=[1],
                                  dn=[1], provider_tag=[1])
    with pytest.raises(ValueError, match="float64"):
        SessionTable(created=np.zeros(1), terminated=np.zeros(1, np.int64),
                     person=np.zeros(1, np.int64), place=np.zeros(1, np.int64),
                     dn=np.zeros(1, np.int64), provider_tag=np.zeros(1, np.int8))
    assert len(SessionTable.empty()) == 0


def test_results_are_arrays_per_level_with_zero_rows_for_quiet_subjects() -> None:
    """Every tenant and group of the configuration gets a row, even without sessions; the
    system level has subject 0; minute matrices have one column per minute of the day."""
    sessions = session_table((local_ts(DAY, "10:00"), local_ts(DAY, "11:00"), 1001, 3001, -1, 2))
    result = count_day(DAY, sessions, [(DAY.start_ts, DOC)], build_catalogue(), None, [],
                       DAY.end_ts)
    tenant = result.levels["tenant"]
    assert tenant.subject_ids.tolist() == [101, 102]
    assert tenant.item_ids.tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert tenant.minute_peaks.shape == (2, 7, 1440)
    assert tenant.minute_peaks.dtype == np.int32
    assert tenant.daily_value[:, 0].tolist() == [1, 0]
    assert tenant.daily_minute[1, 0] == 1439  # all-zero day: the latest minute
    assert result.levels["system"].subject_ids.tolist() == [0]
    assert result.levels["agent_group"].subject_ids.tolist() == [7001]
    assert result.levels["place_group"].subject_ids.tolist() == [8001]
    assert result.peak_ts(int(tenant.daily_minute[0, 0])) == local_ts(DAY, "10:59")
    assert result.peak_ts(-1) is None


def test_levels_can_be_chosen_and_unknown_levels_are_refused() -> None:
    """Only the requested levels are computed; a typo is an error, not an empty result."""
    result = count_day(DAY, SessionTable.empty(), [(DAY.start_ts, DOC)], build_catalogue(),
                       None, [], DAY.end_ts, levels=["system"])
    assert list(result.levels) == ["system"]
    with pytest.raises(ValueError, match="tenants"):
        count_day(DAY, SessionTable.empty(), [], build_catalogue(), None, [], DAY.end_ts,
                  levels=["tenants"])


def test_bundles_must_use_seat_items_of_the_catalogue() -> None:
    """A bundle naming an item the catalogue does not count per seat is a programming error."""
    bundles = BundleSet(10000, "s", "", DAY.date, DAY.date, DAY.date,
                        (Bundle(10001, "b", "", include=(100,), exclude=()),))
    with pytest.raises(ValueError, match="10001"):
        count_day(DAY, SessionTable.empty(), [], build_catalogue(), bundles, [], DAY.end_ts)


def test_invalid_excluded_windows_are_input_errors() -> None:
    """Excluded time is validated with every bad window listed."""
    with pytest.raises(InputError) as caught:
        count_day(DAY, SessionTable.empty(), [], build_catalogue(), None, ["x", "1:00-2:00"],
                  DAY.end_ts)
    assert len(caught.value.problems) == 2


def test_a_day_without_tenants_or_groups_hands_out_no_empty_parts() -> None:
    """Levels without subjects hand out no parts (the system level always has one), and such
    a level still flattens into rows for the writer: none."""
    parts: list[LevelPart] = []
    result = count_day(DAY, SessionTable.empty(), [(DAY.start_ts, document(tenants=()))],
                       build_catalogue(), None, [], DAY.end_ts, on_part=parts.append)
    assert result.levels["tenant"].subject_ids.size == 0
    assert [p.level for p in parts] == ["system"]
    rows = _flatten(result.levels["tenant"])
    assert rows.subject_ids.size == 0 and rows.minute_peaks is not None
    assert rows.minute_peaks.shape == (0, DAY.minutes)
