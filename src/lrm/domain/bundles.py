"""User-defined bundle sets and entitlement files (SPEC §5.4; research lrm-domain.md §2.5,
§2.6, §10 G3/G21).

Both arrive as XML uploads. Validation collects **every** problem before refusing the file with
`InputError(problems, what=…)`, so an operator fixes a file in one round.

Bundle set:
```xml
<lrm_bundle_set id="10000" issue_date="2026-01-01" valid_from="2026-01-01" valid_to="2026-12-31">
  <header><name>Hosted bundles</name><description>…</description></header>
  <bundle id="10001">
    <header><name>Voice + chat</name><description>…</description></header>
    <include_items><sellable_item item="voice_seat" license_type="concurrent_seat"/></include_items>
    <exclude_items><sellable_item item="6"/></exclude_items>
  </bundle>
</lrm_bundle_set>
```
`item` is an item code or numeric id of the catalogue; only seat items can be in a bundle (a
bundle is counted per seat and instant). `license_type` is optional (default concurrent seat);
when given it must be a concurrent-seat type. Several `<exclude_items>` are merged.

Entitlement:
```xml
<entitlement customer_name="Acme" customer_id="C-1" site_id="S-1" site_address="…"
             site_type="single-site" issue_date="2026-01-01" valid_from="2026-01-01"
             valid_to="2026-12-31" expires="2027-01-01">
  <line order_number="O-1" sap_item="3HE…" sap_description="…" quantity="100"
        burst_limit="120" license_type="concurrent_seat" item="voice_seat"/>
</entitlement>
```
A line names its item by `item` (code or id) or `item_id`; ids >= 10000 are bundle ids.
An entitlement is active on d when valid_from <= d <= valid_to and d < expires (if given).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from lrm.domain._xml import (
    Node,
    XmlError,
    check_attributes,
    check_children,
    header,
    license_type,
    parse_date,
    parse_id,
    parse_xml,
)
from lrm.domain.errors import InputError
from lrm.domain.items import BUNDLE_MIN_ID, Catalogue, SellableItem


@dataclass(frozen=True)
class Bundle:
    id: int
    name: str
    description: str
    include: tuple[int, ...]
    exclude: tuple[int, ...]


@dataclass(frozen=True)
class BundleSet:
    id: int
    name: str
    description: str
    issue_date: date
    valid_from: date
    valid_to: date
    bundles: tuple[Bundle, ...]

    def covers(self, d: date) -> bool:
        return self.valid_from <= d <= self.valid_to


def _root(data: str | bytes, tag: str, what: str) -> Node:
    try:
        root = parse_xml(data)
    except XmlError as exc:
        raise InputError([str(exc)], what=what) from exc
    if root.tag != tag:
        raise InputError([f"{root.where()}: the root element is <{root.tag}>, expected <{tag}>"],
                         what=what)
    return root


def _items(container: Node, catalogue: Catalogue, where: str,
           problems: list[str]) -> list[int]:
    check_children(container, {"sellable_item"}, problems)
    entries = container.all("sellable_item")
    if not entries:
        problems.append(f"{container.where()}: {where} <{container.tag}> lists no <sellable_item>")
    ids: list[int] = []
    for entry in entries:
        check_attributes(entry, {"item", "license_type"}, problems)
        ref = entry.attrib.get("item")
        if ref is None or not ref.strip():
            problems.append(f"{entry.where()}: {where}: <sellable_item> has no item attribute")
            continue
        item = catalogue.resolve(ref)
        if item is None:
            problems.append(f"{entry.where()}: {where}: unknown item {ref!r}")
            continue
        if not item.is_seat_item:
            problems.append(f"{entry.where()}: {where}: item {ref!r} ({item.code}) is not a "
                            "seat item; bundles are counted per seat")
            continue
        raw_type = entry.attrib.get("license_type")
        if raw_type is not None:
            kind = license_type(raw_type)
            if kind is None:
                problems.append(f"{entry.where()}: {where}: license_type {raw_type!r} is not "
                                "concurrent_seat, enabled_seat or port_peak")
            elif kind != item.kind:
                problems.append(f"{entry.where()}: {where}: license_type {raw_type!r} does not "
                                f"match item {item.code} ({item.kind})")
        if item.id not in ids:
            ids.append(item.id)
    return ids


def parse_bundle_set(data: str | bytes, catalogue: Catalogue) -> BundleSet:
    """Parse and validate a bundle-set file. Raises InputError listing every problem."""
    what = "bundle set"
    root = _root(data, "lrm_bundle_set", what)
    problems: list[str] = []
    where = root.where()
    check_attributes(root, {"id", "issue_date", "valid_from", "valid_to"}, problems)
    check_children(root, {"header", "bundle"}, problems)
    set_id = parse_id(root.attrib.get("id"), "bundle set id", where, problems,
                      minimum=BUNDLE_MIN_ID)
    issue = parse_date(root.attrib.get("issue_date"), "issue_date", where, problems)
    valid_from = parse_date(root.attrib.get("valid_from"), "valid_from", where, problems)
    valid_to = parse_date(root.attrib.get("valid_to"), "valid_to", where, problems)
    if valid_from and valid_to and valid_from > valid_to:
        problems.append(f"{where}: valid_from {valid_from} is after valid_to {valid_to}")
    name, description = header(root, "the bundle set", problems)

    bundles: list[Bundle] = []
    seen: dict[int, int] = {}
    nodes = root.all("bundle")
    if not nodes:
        problems.append(f"{where}: the bundle set has no <bundle>")
    for node in nodes:
        check_attributes(node, {"id"}, problems)
        check_children(node, {"header", "include_items", "exclude_items"}, problems)
        bundle_id = parse_id(node.attrib.get("id"), "bundle id", node.where(), problems,
                             minimum=BUNDLE_MIN_ID)
        label = f"bundle {bundle_id}" if bundle_id is not None else "bundle"
        if bundle_id is not None:
            if bundle_id in seen:
                problems.append(f"{node.where()}: duplicate bundle id {bundle_id} (first at "
                                f"line {seen[bundle_id]})")
            else:
                seen[bundle_id] = node.line
        b_name, b_description = header(node, label, problems)
        includes = node.all("include_items")
        if not includes:
            problems.append(f"{node.where()}: {label} has no <include_items>")
        elif len(includes) > 1:
            problems.append(f"{includes[1].where()}: {label} has more than one <include_items>")
        include = _items(includes[0], catalogue, label, problems) if includes else []
        exclude: list[int] = []
        for container in node.all("exclude_items"):
            exclude.extend(i for i in _items(container, catalogue, label, problems)
                           if i not in exclude)
        for both in sorted(set(include) & set(exclude)):
            item = catalogue.by_id(both)
            problems.append(f"{node.where()}: {label}: item "
                            f"{item.code if item else both} is both included and excluded")
        if bundle_id is not None:
            bundles.append(Bundle(bundle_id, b_name, b_description, tuple(sorted(include)),
                                  tuple(sorted(exclude))))
    if problems:
        raise InputError(problems, what=what)
    assert set_id is not None and issue and valid_from and valid_to
    return BundleSet(set_id, name, description, issue, valid_from, valid_to, tuple(bundles))


def active_bundle_set(sets: Iterable[BundleSet], d: date) -> BundleSet | None:
    """The set whose [valid_from, valid_to] contains `d`; among several, the newest issue_date
    wins, then the highest id. None when no set covers `d`."""
    covering = [s for s in sets if s.covers(d)]
    return max(covering, key=lambda s: (s.issue_date, s.id)) if covering else None


# --------------------------------------------------------------------------- entitlements
SITE_TYPES = ("single-site", "multi-site")


@dataclass(frozen=True)
class EntitlementLine:
    item_id: int
    quantity: int
    burst_limit: int | None
    license_type: str
    order_number: str = ""
    sap_item: str = ""
    sap_description: str = ""


@dataclass(frozen=True)
class Entitlement:
    customer_name: str
    customer_id: str
    site_id: str
    site_address: str
    site_type: str
    issue_date: date
    valid_from: date
    valid_to: date
    expires: date | None
    lines: tuple[EntitlementLine, ...]
    id: int = 0  # the stored id, when known: breaks ties between equal issue dates

    def covers(self, d: date) -> bool:
        return (self.valid_from <= d <= self.valid_to
                and (self.expires is None or d < self.expires))

    def line_for(self, item_id: int) -> EntitlementLine | None:
        return next((line for line in self.lines if line.item_id == item_id), None)


def _count(value: str | None, what: str, where: str, problems: list[str], *,
           required: bool) -> int | None:
    if value is None:
        if required:
            problems.append(f"{where}: {what} is missing")
        return None
    text = value.strip()
    if not text.isdigit():
        problems.append(f"{where}: {what} {value!r} is not a non-negative integer")
        return None
    return int(text)


def _line_item(node: Node, catalogue: Catalogue,
               problems: list[str]) -> tuple[int | None, SellableItem | None]:
    where = node.where()
    ref = node.attrib.get("item")
    raw_id = node.attrib.get("item_id")
    if ref is None and raw_id is None:
        problems.append(f"{where}: <line> names no item (item or item_id)")
        return None, None
    ids: list[int] = []
    for value, what in ((ref, "item"), (raw_id, "item_id")):
        if value is None:
            continue
        item = catalogue.resolve(value)
        if item is not None:
            ids.append(item.id)
        elif value.strip().isdigit() and int(value) >= BUNDLE_MIN_ID:
            ids.append(int(value))  # a bundle id: bundles are versioned separately
        else:
            problems.append(f"{where}: unknown {what} {value!r}")
            return None, None
    if len(set(ids)) > 1:
        problems.append(f"{where}: item {ref!r} and item_id {raw_id!r} name different items")
        return None, None
    return ids[0], catalogue.by_id(ids[0])


def parse_entitlement(data: str | bytes, catalogue: Catalogue) -> Entitlement:
    """Parse and validate an entitlement file. Raises InputError listing every problem."""
    what = "entitlement"
    root = _root(data, "entitlement", what)
    problems: list[str] = []
    where = root.where()
    attrs = root.attrib
    check_attributes(root, {"customer_name", "customer_id", "site_id", "site_address",
                            "site_type", "issue_date", "valid_from", "valid_to", "expires"},
                     problems)
    check_children(root, {"line"}, problems)
    for required in ("customer_name", "customer_id"):
        if not attrs.get(required, "").strip():
            problems.append(f"{where}: {required} is missing")
    site_type = attrs.get("site_type", "").strip().lower()
    if site_type and site_type not in SITE_TYPES:
        problems.append(f"{where}: site_type {attrs['site_type']!r} is not "
                        f"{' or '.join(SITE_TYPES)}")
    issue = parse_date(attrs.get("issue_date"), "issue_date", where, problems)
    valid_from = parse_date(attrs.get("valid_from"), "valid_from", where, problems)
    valid_to = parse_date(attrs.get("valid_to"), "valid_to", where, problems)
    expires = (parse_date(attrs["expires"], "expires", where, problems)
               if "expires" in attrs else None)
    if valid_from and valid_to and valid_from > valid_to:
        problems.append(f"{where}: valid_from {valid_from} is after valid_to {valid_to}")
    if valid_from and expires and expires <= valid_from:
        problems.append(f"{where}: expires {expires} is not after valid_from {valid_from}")

    lines: list[EntitlementLine] = []
    seen: dict[int, int] = {}
    nodes = root.all("line")
    if not nodes:
        problems.append(f"{where}: the entitlement has no <line>")
    for node in nodes:
        check_attributes(node, {"order_number", "sap_item", "sap_description", "quantity",
                                "burst_limit", "license_type", "item", "item_id"}, problems)
        item_id, item = _line_item(node, catalogue, problems)
        quantity = _count(node.attrib.get("quantity"), "quantity", node.where(), problems,
                          required=True)
        burst = _count(node.attrib.get("burst_limit"), "burst_limit", node.where(), problems,
                       required=False)
        if quantity is not None and burst is not None and burst < quantity:
            problems.append(f"{node.where()}: burst_limit {burst} is below quantity {quantity}")
        kind = item.kind if item is not None else "concurrent_seat"
        raw_type = node.attrib.get("license_type")
        if raw_type is not None:
            named = license_type(raw_type)
            if named is None:
                problems.append(f"{node.where()}: license_type {raw_type!r} is not "
                                "concurrent_seat, enabled_seat or port_peak")
            elif item_id is not None and named != kind:
                problems.append(f"{node.where()}: license_type {raw_type!r} does not match item "
                                f"{item.code if item else item_id} ({kind})")
        if item_id is not None:
            if item_id in seen:
                problems.append(f"{node.where()}: item {item_id} is listed twice (first at line "
                                f"{seen[item_id]})")
            seen.setdefault(item_id, node.line)
            if quantity is not None:
                lines.append(EntitlementLine(
                    item_id=item_id, quantity=quantity, burst_limit=burst, license_type=kind,
                    order_number=node.attrib.get("order_number", "").strip(),
                    sap_item=node.attrib.get("sap_item", "").strip(),
                    sap_description=node.attrib.get("sap_description", "").strip()))
    if problems:
        raise InputError(problems, what=what)
    assert issue and valid_from and valid_to
    return Entitlement(
        customer_name=attrs["customer_name"].strip(), customer_id=attrs["customer_id"].strip(),
        site_id=attrs.get("site_id", "").strip(),
        site_address=attrs.get("site_address", "").strip(),
        site_type=site_type, issue_date=issue, valid_from=valid_from, valid_to=valid_to,
        expires=expires, lines=tuple(lines))


def active_entitlement(entitlements: Iterable[Entitlement], d: date) -> Entitlement | None:
    """The entitlement valid on `d`; newest issue_date wins, then the highest id."""
    covering = [e for e in entitlements if e.covers(d)]
    return max(covering, key=lambda e: (e.issue_date, e.id)) if covering else None
