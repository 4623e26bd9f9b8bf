"""Reads behind the reports: daily and per-minute values, limits, names, run freshness."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
import psycopg
import sqlalchemy as sa

from lrm.domain._arrays import I64, i64
from lrm.domain.report_rows import (
    EntitlementFile,
    LimitHistory,
    Limits,
    ReportReference,
    Subject,
    day_number,
)
from lrm.domain.report_table import NO_TIME, DailyColumns, MinuteColumns
from lrm.store import job_runs
from lrm.store.schema import (
    bundle,
    config_group,
    entitlement,
    entitlement_line,
    provisioned_count,
    sellable_item,
    tenant,
    usage_minute,
)

# Per subject, each column as one bytea of its values' binary forms (int4, date, timestamptz:
# big-endian), decoded by `np.frombuffer`: a month report is about a thousand rows, and a Python
# object per value cost the API more than the query (a binary COPY sends a message per row: as
# much again). One aggregate per column, not one concatenation per row: a third less of
# PostgreSQL's time. Every aggregate takes its group's values by item and date, and
# (item_id, business_date) is unique within a subject's group (the primary key, with `level`
# fixed): the k-th value of every column is the same row's. That is also the order of a day
# report's rows, which the report then needs neither to sort nor to gather
# (`lrm.domain.report_table.daily_table`): the sort is PostgreSQL's (one for the five aggregates
# from PostgreSQL 16 on, one each before), on its own core, not the API's event loop.
_DAILY_COLUMNS = """
SELECT subject_id,
       string_agg(int4send(item_id), ''::bytea ORDER BY item_id, business_date),
       string_agg(date_send(business_date), ''::bytea ORDER BY item_id, business_date),
       string_agg(int4send(peak_value), ''::bytea ORDER BY item_id, business_date),
       string_agg(COALESCE(timestamptz_send(peak_time), %(no_time)s), ''::bytea
                  ORDER BY item_id, business_date)
FROM usage_daily
WHERE level = %(level)s AND subject_id = ANY(%(subjects)s)
  AND business_date BETWEEN %(start)s AND %(end)s {items}
GROUP BY subject_id
ORDER BY subject_id
"""
# PostgreSQL's binary date and timestamptz count from 2000-01-01 (days; microseconds, UTC).
_PG_EPOCH_DAY = day_number(date(2000, 1, 1))
_PG_EPOCH_S = _PG_EPOCH_DAY * 86_400
# A NULL peak time as the binary timestamptz '-infinity', which no peak minute is.
_NO_TIME_BINARY = np.iinfo(np.int64).min
_NO_TIME_SENT = int(_NO_TIME_BINARY).to_bytes(8, "big", signed=True)


def daily_values(connection: sa.Connection, level: str, *, subject_ids: Sequence[int],
                 item_ids: Sequence[int] | None, start: date, end: date) -> DailyColumns:
    """The usage_daily rows of `level`'s subjects (and items) from `start` to `end`."""
    raw = connection.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    with raw.cursor(binary=True) as cursor:
        cursor.execute(*_daily_query(level, subject_ids, item_ids, start, end))
        return _daily_columns(cursor.fetchall())


async def daily_values_async(connection: psycopg.AsyncConnection[Any], level: str, *,
                             subject_ids: Sequence[int], item_ids: Sequence[int] | None,
                             start: date, end: date) -> DailyColumns:
    """`daily_values` on an asyncio connection (the report API's reads on its event loop)."""
    async with connection.cursor(binary=True) as cursor:
        await cursor.execute(*_daily_query(level, subject_ids, item_ids, start, end))
        return _daily_columns(await cursor.fetchall())


def _daily_query(level: str, subject_ids: Sequence[int], item_ids: Sequence[int] | None,
                 start: date, end: date) -> tuple[str, dict[str, object]]:
    params: dict[str, object] = {"level": level, "subjects": list(subject_ids),
                                 "start": start, "end": end, "no_time": _NO_TIME_SENT}
    items = ""
    if item_ids is not None:
        items = "AND item_id = ANY(%(items)s)"
        params["items"] = list(item_ids)
    return _DAILY_COLUMNS.format(items=items), params


