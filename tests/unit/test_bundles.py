"""Bundle-set and entitlement XML: parsing, validation listing every problem, and selection of
the set / entitlement in force (research/lrm-domain.md §2.5, §2.6, §9a examples 4 and 5)."""

from __future__ import annotations

from datetime import date

import pytest

from lrm.domain.bundles import (
    Bundle,
    BundleSet,
    Entitlement,
    active_bundle_set,
    active_entitlement,
    parse_bundle_set,
    parse_entitlement,
)
from lrm.domain.errors import InputError
from lrm.domain.items import build_catalogue

CATALOGUE = build_catalogue([{"id": 50, "code": "sms_seat", "name": "SMS",
                              "rule": {"media": "sms"}}])

VALID = """<?xml version="1.0" encoding="UTF-8"?>
<lrm_bundle_set id="10000" issue_date="2014-01-01" valid_from="2014-01-01" valid_to="2014-12-31">
  <header><name>Hosted bundles 2014</name><description>Reseller bundles</description></header>
  <bundle id="10001">
    <header><name>Voice+Chat agent</name><description>voice seat with chat</description></header>
    <include_items>
      <sellable_item item="voice_seat" license_type="concurrent_seat"/>
      <sellable_item item="4"/>
    </include_items>
    <exclude_items>
      <sellable_item item="web_media_seat" license_type="Concurrent Seat"/>
    </exclude_items>
  </bundle>
  <bundle id="10002">
    <header><name>SMS</name></header>
    <include_items><sellable_item item="sms_seat"/></include_items>
  </bundle>
</lrm_bundle_set>
"""


def problems_of(xml: str) -> list[str]:
    with pytest.raises(InputError) as caught:
        parse_bundle_set(xml, CATALOGUE)
    assert caught.value.what == "bundle set"
    return caught.value.problems


def test_a_valid_bundle_set_is_parsed_with_items_resolved_by_code_or_id() -> None:
    """Codes and numeric ids resolve to item ids; several bundles; optional description."""
    bs = parse_bundle_set(VALID, CATALOGUE)
    assert (bs.id, bs.name, bs.description) == (10000, "Hosted bundles 2014", "Reseller bundles")
    assert (bs.issue_date, bs.valid_from, bs.valid_to) == (
        date(2014, 1, 1), date(2014, 1, 1), date(2014, 12, 31))
    assert bs.bundles == (
        Bundle(10001, "Voice+Chat agent", "voice seat with chat", include=(2, 4), exclude=(5,)),
        Bundle(10002, "SMS", "", include=(50,), exclude=()))


def test_example_5_every_problem_of_a_bad_file_is_listed() -> None:
    """§9a-5: a set id of 9999, a duplicate bundle id, a missing valid_to and a bundle without
    include_items are all reported together, with their lines."""
    xml = """<lrm_bundle_set id="9999" issue_date="2014-01-01" valid_from="2014-01-01">
  <header><name>Bad</name></header>
  <bundle id="10001"><header><name>A</name></header>
    <include_items><sellable_item item="voice_seat"/></include_items></bundle>
  <bundle id="10001"><header><name>B</name></header></bundle>
</lrm_bundle_set>"""
    problems = problems_of(xml)
    assert problems == [
        "line 1: bundle set id 9999 is below 10000",
        "line 1: valid_to is missing",
        "line 5: duplicate bundle id 10001 (first at line 3)",
        "line 5: bundle 10001 has no <include_items>",
    ]


