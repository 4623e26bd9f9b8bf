"""The item catalogue, bundle sets and entitlements in the LRM DB."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from lrm.domain.bundles import Bundle, BundleSet, Entitlement, EntitlementLine
from lrm.domain.items import Catalogue
from lrm.store.schema import bundle, bundle_set, entitlement, entitlement_line, sellable_item


def sync_catalogue(connection: sa.Connection, catalogue: Catalogue) -> None:
    """Make the sellable_item table list exactly the effective catalogue's items (built-ins and
    `[[sellable_items]]`), so reports can name every item."""
    rows = [{"id": i.id, "code": i.code, "name": i.name, "kind": i.kind,
             "rule": dict(i.rule_spec) if i.rule_spec is not None else None,
             "builtin": i.builtin} for i in catalogue.items]
    stmt = insert(sellable_item).values(rows)
    connection.execute(stmt.on_conflict_do_update(index_elements=["id"], set_={
        "code": stmt.excluded.code, "name": stmt.excluded.name, "kind": stmt.excluded.kind,
        "rule": stmt.excluded.rule, "builtin": stmt.excluded.builtin}))
    connection.execute(sa.delete(sellable_item).where(
        sellable_item.c.id.not_in([i.id for i in catalogue.items])))


def store_bundle_set(connection: sa.Connection, parsed: BundleSet, source_xml: str) -> None:
    """Store (or replace) a bundle set with its bundles."""
    connection.execute(sa.delete(bundle_set).where(bundle_set.c.id == parsed.id))
    connection.execute(sa.insert(bundle_set).values(
        id=parsed.id, name=parsed.name, description=parsed.description,
        issue_date=parsed.issue_date, valid_from=parsed.valid_from, valid_to=parsed.valid_to,
        source_xml=source_xml))
    if parsed.bundles:
        connection.execute(sa.insert(bundle), [
            {"set_id": parsed.id, "id": b.id, "name": b.name, "description": b.description,
             "include_items": list(b.include), "exclude_items": list(b.exclude)}
            for b in parsed.bundles])


def load_bundle_sets(connection: sa.Connection, covering: date | None = None) -> list[BundleSet]:
    query = sa.select(bundle_set).order_by(bundle_set.c.id)
    if covering is not None:
        query = query.where(bundle_set.c.valid_from <= covering,
                            bundle_set.c.valid_to >= covering)
    sets = connection.execute(query).all()
    members: dict[int, list[Bundle]] = {s.id: [] for s in sets}
    if sets:
        for b in connection.execute(sa.select(bundle).where(bundle.c.set_id.in_(list(members)))
                                    .order_by(bundle.c.set_id, bundle.c.id)):
            members[b.set_id].append(Bundle(b.id, b.name, b.description,
                                            tuple(b.include_items), tuple(b.exclude_items)))
    return [BundleSet(s.id, s.name, s.description, s.issue_date, s.valid_from, s.valid_to,
                      tuple(members[s.id])) for s in sets]


def store_entitlement(connection: sa.Connection, parsed: Entitlement, source_xml: str) -> int:
    entitlement_id = int(connection.execute(sa.insert(entitlement).values(
        customer_id=parsed.customer_id, customer_name=parsed.customer_name,
        site_id=parsed.site_id, site_address=parsed.site_address, site_type=parsed.site_type,
        issue_date=parsed.issue_date, valid_from=parsed.valid_from, valid_to=parsed.valid_to,
        expires=parsed.expires, source_xml=source_xml,
    ).returning(entitlement.c.id)).scalar_one())
    connection.execute(sa.insert(entitlement_line), [
        {"entitlement_id": entitlement_id, "item_id": line.item_id, "quantity": line.quantity,
         "burst_limit": line.burst_limit, "license_type": line.license_type,
         "order_number": line.order_number, "sap_item": line.sap_item,
         "sap_description": line.sap_description} for line in parsed.lines])
    return entitlement_id


def load_entitlements(connection: sa.Connection) -> list[Entitlement]:
    lines: dict[int, list[EntitlementLine]] = {}
    for r in connection.execute(sa.select(entitlement_line)):
        lines.setdefault(r.entitlement_id, []).append(EntitlementLine(
            r.item_id, r.quantity, r.burst_limit, r.license_type, r.order_number, r.sap_item,
            r.sap_description))
    return [Entitlement(r.customer_name, r.customer_id, r.site_id, r.site_address, r.site_type,
                        r.issue_date, r.valid_from, r.valid_to, r.expires,
                        tuple(lines.get(r.id, [])), r.id)
            for r in connection.execute(sa.select(entitlement).order_by(entitlement.c.id))]
