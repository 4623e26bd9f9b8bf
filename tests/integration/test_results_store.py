"""Writing a date's results: binary COPY of per-minute arrays, atomic replacement, purge."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import numpy as np
import pytest
import sqlalchemy as sa

from lrm.domain.errors import DatabaseError, FencedError
from lrm.store.results import DayWriter, LevelResults, purge_minutes
from lrm.store.schema import usage_daily, usage_minute, usage_minute_staged

DAY = date(2026, 11, 24)
START = int(datetime(2026, 11, 24, tzinfo=UTC).timestamp())


def results(value: int, items: tuple[int, ...] = (1, 2)) -> list[LevelResults]:
    n = len(items)
    peaks = np.zeros((n * 2, 1440), dtype=np.int32)
    peaks[:, 600] = value
    peaks[:, 1439] = 1
    tenant = LevelResults(
        level="tenant", subject_ids=np.array([101] * n + [102] * n, dtype=np.int64),
        item_ids=np.array(list(items) * 2, dtype=np.int64),
        daily_value=np.full(n * 2, value, dtype=np.int64),
        peak_minute=np.full(n * 2, 600, dtype=np.int64), minute_peaks=peaks)
    system = LevelResults(
        level="system", subject_ids=np.array([0], dtype=np.int64),
        item_ids=np.array([200], dtype=np.int64), daily_value=np.array([0], dtype=np.int64),
        peak_minute=np.array([-1], dtype=np.int64), minute_peaks=None)
    return [tenant, system]


def replace_day(connection: sa.Connection, levels: list[LevelResults], run_id: int,
                before_commit: Callable[[sa.Connection], None]) -> None:
    """What a job run does in its transaction: every block, then the fences."""
    with DayWriter(connection, DAY, START, run_id) as writer:
        for block in levels:
            writer.write(block)
        writer.finish()
    before_commit(connection)


def no_fence(connection: sa.Connection) -> None:
    """A fence that always lets the commit through."""


def test_minute_arrays_round_trip_through_binary_copy(lrm_engine: sa.Engine) -> None:
    """Per-minute arrays written with the numpy-built binary COPY read back identical."""
    with lrm_engine.begin() as c:
        replace_day(c, results(7), run_id=1, before_commit=no_fence)
    with lrm_engine.connect() as c:
        row = c.execute(sa.select(usage_minute).where(usage_minute.c.subject_id == 102,
                                                      usage_minute.c.item_id == 2)).one()
        assert len(row.peaks) == 1440 and row.peaks[600] == 7 and row.peaks[1439] == 1
        assert sum(row.peaks) == 8
        assert row.day_start == datetime(2026, 11, 24, tzinfo=UTC)
        daily = c.execute(sa.select(usage_daily).order_by(usage_daily.c.level,
                                                          usage_daily.c.subject_id)).all()
        assert [(r.level, r.subject_id, r.peak_value) for r in daily][-1] == ("tenant", 102, 7)
        assert daily[0].peak_time is None
        assert daily[-1].peak_time == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def test_rerun_replaces_only_what_it_computed(lrm_engine: sa.Engine) -> None:
    """A second run for the date replaces the items it computed and keeps the others."""
    with lrm_engine.begin() as c:
        replace_day(c, results(7), run_id=1, before_commit=no_fence)
    with lrm_engine.begin() as c:
        replace_day(c, results(9, items=(1,)), run_id=2, before_commit=no_fence)
    with lrm_engine.connect() as c:
        rows = c.execute(sa.select(usage_daily.c.item_id, usage_daily.c.peak_value,
                                   usage_daily.c.run_id)
                         .where(usage_daily.c.level == "tenant", usage_daily.c.subject_id == 101)
                         .order_by(usage_daily.c.item_id)).all()
    assert [tuple(r) for r in rows] == [(1, 9, 2), (2, 7, 1)]


def test_fenced_write_leaves_previous_results(lrm_engine: sa.Engine) -> None:
    """When the fence refuses the commit, nothing of the new run is visible."""
    with lrm_engine.begin() as c:
        replace_day(c, results(7), run_id=1, before_commit=no_fence)

    def refuse(connection: sa.Connection) -> None:
        raise FencedError("test")
    with pytest.raises(FencedError), lrm_engine.begin() as c:
        replace_day(c, results(99), run_id=2, before_commit=refuse)
    with lrm_engine.connect() as c:
        values = set(c.execute(sa.select(usage_daily.c.peak_value)
                               .where(usage_daily.c.level == "tenant")).scalars())
    assert values == {7}


def test_purge_keeps_daily_rows(lrm_engine: sa.Engine) -> None:
    """Purging per-minute rows leaves the daily rows in place."""
    with lrm_engine.begin() as c:
        replace_day(c, results(7), run_id=1, before_commit=no_fence)
        assert purge_minutes(c, date(2026, 11, 25)) == 4
    with lrm_engine.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(usage_minute)).scalar() == 0
        assert c.execute(sa.select(sa.func.count()).select_from(usage_daily)).scalar() == 5


def test_cleared_items_lose_their_rows_even_without_new_ones(lrm_engine: sa.Engine) -> None:
    """A run clears every (level, item) it computes before writing: a level that has no
    subjects any more (its groups were removed) keeps no rows from an earlier run, and a block
    written after the clear does not delete what another block of the run wrote."""
    with lrm_engine.begin() as c:
        replace_day(c, results(7), run_id=1, before_commit=no_fence)
    with lrm_engine.begin() as c, DayWriter(c, DAY, START, 2) as writer:
        writer.clear({"tenant": [1, 2], "system": [200]})
        tenant, _ = results(9)
        writer.write(LevelResults(  # tenant 101 only; 102 has gone
            level="tenant", subject_ids=tenant.subject_ids[:2], item_ids=tenant.item_ids[:2],
            daily_value=tenant.daily_value[:2], peak_minute=tenant.peak_minute[:2],
            minute_peaks=None if tenant.minute_peaks is None else tenant.minute_peaks[:2]))
        writer.finish()
    with lrm_engine.connect() as c:
        rows = c.execute(sa.select(usage_daily.c.level, usage_daily.c.subject_id,
                                   usage_daily.c.item_id, usage_daily.c.peak_value,
                                   usage_daily.c.run_id)
                         .order_by(usage_daily.c.subject_id, usage_daily.c.item_id)).all()
        assert [tuple(r) for r in rows] == [("tenant", 101, 1, 9, 2), ("tenant", 101, 2, 9, 2)]
        assert c.execute(sa.select(sa.func.count()).select_from(usage_minute)).scalar_one() == 2


def many_rows(value: int, subjects: int) -> LevelResults:
    peaks = np.arange(subjects * 1440, dtype=np.int32).reshape(subjects, 1440) % 97
    peaks[:, 0] = value
    return LevelResults(
        level="agent_group", subject_ids=np.arange(1, subjects + 1, dtype=np.int64),
        item_ids=np.full(subjects, 3, dtype=np.int64),
        daily_value=np.full(subjects, value, dtype=np.int64),
        peak_minute=np.zeros(subjects, dtype=np.int64), minute_peaks=peaks)


def staged_rows(connection: sa.Connection) -> int:
    return int(connection.execute(
        sa.select(sa.func.count()).select_from(usage_minute_staged)).scalar_one())


def test_rows_staged_over_several_connections_all_arrive_and_staging_is_emptied(
        lrm_engine: sa.Engine) -> None:
    """A block larger than a staged batch is copied in batches over the staging connections
    and moved into usage_minute whole; nothing stays in the staging table."""
    block = many_rows(5, 2_345)
    with lrm_engine.begin() as c:
        replace_day(c, [block], run_id=1, before_commit=no_fence)
    with lrm_engine.connect() as c:
        stored = c.execute(sa.select(usage_minute.c.subject_id, usage_minute.c.peaks,
                                     usage_minute.c.run_id)
                           .where(usage_minute.c.level == "agent_group")
                           .order_by(usage_minute.c.subject_id)).all()
        assert staged_rows(c) == 0
    assert [r.subject_id for r in stored] == list(range(1, 2_346))
    assert {r.run_id for r in stored} == {1}
    assert block.minute_peaks is not None
    assert np.array_equal(np.array([r.peaks for r in stored]), block.minute_peaks)


def test_a_failed_runs_staged_rows_are_never_read_and_go_with_the_next_commit(
        lrm_engine: sa.Engine) -> None:
    """A run that fails after staging leaves usage_minute as it was; its staged rows are
    removed by the next run that commits."""
    with lrm_engine.begin() as c:
        replace_day(c, [many_rows(5, 1_200)], run_id=1, before_commit=no_fence)

    def refuse(connection: sa.Connection) -> None:
        raise FencedError("test")
    with pytest.raises(FencedError), lrm_engine.begin() as c:
        replace_day(c, [many_rows(9, 1_500)], run_id=2, before_commit=refuse)
    with lrm_engine.connect() as c:
        assert staged_rows(c) == 1_500  # committed by the staging connections, never moved
        minutes = c.execute(sa.select(usage_minute.c.run_id, sa.func.count())
                            .group_by(usage_minute.c.run_id)).all()
        assert [tuple(r) for r in minutes] == [(1, 1_200)]
    with lrm_engine.begin() as c:
        replace_day(c, [many_rows(7, 10)], run_id=3, before_commit=no_fence)
    with lrm_engine.connect() as c:
        assert staged_rows(c) == 0


def test_a_batch_that_does_not_move_whole_fails_the_run(lrm_engine: sa.Engine) -> None:
    """If the staging table holds other rows under the run's batch than those it staged, the
    run fails rather than store them."""
    with lrm_engine.begin() as c:
        replace_day(c, results(7), run_id=1, before_commit=no_fence)
        c.execute(usage_minute_staged.insert().values(
            business_date=DAY, level="tenant", subject_id=999, item_id=1,
            day_start=datetime(2026, 11, 24, tzinfo=UTC), peaks=[0] * 1440, run_id=2, batch=0))
    with pytest.raises(DatabaseError, match="staged 4 per-minute rows in batch 0 but 5"), \
            lrm_engine.begin() as c:
        replace_day(c, results(9), run_id=2, before_commit=no_fence)
    with lrm_engine.connect() as c:
        assert set(c.execute(sa.select(usage_minute.c.run_id)).scalars()) == {1}
