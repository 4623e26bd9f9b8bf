"""Provisioned counts: the history of tenant limits by effective date."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from lrm.store.schema import provisioned_count


def list_counts(connection: sa.Connection, tenant_ids: Sequence[int] | None = None,
                item_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
    p = provisioned_count.c
    query = sa.select(p.tenant_id, p.item_id, p.effective_date, p.quantity, p.updated_at)
    if tenant_ids is not None:
        query = query.where(p.tenant_id.in_(list(tenant_ids)))
    if item_ids is not None:
        query = query.where(p.item_id.in_(list(item_ids)))
    rows = connection.execute(query.order_by(p.tenant_id, p.item_id, p.effective_date))
    return [{"tenant_id": r.tenant_id, "item_id": r.item_id,
             "effective_date": r.effective_date.isoformat(), "quantity": r.quantity,
             "updated_at": r.updated_at.isoformat()} for r in rows]


def upsert_count(connection: sa.Connection, tenant_id: int, item_id: int,
                 effective_date: date, quantity: int) -> bool:
    """Insert or replace the (tenant, item, effective date) value. True when it was new."""
    existed = connection.execute(sa.select(sa.literal(1)).where(
        provisioned_count.c.tenant_id == tenant_id, provisioned_count.c.item_id == item_id,
        provisioned_count.c.effective_date == effective_date)).first() is not None
    stmt = insert(provisioned_count).values(tenant_id=tenant_id, item_id=item_id,
                                            effective_date=effective_date, quantity=quantity)
    connection.execute(stmt.on_conflict_do_update(
        index_elements=["tenant_id", "item_id", "effective_date"],
        set_={"quantity": stmt.excluded.quantity, "updated_at": sa.func.now()}))
    return not existed


def delete_count(connection: sa.Connection, tenant_id: int, item_id: int,
                 effective_date: date) -> bool:
    result = connection.execute(sa.delete(provisioned_count).where(
        provisioned_count.c.tenant_id == tenant_id, provisioned_count.c.item_id == item_id,
        provisioned_count.c.effective_date == effective_date))
    return result.rowcount == 1
