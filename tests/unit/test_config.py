"""Configuration documents as lookup tables, and their history during a day."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from lrm.domain._arrays import i64
from lrm.domain.config import (
    ConfigIndex,
    Keep,
    ObjectFields,
    build_config_history,
    build_config_index,
    changes_between,
    document_sections,
    parse_section,
    patch_section,
)
from lrm.domain.vocabulary import Vocabulary
from tests.strategies import changed, document, documents, person


def as_lists(index: ConfigIndex) -> dict[str, Any]:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v)
            for k, v in index.__dict__.items()}


def test_a_document_becomes_sorted_lookup_tables() -> None:
    """Ids sorted, tenants, DN switch types, media bits, desktop codes, enabled flags, group
    membership keys."""
    voc = Vocabulary(("chat", "email"))
    doc = document(tenants=(101, 102),
                   persons=[person(1002, 102, media="Email, chat", desktop="Workspace"),
                            person(1001, media="sms", state=2)],
                   places={3001: 101}, dns={4002: (102, 502), 4001: (101, 501)},
                   switches={501: "CFGSIPSwitch", 502: "CFGNortelDMS100"},
                   agent_groups={7001: [1002, 1001]}, place_groups={8001: [3001]})
    idx = build_config_index(doc, voc)
    assert idx.person_ids.tolist() == [1001, 1002]
    assert idx.person_tenant.tolist() == [101, 102]
    assert idx.person_media.tolist() == [0, 0b11]
    assert idx.person_desktop.tolist() == [0, voc.desktops.lookup("workspace")]
    assert idx.person_enabled.tolist() == [False, True]
    assert idx.dn_switch_type.tolist() == [voc.switch_types.lookup("cfgsipswitch"),
                                           voc.switch_types.lookup("CFGNortelDMS100")]
    row, group = idx.groups_of(i64([1001, 5, 1002]), kind="agent")
    assert list(zip(row.tolist(), group.tolist(), strict=True)) == [(0, 7001), (2, 7001)]
    row, group = idx.groups_of(i64([3001]), kind="place")
    assert group.tolist() == [8001]


def test_malformed_objects_are_skipped_and_counted_and_the_later_duplicate_wins() -> None:
    """Objects without a positive DBID, non-objects and bad members are counted in `skipped`;
    a repeated DBID keeps the later object."""
    doc: dict[str, Any] = {
        "tenants": [{"DBID": 101}, {"DBID": "x"}, "junk"],
        "persons": [person(1001, 101), person(1001, 102), {"DBID": True}, {"name": "none"}],
        "agent-groups": [{"DBID": 7001, "members": [1001, -4, "a"]},
                         {"DBID": 7001, "members": [1002]}],
    }
    idx = build_config_index(doc, Vocabulary())
    assert idx.tenant_ids.tolist() == [101]
    assert idx.person_ids.tolist() == [1001]
    assert idx.person_tenant.tolist() == [102]
    assert idx.agent_members.tolist() == [(1002 << 32) | 7001]
    assert idx.skipped == 2 + 2 + 2


def test_the_document_in_force_is_the_latest_sample_at_or_before_the_instant() -> None:
    """Before the first sample the first document applies; equal consecutive documents and
    same-second samples are merged (the later one in the input wins)."""
    a = document(persons=[person(1)])
    b = document(persons=[person(2)])
    c = document(persons=[person(3)])
    history = build_config_history([(100, a), (200, copy.deepcopy(a)), (300, b), (300, c)],
                                   Vocabulary())
    assert history.times.tolist() == [100, 300]
    assert [i.person_ids.tolist() for i in history.indexes] == [[1], [3]]
    assert history.doc_at(i64([0, 100, 299, 300, 10**9])).tolist() == [0, 0, 0, 1, 1]
    assert list(history.in_force(0, 300)) == [0]
    assert list(history.in_force(0, 301)) == [0, 1]
    assert list(history.in_force(400, 500)) == [1]


def test_changes_name_only_entities_whose_counting_attributes_changed() -> None:
    """Media/desktop/agent-group changes name the person, switch-type changes the DN, place-group
    changes the place; a renamed person is not a change."""
    voc = Vocabulary(("chat",))
    base = document(persons=[person(1, media="chat"), person(2), person(3)],
                    dns={4001: (101, 501), 4002: (101, 501)},
                    switches={501: "CFGSIPSwitch", 502: "X"}, agent_groups={7001: [1]},
                    place_groups={8001: [3001]}, places={3001: 101, 3002: 101})
    new = copy.deepcopy(base)
    new["persons"][0]["userProperties"]["lrm"]["media"] = ""
    new["persons"][1]["userName"] = "renamed"
    new["agent-groups"][0]["members"] = [1, 3]
    new["dns"][1]["switchDBID"] = 502
    new["place-groups"][0]["members"] = [3002]
    ch = changes_between(build_config_index(base, voc), build_config_index(new, voc))
    assert (ch.persons.tolist(), ch.dns.tolist(), ch.places.tolist()) == (
        [1, 3], [4002], [3001, 3002])


@given(documents(), st.lists(st.booleans(), min_size=1, max_size=4), st.data())
def test_incremental_parsing_equals_parsing_each_document_afresh(
        base: dict[str, Any], shapes: list[bool], data: st.DataObject) -> None:
    """The history re-parses only changed objects; every index equals a fresh parse of its
    document (same vocabulary)."""
    docs = [base]
    for same_objects in shapes:
        new = data.draw(changed(docs[-1]))
        if same_objects:  # an unchanged section list object is reused as is
            new["dns"] = docs[-1]["dns"]
        docs.append(new)
    voc = Vocabulary(("chat", "email", "sms"))
    history = build_config_history([(k * 600, d) for k, d in enumerate(docs)], voc)
    fresh = [build_config_index(d, voc) for d in docs]
    kept = [fresh[0]]
    for previous, d, f in zip(docs, docs[1:], fresh[1:], strict=False):
        if d != previous:  # equal consecutive documents are merged
            kept.append(f)
    assert [as_lists(i) for i in history.indexes] == [as_lists(i) for i in kept]


def test_integers_beyond_64_bits_are_malformed_not_fatal() -> None:
    """A value no int64 holds (as an attribute or a DBID) reads as malformed (-1)."""
    doc: dict[str, Any] = {"tenants": [{"DBID": 101}],
                           "persons": [person(1001, 101), {"DBID": 10**20, "tenantDBID": 101},
                                       {**person(1002, 101), "state": 10**20}]}
    idx = build_config_index(doc, Vocabulary())
    assert idx.person_ids.tolist() == [1001, 1002]
    assert idx.person_enabled.tolist() == [True, False]


@given(st.sampled_from(["tenants", "persons", "agent-groups"]), st.data())
def test_an_edit_reads_as_the_edited_list_parsed_afresh(section: str, data: st.DataObject) -> None:
    """`patch_section` equals parsing the edited object list: `Keep` ranges read as slices of
    the base list (out of range or reversed ones too), new objects in their place."""
    objects = document_sections(data.draw(documents()))[section]
    vocabulary = Vocabulary(("chat", "email"))
    base = parse_section(section, ObjectFields(objects), vocabulary)
    bound = len(objects) + 2
    ops = data.draw(st.lists(st.one_of(
        st.builds(Keep, st.integers(-bound, bound), st.integers(-bound, bound)),
        st.lists(st.sampled_from(objects or [{"DBID": 5}]), max_size=3)), max_size=5))
    edited = [obj for op in ops for obj in (objects[op.start:op.stop] if isinstance(op, Keep)
                                            else op)]
    got = patch_section(base, ops, vocabulary)
    # Parsed afresh with the same vocabulary (codes are given in order of first sight).
    expected = parse_section(section, ObjectFields(edited), vocabulary)
    for a, b in zip(got.columns, expected.columns, strict=True):
        assert a.dtype == b.dtype and a.tolist() == b.tolist(), section
