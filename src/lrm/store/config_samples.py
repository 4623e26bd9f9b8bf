"""Configuration samples in the LRM DB: stored only when the configuration changed, read back
as the time-ordered list the counting core resolves sessions against."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from lrm.store.schema import config_document, config_group, config_sample, tenant

Document = dict[str, list[dict[str, Any]]]


def canonical_hash(document: Document) -> str:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def enabled_agent_count(document: Document) -> int:
    return sum(1 for p in document.get("persons", [])
               if p.get("isAgent") == 2 and p.get("state") == 1)


def store_sample(connection: sa.Connection, taken_at: datetime, document: Document,
                 instance_id: str) -> bool:
    """Record the configuration at `taken_at` if it differs from the sample in force then.
    Returns True when a sample row was written. Also refreshes tenant and group names."""
    digest = canonical_hash(document)
    in_force = connection.execute(
        sa.select(config_document.c.content_hash)
        .join(config_sample, config_sample.c.document_id == config_document.c.id)
        .where(config_sample.c.taken_at <= taken_at)
        .order_by(config_sample.c.taken_at.desc()).limit(1)
    ).scalar()
    if in_force == digest:
        return False
    connection.execute(insert(config_document).values(content_hash=digest, document=document)
                       .on_conflict_do_nothing(index_elements=["content_hash"]))
    document_id = connection.execute(
        sa.select(config_document.c.id).where(config_document.c.content_hash == digest)
    ).scalar_one()
    connection.execute(insert(config_sample).values(
        taken_at=taken_at, document_id=document_id, instance_id=instance_id,
        enabled_agents=enabled_agent_count(document),
    ).on_conflict_do_update(index_elements=["taken_at"],
                            set_={"document_id": document_id, "instance_id": instance_id}))
    _refresh_names(connection, document)
    return True


def _refresh_names(connection: sa.Connection, document: Document) -> None:
    tenants = [{"id": t["DBID"], "name": str(t.get("name", t["DBID"]))}
               for t in document.get("tenants", [])]
    if tenants:
        stmt = insert(tenant).values(tenants)
        connection.execute(stmt.on_conflict_do_update(
            index_elements=["id"], set_={"name": stmt.excluded.name, "updated_at": sa.func.now()}))
    groups = [{"kind": kind.removesuffix("s").replace("-", "_"), "id": g["DBID"],
               "tenant_id": g.get("tenantDBID", 0), "name": str(g.get("name", g["DBID"]))}
              for kind in ("agent-groups", "place-groups") for g in document.get(kind, [])]
    if groups:
        stmt = insert(config_group).values(groups)
        connection.execute(stmt.on_conflict_do_update(
            index_elements=["kind", "id"],
            set_={"name": stmt.excluded.name, "tenant_id": stmt.excluded.tenant_id,
                  "updated_at": sa.func.now()}))


def samples_between(connection: sa.Connection, start: datetime,
                    end: datetime) -> list[tuple[datetime, Document]]:
    """The samples that matter for [start, end): the one in force at `start` and every later
    one before `end`, oldest first."""
    first = (sa.select(config_sample.c.taken_at).where(config_sample.c.taken_at <= start)
             .order_by(config_sample.c.taken_at.desc()).limit(1).scalar_subquery())
    rows = connection.execute(
        sa.select(config_sample.c.taken_at, config_document.c.document)
        .join(config_document, config_sample.c.document_id == config_document.c.id)
        .where(config_sample.c.taken_at >= sa.func.coalesce(first, start),
               config_sample.c.taken_at < end)
        .order_by(config_sample.c.taken_at)
    ).all()
    return [(row.taken_at, row.document) for row in rows]


def has_sample_between(connection: sa.Connection, start: datetime, end: datetime) -> bool:
    """Was any sample taken in [start, end)? (False: the sampler was not running then.)"""
    return connection.execute(
        sa.select(sa.literal(1)).where(config_sample.c.taken_at >= start,
                                       config_sample.c.taken_at < end).limit(1)
    ).first() is not None


