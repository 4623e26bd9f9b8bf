"""Reads behind the reports: daily and per-minute values, limits, names, run freshness."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
import psycopg
import sqlalchemy as sa

from lrm.domain._arrays import i64
from lrm.domain.report_rows import (
    EntitlementFile,
    LimitHistory,
    Limits,
    ReportReference,
    Subject,
    day_number,
)
from lrm.domain.report_table import DailyColumns, MinuteColumns
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

# The rows as a bytea of big-endian int8 columns per subject (a value is at most 1 GB), decoded
# by one `np.frombuffer`: a month report is about a thousand rows, and a Python object per value
# cost the API more than the query (a binary COPY sends a message per row: as much again).
_DAILY_PACKED = """
SELECT string_agg(int8send(subject_id) || int8send(item_id::int8)
                  || int8send((business_date - DATE '1970-01-01')::int8)
                  || int8send(peak_value::int8)
                  || int8send(COALESCE(extract(epoch FROM peak_time)::int8, -1)), ''::bytea)
FROM usage_daily
WHERE level = %(level)s AND subject_id = ANY(%(subjects)s)
  AND business_date BETWEEN %(start)s AND %(end)s {items}
GROUP BY subject_id
"""
_DAILY_FIELDS = 5  # subject, item, day, value, peak_ts (DailyColumns' order)


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
                                 "start": start, "end": end}
    items = ""
    if item_ids is not None:
        items = "AND item_id = ANY(%(items)s)"
        params["items"] = list(item_ids)
    return _DAILY_PACKED.format(items=items), params


def _daily_columns(rows: Sequence[tuple[Any, ...]]) -> DailyColumns:
    packed = b"".join(row[0] for row in rows)
    values = np.frombuffer(packed, dtype=">i8").reshape(-1, _DAILY_FIELDS).astype(np.int64)
    return DailyColumns(*(values[:, k].copy() for k in range(_DAILY_FIELDS)))


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
