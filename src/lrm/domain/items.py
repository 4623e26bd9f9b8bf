"""The sellable-item catalogue (SPEC §5.2) and the declarative rule language of seat items.

A rule is a mapping over five session attributes:

| attribute     | values       | the session's value                                          |
|---------------|--------------|--------------------------------------------------------------|
| `channel`     | voice, multimedia | PROVIDERTAG 1 voice, 2 multimedia; NULL with a DN: voice |
| `switch_type` | text         | CfgSwitchType of the DN's switch, e.g. "CFGSIPSwitch"        |
| `media`       | text         | the set in the person's `userProperties.lrm.media`           |
| `desktop`     | text         | the person's `userProperties.lrm.desktop`                    |
| `tenant`      | integer      | the session's tenant DBID                                    |

`{attr: value}` or `{attr: [values]}` holds when the attribute is one of the values (for
`media`: when ANY of the listed media is present). `{attr + "_not": [values]}` holds when it is
none of them (for `media`: none of them present). Every condition must hold; `{}` holds for
every session. Text compares trimmed and case-insensitively. A missing attribute (no person, no
DN, no desktop property, unknown PROVIDERTAG) is "none of the values": it fails `attr` and
passes `attr_not`. So a voice session without a person counts as an agent connector (no
Genesys desktop is known to be in use) — a deliberate, documented choice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from lrm.domain._arrays import I8, I32, I64, Bool
from lrm.domain.errors import InputError
from lrm.domain.vocabulary import Vocabulary, normalise

ItemKind = Literal["concurrent_seat", "enabled_seat", "port_peak"]
ATTRIBUTES = ("channel", "switch_type", "media", "desktop", "tenant")
CHANNEL_CODES = {"voice": 1, "multimedia": 2}
CHANNEL_UNKNOWN = 0
MAX_SEAT_ITEMS = 62
BUNDLE_MIN_ID = 10000
_CODE = re.compile(r"^[a-z][a-z0-9_]*$")


class RuleSubject(Protocol):
    """What a rule is evaluated on: one row per session segment (see `resolve.Segments`)."""

    @property
    def channel(self) -> I8: ...
    @property
    def switch_type(self) -> I32: ...
    @property
    def media(self) -> I64: ...
    @property
    def desktop(self) -> I32: ...
    @property
    def tenant(self) -> I64: ...
    @property
    def vocabulary(self) -> Vocabulary: ...


@dataclass(frozen=True)
class Condition:
    """`attribute` in `values` (or not in them when `negate`)."""

    attribute: str
    negate: bool
    values: tuple[str | int, ...]

    def mask(self, subject: RuleSubject) -> Bool:
        voc = subject.vocabulary
        hit: Bool
        if self.attribute == "channel":
            codes = [CHANNEL_CODES[str(v)] for v in self.values]
            hit = np.isin(subject.channel, np.asarray(codes, dtype=np.int8))
        elif self.attribute == "switch_type":
            codes = [voc.switch_types.lookup(str(v)) for v in self.values]
            hit = np.isin(subject.switch_type, np.asarray(codes, dtype=np.int32))
        elif self.attribute == "desktop":
            codes = [voc.desktops.lookup(str(v)) for v in self.values]
            hit = np.isin(subject.desktop, np.asarray(codes, dtype=np.int32))
        elif self.attribute == "media":
            bits = 0
            for v in self.values:
                bits |= voc.media_bit(str(v))
            hit = (subject.media & np.int64(bits)) != 0
        else:  # tenant
            hit = np.isin(subject.tenant, np.asarray(self.values, dtype=np.int64))
        return ~hit if self.negate else hit

    def key(self) -> str:
        return self.attribute + ("_not" if self.negate else "")


@dataclass(frozen=True)
class Rule:
    """A conjunction of conditions; the empty rule holds for every session."""

    conditions: tuple[Condition, ...] = ()

    def mask(self, subject: RuleSubject) -> Bool:
        """Vectorised: one flag per row of `subject`."""
        out = np.ones(subject.channel.shape, dtype=np.bool_)
        for condition in self.conditions:
            out &= condition.mask(subject)
        return out

    def to_dict(self) -> dict[str, list[str | int]]:
        """The normalised mapping form (round-trips through `parse_rule`)."""
        return {c.key(): list(c.values) for c in self.conditions}

    def media_names(self) -> tuple[str, ...]:
        return tuple(str(v) for c in self.conditions if c.attribute == "media" for v in c.values)


def _rule_problems(spec: object) -> tuple[list[str], Rule | None]:
    if not isinstance(spec, Mapping):
        return [f"a rule must be a mapping of attribute to values, not {type(spec).__name__}"], None
    problems: list[str] = []
    conditions: list[Condition] = []
    for raw_key in spec:
        if not isinstance(raw_key, str):
            problems.append(f"rule key {raw_key!r} is not text")
            continue
        key = raw_key.strip()
        negate = key.endswith("_not")
        attribute = key[: -len("_not")] if negate else key
        if attribute not in ATTRIBUTES:
            problems.append(
                f"unknown rule attribute {raw_key!r} (known: "
                f"{', '.join(ATTRIBUTES)}, each optionally with the suffix _not)")
            continue
        raw = spec[raw_key]
        values_in = list(raw) if isinstance(raw, list | tuple) else [raw]
        if not values_in:
            problems.append(f"rule attribute {raw_key!r} has an empty list of values")
            continue
        values: list[str | int] = []
        for value in values_in:
            if attribute == "tenant":
                if isinstance(value, bool) or not isinstance(value, int):
                    problems.append(f"rule attribute {raw_key!r}: {value!r} is not a tenant DBID "
                                    "(an integer)")
                    continue
                values.append(value)
                continue
            if not isinstance(value, str):
                problems.append(f"rule attribute {raw_key!r}: {value!r} is not text")
                continue
            text = normalise(value)
            if attribute == "channel" and text not in CHANNEL_CODES:
                problems.append(f"rule attribute {raw_key!r}: {value!r} is not voice or multimedia")
                continue
            if attribute == "media" and (not text or "," in text):
                problems.append(f"rule attribute {raw_key!r}: {value!r} is not one medium name")
                continue
            values.append(text)
        if values:
            conditions.append(Condition(attribute, negate, tuple(sorted(set(values), key=str))))
    if problems:
        return problems, None
    conditions.sort(key=lambda c: (ATTRIBUTES.index(c.attribute), c.negate))
    return [], Rule(tuple(conditions))


def parse_rule(spec: Mapping[str, Any]) -> Rule:
    """Parse a rule mapping. Raises InputError listing every problem (unknown attribute, bad
    value type, unknown channel, empty list)."""
    problems, rule = _rule_problems(spec)
    if rule is None:
        raise InputError(problems, what="rule")
    return rule


@dataclass(frozen=True)
class SellableItem:
    """One catalogue entry. Seat items (`concurrent_seat`) carry a rule; enabled-seat and GVP
    items are counted otherwise."""

    id: int
    code: str
    name: str
    kind: ItemKind
    rule: Rule | None = None
    rule_spec: Mapping[str, Any] | None = None
    builtin: bool = True
    gvp_component: str | None = None

    @property
    def is_seat_item(self) -> bool:
        return self.kind == "concurrent_seat" and self.rule is not None


def _seat(item_id: int, code: str, name: str, spec: dict[str, Any]) -> SellableItem:
    return SellableItem(item_id, code, name, "concurrent_seat", parse_rule(spec), spec)


BUILTIN_ITEMS: tuple[SellableItem, ...] = (
    _seat(1, "concurrent_seat", "Concurrent seat", {}),
    _seat(2, "voice_seat", "Voice seat", {"channel": "voice"}),
    _seat(3, "sip_voice_seat", "SIP voice seat",
          {"channel": "voice", "switch_type": "CFGSIPSwitch"}),
    _seat(4, "multimedia_seat", "Multimedia seat", {"channel": "multimedia"}),
    _seat(5, "web_media_seat", "Web media seat", {"channel": "multimedia", "media": ["chat"]}),
    _seat(6, "email_seat", "E-mail seat", {"channel": "multimedia", "media": ["email"]}),
    _seat(7, "agent_connector", "Agent Connector",
          {"channel": "voice", "desktop_not": ["workspace", "gad", "gsd"]}),
    SellableItem(100, "enabled_agents", "Enabled agents", "enabled_seat"),
    SellableItem(200, "gvp_ports", "GVP ports", "port_peak", gvp_component="RM"),
    SellableItem(201, "gvp_asr_ports", "GVP ASR ports", "port_peak", gvp_component="ASR"),
    SellableItem(202, "gvp_tts_ports", "GVP TTS ports", "port_peak", gvp_component="TTS"),
)
ENABLED_AGENTS_ID = 100


@dataclass(frozen=True)
class Catalogue:
    """The effective catalogue: built-in items plus those declared in settings, by id."""

    items: tuple[SellableItem, ...]
    _by_id: dict[int, SellableItem] = field(init=False, repr=False, compare=False)
    _by_code: dict[str, SellableItem] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {i.id: i for i in self.items})
        object.__setattr__(self, "_by_code", {i.code: i for i in self.items})

    def by_id(self, item_id: int) -> SellableItem | None:
        return self._by_id.get(item_id)

    def by_code(self, code: str) -> SellableItem | None:
        return self._by_code.get(code.strip())

    def resolve(self, ref: str | int) -> SellableItem | None:
        """An item by code ("voice_seat") or numeric id (2 or "2")."""
        if isinstance(ref, int):
            return self.by_id(ref)
        text = ref.strip()
        if text.isdigit():
            return self.by_id(int(text))
        return self.by_code(text)

    @property
    def seat_items(self) -> tuple[SellableItem, ...]:
        """Items counted from login sessions, in id order; item i gets bit i of the item mask."""
        return tuple(i for i in self.items if i.is_seat_item)

    def media_names(self) -> tuple[str, ...]:
        """Every medium a seat-item rule mentions (these are the media a count tracks)."""
        names: list[str] = []
        for item in self.seat_items:
            assert item.rule is not None
            names.extend(n for n in item.rule.media_names() if n not in names)
        return tuple(names)


def build_catalogue(extra: Iterable[Mapping[str, Any]] = ()) -> Catalogue:
    """Built-in items plus `[[sellable_items]]` entries ({id, code, name, rule}). Raises
    InputError listing every problem (id outside 1–9999 or taken, code malformed or taken,
    missing name, bad rule)."""
    items = list(BUILTIN_ITEMS)
    ids = {i.id for i in items}
    codes = {i.code for i in items}
    problems: list[str] = []
    for n, entry in enumerate(extra, start=1):
        where = f"sellable_items[{n}]"
        unknown = sorted(set(entry) - {"id", "code", "name", "rule"})
        if unknown:
            problems.append(f"{where}: unknown keys {', '.join(map(str, unknown))}")
        item_id = entry.get("id")
        code = entry.get("code")
        name = entry.get("name")
        if isinstance(item_id, bool) or not isinstance(item_id, int):
            problems.append(f"{where}: id {item_id!r} is not an integer")
        elif not 1 <= item_id <= 9999:
            problems.append(f"{where}: id {item_id} is outside 1–9999 (ids ≥ 10000 are bundles)")
        elif item_id in ids:
            problems.append(f"{where}: id {item_id} is already used")
        if not isinstance(code, str) or not _CODE.match(code):
            problems.append(f"{where}: code {code!r} is not lower-case letters, digits and _")
        elif code in codes:
            problems.append(f"{where}: code {code!r} is already used")
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{where}: name is missing")
        spec = entry.get("rule", {})
        rule_problems, rule = _rule_problems(spec)
        problems.extend(f"{where} ({code}): {p}" for p in rule_problems)
        if (isinstance(item_id, int) and isinstance(code, str) and isinstance(name, str)
                and rule is not None and isinstance(spec, Mapping)):
            ids.add(item_id)
            codes.add(code)
            items.append(SellableItem(item_id, code, name.strip(), "concurrent_seat", rule,
                                      dict(spec), builtin=False))
    if sum(1 for i in items if i.is_seat_item) > MAX_SEAT_ITEMS:
        problems.append(f"at most {MAX_SEAT_ITEMS} seat items are supported")
    if problems:
        raise InputError(problems, what="sellable items")
    items.sort(key=lambda i: i.id)
    return Catalogue(tuple(items))