def _daily_columns(rows: Sequence[tuple[Any, ...]]) -> DailyColumns:
    """DailyColumns of the query's rows: (subject, items, dates, values, peak times) each."""
    def column(k: int, dtype: str) -> I64:
        return np.frombuffer(b"".join(row[k] for row in rows), dtype=dtype).astype(np.int64)

    item, day, value, peak = column(1, ">i4"), column(2, ">i4"), column(3, ">i4"), column(4, ">i8")
    sizes = [len(row[1]) // 4 for row in rows]
    peak_ts = np.where(peak == _NO_TIME_BINARY, NO_TIME, peak // 1_000_000 + _PG_EPOCH_S)
    return DailyColumns(subject=np.repeat(i64([row[0] for row in rows]), sizes), item=item,
                        day=day + _PG_EPOCH_DAY, value=value, peak_ts=peak_ts)


def minute_series(connection: sa.Connection, level: str, *, subject_ids: Sequence[int],
                  item_ids: Sequence[int] | None, start: date, end: date) -> MinuteColumns:
    """The usage_minute series of `level`'s subjects (and items) from `start` to `end`."""
    m = usage_minute.c
    query = sa.select(m.subject_id, m.item_id, m.business_date, m.day_start, m.peaks).where(
        m.level == level, m.subject_id.in_(list(subject_ids)),
        m.business_date.between(start, end))
    if item_ids is not None:
        query = query.where(m.item_id.in_(list(item_ids)))
    rows = connection.execute(query).all()
    peaks = [np.asarray(r.peaks, dtype=np.int64) for r in rows]
    return MinuteColumns(
        subject=i64([r.subject_id for r in rows]), item=i64([r.item_id for r in rows]),
        day=i64([day_number(r.business_date) for r in rows]),
        day_start_ts=i64([int(r.day_start.timestamp()) for r in rows]),
        lengths=i64([p.size for p in peaks]),
        peaks=np.concatenate(peaks) if peaks else i64([]))


def provisioned_limits(connection: sa.Connection) -> dict[tuple[int, int], Limits]:
    """Every tenant's limit history by (tenant, item)."""
    p = provisioned_count.c
    rows = connection.execute(
        sa.select(p.tenant_id, p.item_id, p.effective_date, p.quantity)
        .order_by(p.tenant_id, p.item_id, p.effective_date))
    grouped: dict[tuple[int, int], tuple[list[date], list[int]]] = defaultdict(lambda: ([], []))
    for r in rows:
        dates, quantities = grouped[(r.tenant_id, r.item_id)]
        dates.append(r.effective_date)
        quantities.append(r.quantity)
    return {key: LimitHistory(d, q) for key, (d, q) in grouped.items()}


def entitlement_files(connection: sa.Connection) -> list[EntitlementFile]:
    e, line = entitlement.c, entitlement_line.c
    quantities: dict[int, dict[int, int]] = defaultdict(dict)
    for r in connection.execute(sa.select(line.entitlement_id, line.item_id, line.quantity)):
        quantities[r.entitlement_id][r.item_id] = r.quantity
    return [EntitlementFile(r.id, r.issue_date, r.valid_from, r.valid_to, quantities[r.id])
            for r in connection.execute(
                sa.select(e.id, e.issue_date, e.valid_from, e.valid_to).order_by(e.id))]


def load_reference(connection: sa.Connection) -> ReportReference:
    tenants = tenant_subjects(connection)
    return ReportReference(
        item_names=item_names(connection),
        tenants=tenants,
        groups={level: group_subjects(connection, level, tenants)
                for level in ("agent_group", "place_group")},
        provisioned=provisioned_limits(connection),
        entitlements=entitlement_files(connection),
        succeeded_dates=frozenset(job_runs.succeeded_dates(connection)),
    )


def tenant_subjects(connection: sa.Connection) -> dict[int, Subject]:
    return {r.id: Subject(r.id, r.name)
            for r in connection.execute(sa.select(tenant.c.id, tenant.c.name))}


def group_subjects(connection: sa.Connection, kind: str,
                   tenants: dict[int, Subject]) -> dict[int, Subject]:
    """Groups of `kind` by id, with their tenant's name (from `tenants`)."""
    g = config_group.c
    result = {}
    for r in connection.execute(sa.select(g.id, g.name, g.tenant_id).where(g.kind == kind)):
        owner = tenants.get(r.tenant_id)
        result[r.id] = Subject(r.id, r.name, r.tenant_id, owner.name if owner else None)
    return result


def item_names(connection: sa.Connection) -> dict[int, str]:
    names = {r.id: r.name for r in connection.execute(
        sa.select(sellable_item.c.id, sellable_item.c.name))}
    for r in connection.execute(sa.select(bundle.c.id, bundle.c.name)
                                .order_by(bundle.c.set_id)):
        names[r.id] = r.name
    return names