@pytest.mark.parametrize(("xml", "expected"), [
    ('<lrm_bundle_set id="x1" issue_date="2014-01-01" valid_from="2014-01-01" '
     'valid_to="2014-12-31"><header><name>S</name></header><bundle id="10001"><header><name>B'
     '</name></header><include_items><sellable_item item="1"/></include_items></bundle>'
     '</lrm_bundle_set>',
     ["line 1: bundle set id 'x1' is not numeric"]),
    ('<lrm_bundle_set id="10000" issue_date="2014-02-30" valid_from="2015-01-01" '
     'valid_to="2014-12-31"><header><name>S</name></header><bundle id="10001"><header><name>B'
     '</name></header><include_items><sellable_item item="1"/></include_items></bundle>'
     '</lrm_bundle_set>',
     ["line 1: issue_date '2014-02-30' is not a valid date",
      "line 1: valid_from 2015-01-01 is after valid_to 2014-12-31"]),
    ('<lrm_bundle_set id="10000" issue_date="2014-01-01" valid_from="2014-01-01" '
     'valid_to="2014-12-31"><bundle id="100"><include_items/></bundle></lrm_bundle_set>',
     ["line 1: the bundle set has no <header>",
      "line 1: bundle id 100 is below 10000",
      "line 1: bundle has no <header>",
      "line 1: bundle <include_items> lists no <sellable_item>"]),
    ('<lrm_bundle_set id="10000" issue_date="2014-01-01" valid_from="2014-01-01" '
     'valid_to="2014-12-31"><header><description>d</description></header></lrm_bundle_set>',
     ["line 1: the bundle set header has no <name>", "line 1: the bundle set has no <bundle>"]),
    ('<lrm_bundle_set id="10000" issue_date="2014-01-01" valid_from="2014-01-01" '
     'valid_to="2014-12-31" colour="red"><header><name>S</name></header>\n<bundle id="10001">'
     '<header><name>B</name></header>\n<include_items><sellable_item item="voice_seat"/>'
     '<sellable_item item="nope"/><sellable_item item="gvp_ports"/>'
     '<sellable_item item="voice_seat" license_type="enabled_seat"/></include_items>\n'
     '<exclude_items><sellable_item item="2"/></exclude_items><extra/></bundle>'
     '</lrm_bundle_set>',
     ["line 1: <lrm_bundle_set> has unknown attribute(s) colour",
      "line 4: unexpected element <extra> in <bundle>",
      "line 3: bundle 10001: unknown item 'nope'",
      "line 3: bundle 10001: item 'gvp_ports' (gvp_ports) is not a seat item; bundles are "
      "counted per seat",
      "line 3: bundle 10001: license_type 'enabled_seat' does not match item voice_seat "
      "(concurrent_seat)",
      "line 2: bundle 10001: item voice_seat is both included and excluded"]),
])
def test_each_kind_of_invalid_bundle_set_is_reported(xml: str, expected: list[str]) -> None:
    """Non-numeric ids, impossible dates, reversed validity, ids below 10000, missing header,
    name or bundle, empty include list, unknown attribute/element/item, non-seat items,
    mismatched license type, an item both included and excluded."""
    assert problems_of(xml) == expected


def test_malformed_xml_is_reported_with_its_line() -> None:
    """Broken XML gives one problem naming the line and column."""
    problems = problems_of('<lrm_bundle_set id="10000">\n  <header>\n</lrm_bundle_set>')
    assert len(problems) == 1
    assert problems[0].startswith("malformed XML at line 3, column 3: mismatched tag")


def test_doctype_and_entities_are_refused() -> None:
    """No DOCTYPE (and so no entity expansion): a billion-laughs file is refused outright."""
    xml = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]>'
           '<lrm_bundle_set id="10000"/>')
    assert problems_of(xml) == ["line 1: DOCTYPE declarations are not allowed"]


def test_the_wrong_root_element_is_refused() -> None:
    """An entitlement uploaded as a bundle set is refused with a clear message."""
    assert problems_of("<entitlement/>") == [
        "line 1: the root element is <entitlement>, expected <lrm_bundle_set>"]


def _set(set_id: int, issue: date, valid_from: date, valid_to: date) -> BundleSet:
    return BundleSet(set_id, "", "", issue, valid_from, valid_to, ())


def test_example_4_the_newest_issue_date_wins_among_covering_sets() -> None:
    """§9a-4: set 10000 (issued 2014-01-01, valid 2014) and set 10010 (issued 2014-06-01,
    valid 2014-06-01..2015-05-31)."""
    a = _set(10000, date(2014, 1, 1), date(2014, 1, 1), date(2014, 12, 31))
    b = _set(10010, date(2014, 6, 1), date(2014, 6, 1), date(2015, 5, 31))
    sets = [a, b]
    assert active_bundle_set(sets, date(2014, 5, 31)) is a
    assert active_bundle_set(sets, date(2014, 6, 1)) is b
    assert active_bundle_set(sets, date(2014, 12, 31)) is b
    assert active_bundle_set(sets, date(2015, 1, 1)) is b
    assert active_bundle_set(sets, date(2015, 5, 31)) is b
    assert active_bundle_set(sets, date(2015, 6, 1)) is None


