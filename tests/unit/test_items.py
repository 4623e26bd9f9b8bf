"""The sellable-item catalogue and the declarative rule language (SPEC §5.2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from lrm.domain._arrays import I8, I32, I64, i64
from lrm.domain.errors import InputError
from lrm.domain.items import BUILTIN_ITEMS, build_catalogue, parse_rule
from lrm.domain.vocabulary import Vocabulary


@dataclass(frozen=True)
class Rows:
    """A hand-made rule subject: one row per session segment."""

    channel: I8
    switch_type: I32
    media: I64
    desktop: I32
    tenant: I64
    vocabulary: Vocabulary


def rows(vocabulary: Vocabulary, *specs: dict[str, object]) -> Rows:
    channel = {"voice": 1, "multimedia": 2, None: 0}
    return Rows(
        channel=np.asarray([channel[s.get("channel")] for s in specs], dtype=np.int8),
        switch_type=np.asarray([vocabulary.switch_types.code(str(s.get("switch", "")))
                                for s in specs], dtype=np.int32),
        media=i64([vocabulary.media_mask(str(s.get("media", ""))) for s in specs]),
        desktop=np.asarray([vocabulary.desktops.code(str(s.get("desktop", ""))) for s in specs],
                           dtype=np.int32),
        tenant=i64([int(s.get("tenant", 101)) for s in specs]),
        vocabulary=vocabulary)


def test_the_builtin_catalogue_matches_the_specification() -> None:
    """Ids, codes and kinds of SPEC §5.2."""
    assert [(i.id, i.code, i.kind) for i in BUILTIN_ITEMS] == [
        (1, "concurrent_seat", "concurrent_seat"), (2, "voice_seat", "concurrent_seat"),
        (3, "sip_voice_seat", "concurrent_seat"), (4, "multimedia_seat", "concurrent_seat"),
        (5, "web_media_seat", "concurrent_seat"), (6, "email_seat", "concurrent_seat"),
        (7, "agent_connector", "concurrent_seat"), (100, "enabled_agents", "enabled_seat"),
        (200, "gvp_ports", "port_peak"), (201, "gvp_asr_ports", "port_peak"),
        (202, "gvp_tts_ports", "port_peak")]
    catalogue = build_catalogue()
    assert [i.id for i in catalogue.seat_items] == [1, 2, 3, 4, 5, 6, 7]
    assert catalogue.media_names() == ("chat", "email")
    assert catalogue.resolve("voice_seat") is catalogue.resolve(2) is catalogue.resolve(" 2 ")
    assert catalogue.resolve("nope") is None


def test_builtin_rules_select_the_documented_sessions() -> None:
    """Voice/multimedia, SIP switch, chat/email media, and agent connector = voice without a
    Genesys desktop (a missing desktop counts as 'not a Genesys desktop')."""
    catalogue = build_catalogue()
    voc = Vocabulary(catalogue.media_names())
    subject = rows(voc,
                   {"channel": "voice", "switch": "CFGSIPSwitch", "desktop": "workspace"},
                   {"channel": "voice", "switch": "CFGNortelDMS100", "desktop": "custom"},
                   {"channel": "multimedia", "media": "chat,sms", "desktop": "GAD"},
                   {"channel": "multimedia", "media": "Email"},
                   {"channel": None, "media": "chat"},
                   {"channel": "voice"})
    got = {item.code: item.rule.mask(subject).tolist() for item in catalogue.seat_items
           if item.rule is not None}
    assert got == {
        "concurrent_seat": [True] * 6,
        "voice_seat": [True, True, False, False, False, True],
        "sip_voice_seat": [True, False, False, False, False, False],
        "multimedia_seat": [False, False, True, True, False, False],
        "web_media_seat": [False, False, True, False, False, False],
        "email_seat": [False, False, False, True, False, False],
        "agent_connector": [False, True, False, False, False, True],
    }


def test_rule_conditions_are_a_conjunction_with_not_and_tenant() -> None:
    """`attr_not` excludes values (media: none of them present); `tenant` compares DBIDs;
    values compare case-insensitively; unseen values match nothing."""
    voc = Vocabulary(("sms", "chat"))
    subject = rows(voc, {"channel": "voice", "tenant": 101, "media": "sms"},
                   {"channel": "voice", "tenant": 102, "media": "chat"},
                   {"channel": "multimedia", "tenant": 102, "media": ""})
    assert parse_rule({"tenant": [102], "media_not": ["SMS"]}).mask(subject).tolist() == \
        [False, True, True]
    assert parse_rule({"channel_not": "voice"}).mask(subject).tolist() == [False, False, True]
    assert parse_rule({"switch_type": "never-seen"}).mask(subject).tolist() == [False] * 3
    assert parse_rule({"switch_type_not": "never-seen"}).mask(subject).tolist() == [True] * 3
    assert parse_rule({}).mask(subject).tolist() == [True] * 3


def test_rules_round_trip_through_their_normalised_dict() -> None:
    """to_dict gives lists of normalised values that parse to the same rule."""
    rule = parse_rule({"channel": "Voice", "desktop_not": ["GSD", "gad"], "tenant": 5})
    assert rule.to_dict() == {"channel": ["voice"], "desktop_not": ["gad", "gsd"],
                              "tenant": [5]}
    assert parse_rule(rule.to_dict()) == rule


def test_every_rule_problem_is_reported() -> None:
    """Unknown attributes, wrong value types, unknown channels, empty lists, non-media text."""
    with pytest.raises(InputError) as caught:
        parse_rule({"colour": "red", "tenant": ["101"], "channel": "fax", "media": [],
                    "desktop": 3, "media_not": "chat,email", "tenant_not": True})
    assert caught.value.what == "rule"
    assert caught.value.problems == [
        "unknown rule attribute 'colour' (known: channel, switch_type, media, desktop, tenant, "
        "each optionally with the suffix _not)",
        "rule attribute 'tenant': '101' is not a tenant DBID (an integer)",
        "rule attribute 'channel': 'fax' is not voice or multimedia",
        "rule attribute 'media' has an empty list of values",
        "rule attribute 'desktop': 3 is not text",
        "rule attribute 'media_not': 'chat,email' is not one medium name",
        "rule attribute 'tenant_not': True is not a tenant DBID (an integer)",
    ]


def test_extra_items_from_settings_join_the_catalogue() -> None:
    """[[sellable_items]] entries become seat items after the built-ins, media tracked."""
    catalogue = build_catalogue([{"id": 50, "code": "sms_seat", "name": "SMS seat",
                                  "rule": {"channel": "multimedia", "media": ["sms"]}}])
    item = catalogue.by_id(50)
    assert item is not None and not item.builtin and item.is_seat_item
    assert [i.id for i in catalogue.seat_items] == [1, 2, 3, 4, 5, 6, 7, 50]
    assert catalogue.media_names() == ("chat", "email", "sms")


def test_every_problem_of_extra_items_is_reported() -> None:
    """Ids outside 1–9999 or taken, bad or taken codes, missing names, bad rules, unknown keys."""
    with pytest.raises(InputError) as caught:
        build_catalogue([
            {"id": 2, "code": "voice_seat", "name": "x"},
            {"id": 10000, "code": "Bad Code", "name": ""},
            {"id": 60, "code": "ok", "name": "ok", "rule": {"nope": 1}, "kind": "x"},
            {"id": 61, "code": "ok2", "name": "dup"}, {"id": 61, "code": "ok3", "name": "dup"},
        ])
    assert caught.value.problems == [
        "sellable_items[1]: id 2 is already used",
        "sellable_items[1]: code 'voice_seat' is already used",
        "sellable_items[2]: id 10000 is outside 1–9999 (ids ≥ 10000 are bundles)",
        "sellable_items[2]: code 'Bad Code' is not lower-case letters, digits and _",
        "sellable_items[2]: name is missing",
        "sellable_items[3]: unknown keys kind",
        "sellable_items[3] (ok): unknown rule attribute 'nope' (known: channel, switch_type, "
        "media, desktop, tenant, each optionally with the suffix _not)",
        "sellable_items[5]: id 61 is already used",
    ]
