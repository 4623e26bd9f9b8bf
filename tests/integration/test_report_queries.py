"""The report's daily values come back from the LRM DB exactly as stored: every column of
every row, a NULL peak time as `NO_TIME`, dates and instants on both sides of PostgreSQL's
2000-01-01 epoch, the same through the CLI's connection and the API's event-loop one; and in
the order of a day report's rows (subject, item, date), which the report relies on to skip its
sort."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

import psycopg
import sqlalchemy as sa

from lrm.domain.report_rows import day_number
from lrm.domain.report_table import NO_TIME, DailyColumns
from lrm.store import report_queries as q
from lrm.store.db import libpq_url
from lrm.store.schema import usage_daily

ROWS = [  # level, subject, item, date, value, peak time
    ("tenant", 101, 1, date(2026, 11, 2), 7, datetime(2026, 11, 2, 8, 59, tzinfo=UTC)),
    ("tenant", 101, 1, date(2026, 11, 3), 0, None),
    ("tenant", 101, 2, date(2026, 11, 2), 5, None),  # the key orders it before 101/1/11-03
    ("tenant", 101, 2_147_483_647, date(2026, 11, 3), 1_000_000, datetime(
        2026, 11, 3, 23, 59, tzinfo=UTC)),
    ("tenant", 102, 5, date(1999, 12, 31), 3, datetime(1999, 12, 31, 22, 0, tzinfo=UTC)),
    ("tenant", 2_147_483_647, 5, date(2026, 11, 2), 4, datetime(2026, 11, 1, 23, 1,
                                                                 tzinfo=UTC)),
    ("agent_group", 101, 1, date(2026, 11, 2), 9, None),  # another level: never read here
    ("tenant", 103, 1, date(2026, 11, 2), 9, None),  # a subject not asked for
]
SUBJECTS = [101, 102, 2_147_483_647]


def _expected(start: date, end: date, items: set[int] | None) -> set[tuple[int, ...]]:
    return {(subject, item, day_number(day), value,
             NO_TIME if at is None else int(at.timestamp()))
            for level, subject, item, day, value, at in ROWS
            if level == "tenant" and subject in SUBJECTS and start <= day <= end
            and (items is None or item in items)}


def _rows(columns: DailyColumns) -> set[tuple[int, ...]]:
    return set(zip(columns.subject.tolist(), columns.item.tolist(), columns.day.tolist(),
                   columns.value.tolist(), columns.peak_ts.tolist(), strict=True))


def _in_row_order(columns: DailyColumns) -> bool:
    keys = list(zip(columns.subject.tolist(), columns.item.tolist(), columns.day.tolist(),
                    strict=True))
    return keys == sorted(keys)


def test_daily_values_read_every_column_as_stored(lrm_engine: sa.Engine,
                                                  lrm_db_url: str) -> None:
    with lrm_engine.begin() as c:
        c.execute(sa.insert(usage_daily), [
            {"level": level, "subject_id": subject, "item_id": item, "business_date": day,
             "peak_value": value, "peak_time": at, "run_id": 1}
            for level, subject, item, day, value, at in ROWS])
    asks = [(date(1999, 1, 1), date(2026, 12, 31), None),
            (date(2026, 11, 3), date(2026, 11, 3), None),
            (date(2026, 11, 1), date(2026, 11, 30), {1, 5}),
            (date(2027, 1, 1), date(2027, 1, 31), None)]  # nothing
    for start, end, items in asks:
        wanted = sorted(items) if items is not None else None
        with lrm_engine.connect() as c:
            read = q.daily_values(c, "tenant", subject_ids=SUBJECTS, item_ids=wanted,
                                  start=start, end=end)
        assert len(read) == len(_expected(start, end, items))
        assert _rows(read) == _expected(start, end, items)
        assert _in_row_order(read)

        async def on_loop(start: date = start, end: date = end,
                          wanted: list[int] | None = wanted) -> DailyColumns:
            async with await psycopg.AsyncConnection.connect(libpq_url(lrm_db_url),
                                                             autocommit=True) as connection:
                return await q.daily_values_async(connection, "tenant", subject_ids=SUBJECTS,
                                                  item_ids=wanted, start=start, end=end)

        # On a thread of its own: the suite may have an event loop running in this one.
        with ThreadPoolExecutor(1) as thread:
            on_loop_read = thread.submit(asyncio.run, on_loop()).result()
        assert _rows(on_loop_read) == _expected(start, end, items)
        assert _in_row_order(on_loop_read)