def test_equal_issue_dates_are_broken_by_the_highest_set_id() -> None:
    """Two sets issued the same day: the higher id wins, whatever the list order."""
    a = _set(10005, date(2014, 1, 1), date(2014, 1, 1), date(2014, 12, 31))
    b = _set(10001, date(2014, 1, 1), date(2014, 1, 1), date(2014, 12, 31))
    assert active_bundle_set([a, b], date(2014, 3, 3)) is a
    assert active_bundle_set([b, a], date(2014, 3, 3)) is a


ENTITLEMENT = """<entitlement customer_name="Acme" customer_id="C-1" site_id="S-1"
    site_address="1 Main St" site_type="single-site" issue_date="2026-01-01"
    valid_from="2026-01-01" valid_to="2026-12-31" expires="2027-01-31">
  <line order_number="O-1" sap_item="3HE1" sap_description="Voice seat 8.5" quantity="100"
        burst_limit="120" license_type="concurrent_seat" item="voice_seat"/>
  <line quantity="40" item_id="100" license_type="enabled seat"/>
  <line quantity="5" item="gvp_ports"/>
  <line quantity="7" item_id="10001"/>
</entitlement>"""


def test_a_valid_entitlement_is_parsed() -> None:
    """Header attributes, lines by item code or item_id (bundle ids allowed), license types
    defaulting to the item's kind."""
    ent = parse_entitlement(ENTITLEMENT, CATALOGUE)
    assert (ent.customer_name, ent.customer_id, ent.site_type) == ("Acme", "C-1", "single-site")
    assert (ent.valid_from, ent.valid_to, ent.expires) == (
        date(2026, 1, 1), date(2026, 12, 31), date(2027, 1, 31))
    assert [(ln.item_id, ln.quantity, ln.burst_limit, ln.license_type) for ln in ent.lines] == [
        (2, 100, 120, "concurrent_seat"), (100, 40, None, "enabled_seat"),
        (200, 5, None, "port_peak"), (10001, 7, None, "concurrent_seat")]
    line = ent.line_for(2)
    assert line is not None and line.sap_description == "Voice seat 8.5"


def test_every_problem_of_a_bad_entitlement_is_listed() -> None:
    """Missing customer, bad site type and dates, lines without item, unknown items, bad
    quantities, burst below quantity, mismatched license type, duplicate item."""
    xml = """<entitlement customer_id="C" site_type="moon" issue_date="2026-01-01"
    valid_from="2026-05-01" valid_to="2026-04-01">
  <line quantity="1"/>
  <line item="nope" quantity="-3"/>
  <line item="voice_seat" quantity="10" burst_limit="5" license_type="enabled_seat"/>
  <line item_id="2" item="voice_seat" quantity="x"/>
  <line item_id="2" item="email_seat" quantity="1"/>
</entitlement>"""
    with pytest.raises(InputError) as caught:
        parse_entitlement(xml, CATALOGUE)
    assert caught.value.problems == [
        "line 1: customer_name is missing",
        "line 1: site_type 'moon' is not single-site or multi-site",
        "line 1: valid_from 2026-05-01 is after valid_to 2026-04-01",
        "line 3: <line> names no item (item or item_id)",
        "line 4: unknown item 'nope'",
        "line 4: quantity '-3' is not a non-negative integer",
        "line 5: burst_limit 5 is below quantity 10",
        "line 5: license_type 'enabled_seat' does not match item voice_seat (concurrent_seat)",
        "line 6: quantity 'x' is not a non-negative integer",
        "line 6: item 2 is listed twice (first at line 5)",
        "line 7: item 'email_seat' and item_id '2' name different items",
    ]


def test_the_newest_entitlement_valid_on_a_day_gives_the_limit() -> None:
    """Validity is [valid_from, valid_to] and before `expires`; the newest issue date wins."""
    def ent(issue: date, valid_from: date, valid_to: date, expires: date | None,
            ent_id: int) -> Entitlement:
        return Entitlement("c", "c", "", "", "", issue, valid_from, valid_to, expires, (),
                           id=ent_id)
    old = ent(date(2025, 1, 1), date(2025, 1, 1), date(2026, 12, 31), None, 1)
    new = ent(date(2026, 3, 1), date(2026, 3, 1), date(2026, 12, 31), date(2026, 6, 1), 2)
    assert active_entitlement([old, new], date(2026, 2, 28)) is old
    assert active_entitlement([old, new], date(2026, 3, 1)) is new
    assert active_entitlement([old, new], date(2026, 6, 1)) is old
    assert active_entitlement([old, new], date(2027, 1, 1)) is None
