"""Reads behind the reports: daily and per-minute values, limits, names, run freshness."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, timedelta

import psycopg
import sqlalchemy as sa

from lrm.domain.report_rows import (
    DailyLimits,
    DailyValue,
    LimitHistory,
    Limits,
    MinuteSeries,
    Subject,
)
from lrm.store.schema import (
    bundle,
    config_group,
    entitlement,
    entitlement_line,
    job_run,
    provisioned_count,
    sellable_item,
    tenant,
    usage_minute,
)


def daily_values(connection: sa.Connection, level: str, *, subject_ids: Sequence[int],
                 item_ids: Sequence[int] | None, start: date, end: date) -> list[DailyValue]:
    # Plain tuples from the driver: a month report is about a thousand rows, and building a
    # SQLAlchemy row for each cost more than the query.
    sql = ("SELECT subject_id, item_id, business_date, peak_value, peak_time FROM usage_daily "
           "WHERE level = %(level)s AND subject_id = ANY(%(subjects)s) "
           "AND business_date BETWEEN %(start)s AND %(end)s")
    params: dict[str, object] = {"level": level, "subjects": list(subject_ids),
                                 "start": start, "end": end}
    if item_ids is not None:
        sql += " AND item_id = ANY(%(items)s)"
        params["items"] = list(item_ids)
    raw = connection.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    with raw.cursor() as cursor:
        cursor.execute(sql, params)
        return [DailyValue(*row) for row in cursor.fetchall()]


def minute_series(connection: sa.Connection, level: str, *, subject_ids: Sequence[int],
                  item_ids: Sequence[int] | None, start: date, end: date) -> list[MinuteSeries]:
    m = usage_minute.c
    query = sa.select(m.subject_id, m.item_id, m.business_date, m.day_start, m.peaks).where(
        m.level == level, m.subject_id.in_(list(subject_ids)),
        m.business_date.between(start, end))
    if item_ids is not None:
        query = query.where(m.item_id.in_(list(item_ids)))
    return [MinuteSeries(r.subject_id, r.item_id, r.business_date, r.day_start, r.peaks)
            for r in connection.execute(query)]


def provisioned_limits(connection: sa.Connection, tenant_ids: Sequence[int],
                       end: date) -> dict[tuple[int, int], Limits]:
    p = provisioned_count.c
    rows = connection.execute(
        sa.select(p.tenant_id, p.item_id, p.effective_date, p.quantity)
        .where(p.tenant_id.in_(list(tenant_ids)), p.effective_date <= end)
        .order_by(p.tenant_id, p.item_id, p.effective_date))
    grouped: dict[tuple[int, int], tuple[list[date], list[int]]] = defaultdict(lambda: ([], []))
    for r in rows:
        dates, quantities = grouped[(r.tenant_id, r.item_id)]
        dates.append(r.effective_date)
        quantities.append(r.quantity)
    return {key: LimitHistory(d, q) for key, (d, q) in grouped.items()}


def entitlement_limits(connection: sa.Connection, start: date,
                       end: date) -> dict[tuple[int, int], Limits]:
    """System limits (subject 0): for each day the active entitlement file (its validity
    contains the day, the newest issue wins) gives each item's quantity, effective from the
    file's valid_from."""
    e, line = entitlement.c, entitlement_line.c
    files = connection.execute(
        sa.select(e.id, e.issue_date, e.valid_from, e.valid_to)
        .where(e.valid_from <= end, e.valid_to >= start)).all()
    if not files:
        return {}
    lines: dict[int, dict[int, int]] = defaultdict(dict)
    for r in connection.execute(sa.select(line.entitlement_id, line.item_id, line.quantity)
                                .where(line.entitlement_id.in_([f.id for f in files]))):
        lines[r.entitlement_id][r.item_id] = r.quantity
    per_item: dict[int, dict[date, tuple[int, date]]] = defaultdict(dict)
    for offset in range((end - start).days + 1):
        day = start + timedelta(days=offset)
        active = [f for f in files if f.valid_from <= day <= f.valid_to]
        if not active:
            continue
        chosen = max(active, key=lambda f: (f.issue_date, f.id))
        for item_id, quantity in lines[chosen.id].items():
            per_item[item_id][day] = (quantity, chosen.valid_from)
    return {(0, item): DailyLimits(days) for item, days in per_item.items()}


def tenant_subjects(connection: sa.Connection,
                    ids: Sequence[int] | None = None) -> dict[int, Subject]:
    """Tenants by id (all of them, or only `ids`)."""
    query = sa.select(tenant.c.id, tenant.c.name)
    if ids is not None:
        query = query.where(tenant.c.id.in_(list(ids)))
    return {r.id: Subject(r.id, r.name) for r in connection.execute(query)}


def group_subjects(connection: sa.Connection, kind: str) -> dict[int, Subject]:
    names = tenant_subjects(connection)
    g = config_group.c
    result = {}
    for r in connection.execute(sa.select(g.id, g.name, g.tenant_id).where(g.kind == kind)):
        owner = names.get(r.tenant_id)
        result[r.id] = Subject(r.id, r.name, r.tenant_id, owner.name if owner else None)
    return result


def item_names(connection: sa.Connection) -> dict[int, str]:
    names = {r.id: r.name for r in connection.execute(
        sa.select(sellable_item.c.id, sellable_item.c.name))}
    for r in connection.execute(sa.select(bundle.c.id, bundle.c.name)
                                .order_by(bundle.c.set_id)):
        names[r.id] = r.name
    return names


def last_complete_date(connection: sa.Connection) -> date | None:
    j = job_run.c
    return connection.execute(sa.select(sa.func.max(j.business_date))
                              .where(j.status == "succeeded")).scalar()
