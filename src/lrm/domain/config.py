"""Configuration documents (SPEC §4.2) as vectorised lookup tables, and their history in a day.

A `ConfigIndex` holds one document as sorted DBID arrays with parallel attribute arrays, so a
million sessions are resolved with a few `np.searchsorted` calls. A `ConfigHistory` is the
time-ordered list of documents: the document in force at instant t is the one of the latest
sample at or before t; before the first sample, the first one.

Reading rules, chosen to be forgiving of a gateway's quirks but never silent:
- an object without a positive integer DBID is skipped and counted in `ConfigIndex.skipped`;
- when a DBID appears twice in one section, the later object wins;
- a missing `tenantDBID` is "unknown" (-1); a missing `state` is "not enabled";
- group members that are not positive integers are skipped (and counted).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal, Protocol, TypeGuard

import numpy as np
import numpy.typing as npt

from lrm.domain._arrays import (
    I32,
    I64,
    Bool,
    Idx,
    expand_ranges,
    i64,
    lookup,
    symmetric_difference,
    unique,
)
from lrm.domain.vocabulary import MISSING, Vocabulary

MAX_DBID = (1 << 31) - 1  # ids are int4 in the LRM DB
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
GROUP_SECTIONS = ("agent-groups", "place-groups")  # their members are a ragged column


def _int(value: object) -> int:
    """A DBID-like integer, or -1 when absent or malformed (or beyond 64 bits)."""
    if isinstance(value, bool):
        return -1
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, int):
        return value if _INT64_MIN <= value <= _INT64_MAX else -1
    return -1


def _is_mapping(value: object) -> TypeGuard[Mapping[str, Any]]:
    return type(value) is dict or isinstance(value, Mapping)


def _ints(raw: Sequence[Any] | I64) -> I64:
    """Integer column from raw JSON values, -1 where absent or malformed (fast path: all
    values are plain ints; an integer array is such a column already)."""
    if isinstance(raw, np.ndarray):
        return raw.astype(np.int64, copy=False)
    if raw and bool not in set(map(type, raw)):
        try:
            arr = np.array(raw)
        except (ValueError, TypeError, OverflowError):
            arr = None
        if arr is not None and arr.ndim == 1 and arr.dtype.kind == "i":
            return arr.astype(np.int64, copy=False)
    return i64([_int(v) for v in raw])


_EMPTY: Mapping[str, Any] = {}


def _annex(person: object) -> Mapping[str, Any]:
    """The person's `userProperties.lrm` section ({} when absent or malformed)."""
    if not _is_mapping(person):
        return _EMPTY
    props = person.get("userProperties")
    if not _is_mapping(props):
        return _EMPTY
    lrm = props.get("lrm")
    return lrm if _is_mapping(lrm) else _EMPTY


class Fields(Protocol):
    """The attribute values of a section's objects, one per object and in order. Everything the
    parsers read goes through this, so a compiled document (lrm.store.compiled_config keeps
    the values as arrays) and a list of objects are parsed by the same code. Each method is
    `[o.get(key) if o is a mapping else None for o in objects]`, or a form of it that the
    parsers read the same way."""

    def __len__(self) -> int: ...

    def ints(self, key: str) -> Sequence[Any] | I64:
        """An attribute the parsers read as integers: its `int_column` will do."""
        ...

    def texts(self, key: str) -> Sequence[Any] | CodedValues:
        """An attribute the parsers convert value by value: its `CodedValues` will do."""
        ...

    def int_lists(self, key: str) -> Sequence[Any] | IntLists:
        """An attribute holding a list of integers: its `IntLists` will do."""
        ...

    def annex(self, key: str) -> Sequence[Any] | CodedValues:
        """`[userProperties.lrm.get(key) for o in objects]`, None where any level is missing or
        not a mapping (or their `CodedValues`)."""
        ...


class ObjectFields:
    """`Fields` of a list of JSON objects."""

    def __init__(self, objects: Sequence[Any]) -> None:
        self.objects = objects
        self._annexes: list[Mapping[str, Any]] | None = None

    def __len__(self) -> int:
        return len(self.objects)

    def values(self, key: str) -> list[Any]:
        return [o.get(key) if _is_mapping(o) else None for o in self.objects]

    ints = texts = int_lists = values

    def annex(self, key: str) -> list[Any]:
        if self._annexes is None:
            self._annexes = list(map(_annex, self.objects))
        return [a.get(key) for a in self._annexes]


@dataclass(frozen=True)
class CodedValues:
    """A column of JSON values as its distinct values (in order of first occurrence) and, per
    object, the position of its value among them: how a compiled document keeps a text
    attribute, so that a parser converts each distinct value once, not each object's."""

    distinct: Sequence[Any]
    codes: npt.NDArray[np.int32]

    @classmethod
    def of(cls, values: Sequence[Any]) -> CodedValues:
        positions: dict[Any, int] = {}
        if set(map(type, values)) <= {str, type(None)}:  # the usual column: keys never collide
            codes = np.fromiter((positions.setdefault(v, len(positions)) for v in values),
                                dtype=np.int32, count=len(values))
            return cls(list(positions), codes)
        distinct: list[Any] = []
        codes = np.empty(len(values), dtype=np.int32)
        for at, value in enumerate(values):
            # Keyed by type too (True == 1 as dict keys); lists and mappings by their JSON.
            key = ((type(value).__name__, value) if value is None or isinstance(
                value, str | int | float) else ("json", json.dumps(value)))
            found = positions.get(key)
            if found is None:
                found = positions[key] = len(distinct)
                distinct.append(value)
            codes[at] = found
        return cls(distinct, codes)


@dataclass(frozen=True)
class IntLists:
    """A column of integer lists (group members) as each object's length and the members of
    all objects in a row, as `int_column` makes them (a value that is not a list: no members)."""

    lengths: I64
    flat: I64

    @classmethod
    def of(cls, values: Sequence[Any] | IntLists) -> IntLists:
        if isinstance(values, IntLists):
            return values
        lists = [v if isinstance(v, list) else [] for v in values]
        return cls(np.asarray([len(v) for v in lists], dtype=np.int64),
                   _ints([m for v in lists for m in v]))


def _converted(values: Sequence[Any] | CodedValues, convert: Callable[[Any], int],
               dtype: type[np.signedinteger[Any]]) -> npt.NDArray[Any]:
    """`[convert(v) for v in values]` as an array, converting each distinct value once."""
    coded = values if isinstance(values, CodedValues) else CodedValues.of(values)
    table = np.asarray([convert(v) for v in coded.distinct], dtype=dtype)
    return table[coded.codes] if table.size else np.zeros(0, dtype=dtype)


# Position-aligned parsers: column 0 is the DBID, one row per input object.
Columns = tuple[npt.NDArray[Any], ...]


def _parse_tenants(fields: Fields, vocabulary: Vocabulary) -> Columns:
    return (_ints(fields.ints("DBID")),)


def _parse_switches(fields: Fields, vocabulary: Vocabulary) -> Columns:
    codes = _converted(fields.texts("type"), lambda t: vocabulary.switch_types.code(t)
                       if isinstance(t, str) else MISSING, np.int32)
    return _ints(fields.ints("DBID")), codes


def _parse_dns(fields: Fields, vocabulary: Vocabulary) -> Columns:
    return (_ints(fields.ints("DBID")), _ints(fields.ints("tenantDBID")),
            _ints(fields.ints("switchDBID")))


def _parse_places(fields: Fields, vocabulary: Vocabulary) -> Columns:
    return (_ints(fields.ints("DBID")), _ints(fields.ints("tenantDBID")),
            _ints(fields.ints("state")) == 1)


def _parse_persons(fields: Fields, vocabulary: Vocabulary) -> Columns:
    media = _converted(fields.annex("media"), lambda m: vocabulary.media_mask(m)
                       if isinstance(m, str | list) else 0, np.int64)
    desktops = _converted(fields.annex("desktop"), lambda d: vocabulary.desktops.code(d)
                          if isinstance(d, str) else MISSING, np.int32)
    enabled = (_ints(fields.ints("isAgent")) == 2) & (_ints(fields.ints("state")) == 1)
    return (_ints(fields.ints("DBID")), _ints(fields.ints("tenantDBID")), media, desktops,
            enabled)


def _parse_groups(fields: Fields, vocabulary: Vocabulary) -> Columns:
    """DBID, tenant, and per group the slice [lo, hi) of its members in a flat member column
    (returned as columns 2 and 3, with the flat members as column 4 — not position-aligned)."""
    members = IntLists.of(fields.int_lists("members"))
    hi = np.cumsum(members.lengths)
    return (_ints(fields.ints("DBID")), _ints(fields.ints("tenantDBID")),
            hi - members.lengths, hi, members.flat)


_PARSERS = {
    "tenants": _parse_tenants, "switches": _parse_switches, "dns": _parse_dns,
    "places": _parse_places, "persons": _parse_persons,
    "agent-groups": _parse_groups, "place-groups": _parse_groups,
}
_SECTIONS = {
    "tenants": ("tenants",),
    "switches": ("switches",),
    "dns": ("dns",),
    "places": ("places",),
    "persons": ("persons",),
    "agent-groups": ("agent-groups", "agent_groups", "agentGroups"),
    "place-groups": ("place-groups", "place_groups", "placeGroups"),
}


@dataclass(frozen=True)
class _Table:
    """A finished section: ids sorted and distinct (the later object wins), columns aligned
    with them, objects skipped (no positive DBID). For groups, columns[-1] holds the sorted
    membership keys member << 32 | group."""

    ids: I64
    columns: Columns
    skipped: int


def _finish(section: str, raw: Columns) -> _Table:
    ids = raw[0]
    valid = (ids > 0) & (ids <= MAX_DBID)
    rows: Idx | slice
    if bool(valid.all()) and bool(np.all(ids[1:] > ids[:-1])):
        rows = slice(None)  # valid, distinct and sorted already (the usual document): as is
    elif (rows := np.flatnonzero(valid)).size:
        # Stable: of equal ids the later object (the larger row) comes last. Timsort, as
        # documents mostly list objects by DBID already.
        order = np.argsort(ids[rows], kind="stable")
        sorted_ids = ids[rows[order]]
        last = np.ones(sorted_ids.size, dtype=np.bool_)
        last[:-1] = sorted_ids[1:] != sorted_ids[:-1]
        rows = rows[order[last]]
    skipped = int(ids.size - valid.sum())
    if section in GROUP_SECTIONS:
        lo, hi, members = raw[2], raw[3], raw[4]
        owner_row, pos = expand_ranges(lo[rows], hi[rows])
        member = members[pos]
        ok = (member > 0) & (member <= MAX_DBID)
        skipped += int(members.size - np.count_nonzero(
            (members > 0) & (members <= MAX_DBID)))
        keys = unique((member[ok] << 32) | ids[rows][owner_row[ok]])
        return _Table(ids[rows], (raw[1][rows], keys), skipped)
    return _Table(ids[rows], tuple(c[rows] for c in raw[1:]), skipped)


def changed_positions(previous: list[Any], objects: list[Any], block: int = 256) -> list[int]:
    """Positions where two equally long lists differ (blocks compared in C first)."""
    changed: list[int] = []
    for lo in range(0, len(objects), block):
        a, b = previous[lo:lo + block], objects[lo:lo + block]
        if a != b:
            changed.extend(lo + i for i, (x, y) in enumerate(zip(a, b, strict=True))
                           if x is not y and x != y)
    return changed


class _SectionParser:
    """Parses one section across the documents of a history, incrementally: when a section
    list has as many objects as the previous document's, only the objects that differ are
    parsed again (configuration changes touch a few objects among thousands)."""

    def __init__(self, section: str, vocabulary: Vocabulary) -> None:
        self.section = section
        self.vocabulary = vocabulary
        self._raw_list: list[Any] | None = None
        self._raw: Columns = ()
        self._table: _Table | None = None

    def parse(self, objects: list[Any]) -> _Table:
        parser = _PARSERS[self.section]
        previous = self._raw_list
        grouped = self.section in GROUP_SECTIONS
        if previous is not None and self._table is not None:
            if objects is previous:
                return self._table
            if len(objects) == len(previous):
                changed = changed_positions(previous, objects)
                if not changed:
                    self._raw_list = objects
                    return self._table
                if not grouped and len(changed) * 4 <= len(objects):
                    patch = parser(ObjectFields([objects[i] for i in changed]),
                                   self.vocabulary)
                    raw = tuple(c.copy() for c in self._raw)
                    at = np.asarray(changed, dtype=np.intp)
                    for column, values in zip(raw, patch, strict=True):
                        column[at] = values
                    return self._keep(objects, raw)
        return self._keep(objects, parser(ObjectFields(objects), self.vocabulary))

    def _keep(self, objects: list[Any], raw: Columns) -> _Table:
        self._raw_list, self._raw = objects, raw
        self._table = _finish(self.section, raw)
        return self._table


@dataclass(frozen=True)
class ConfigIndex:
    """One configuration document as sorted lookup tables. Group memberships are sorted int64
    keys member << 32 | group."""

    tenant_ids: I64
    person_ids: I64
    person_tenant: I64
    person_media: I64
    person_desktop: I32
    person_enabled: Bool
    place_ids: I64
    place_tenant: I64
    place_enabled: Bool
    dn_ids: I64
    dn_tenant: I64
    dn_switch_type: I32
    agent_group_ids: I64
    agent_group_tenant: I64
    agent_members: I64
    place_group_ids: I64
    place_group_tenant: I64
    place_members: I64
    skipped: int

    def person_tenant_of(self, person: I64) -> tuple[Bool, I64]:
        """(found, tenant DBID or -1) per person DBID."""
        return _get(self.person_ids, self.person_tenant, person, -1)

    def place_tenant_of(self, place: I64) -> tuple[Bool, I64]:
        return _get(self.place_ids, self.place_tenant, place, -1)

    def dn_tenant_of(self, dn: I64) -> tuple[Bool, I64]:
        return _get(self.dn_ids, self.dn_tenant, dn, -1)

    def groups_of(self, members: I64, *, kind: str) -> tuple[Idx, I64]:
        """(row, group DBID) for every group membership of `members` (persons for
        kind="agent", places for kind="place"), rows in order."""
        keys = self.agent_members if kind == "agent" else self.place_members
        valid = (members > 0) & (members <= MAX_DBID)
        m = np.where(valid, members, 0)
        lo = np.searchsorted(keys, m << 32)
        hi = np.searchsorted(keys, (m + 1) << 32)
        hi = np.where(valid, hi, lo)
        row, pos = expand_ranges(lo, hi)
        return row, keys[pos] & np.int64(MAX_DBID)


def _get(ids: I64, values: npt.NDArray[Any], query: I64,
         default: int) -> tuple[Bool, npt.NDArray[Any]]:
    """(found, value or `default`) of each `query` id in the table (ids, values)."""
    found, pos = lookup(ids, query)
    if ids.size == 0:
        return found, np.full(query.shape, default, dtype=values.dtype)
    return found, np.where(found, values[pos], default).astype(values.dtype, copy=False)


def _sections(document: Mapping[str, Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for section, names in _SECTIONS.items():
        out[section] = []
        for name in names:
            value = document.get(name)
            if isinstance(value, list):
                out[section] = value
                break
    return out


def _index(tables: dict[str, _Table]) -> ConfigIndex:
    switches, dns = tables["switches"], tables["dns"]
    _, dn_switch_type = _get(switches.ids, switches.columns[0], dns.columns[1], MISSING)
    persons, places = tables["persons"], tables["places"]
    agent, place = tables["agent-groups"], tables["place-groups"]
    return ConfigIndex(
        tenant_ids=tables["tenants"].ids,
        person_ids=persons.ids, person_tenant=persons.columns[0],
        person_media=persons.columns[1], person_desktop=persons.columns[2].astype(np.int32),
        person_enabled=persons.columns[3].astype(np.bool_),
        place_ids=places.ids, place_tenant=places.columns[0],
        place_enabled=places.columns[1].astype(np.bool_),
        dn_ids=dns.ids, dn_tenant=dns.columns[0], dn_switch_type=dn_switch_type.astype(np.int32),
        agent_group_ids=agent.ids, agent_group_tenant=agent.columns[0],
        agent_members=agent.columns[1],
        place_group_ids=place.ids, place_group_tenant=place.columns[0],
        place_members=place.columns[1],
        skipped=sum(t.skipped for t in tables.values()),
    )


def build_config_index(document: Mapping[str, Any], vocabulary: Vocabulary) -> ConfigIndex:
    """Index one configuration document; string attributes are encoded through `vocabulary`."""
    return _index({section: _SectionParser(section, vocabulary).parse(objects)
                   for section, objects in _sections(document).items()})


def _value_changes(ids_a: I64, vals_a: Sequence[Any], ids_b: I64,
                   vals_b: Sequence[Any]) -> I64:
    """DBIDs whose attribute tuple differs between two tables (absent = all attributes 0)."""
    if _same(ids_a, ids_b) and all(_same(a, b) for a, b in zip(vals_a, vals_b, strict=True)):
        return i64([])  # most sections do not change between two samples
    union = unique(np.concatenate([ids_a, ids_b]))
    changed = np.zeros(union.size, dtype=np.bool_)
    for va, vb in zip(vals_a, vals_b, strict=True):
        _, xa = _get(ids_a, va, union, 0)
        _, xb = _get(ids_b, vb, union, 0)
        changed |= xa != xb
    return union[changed]


def _membership_changes(keys_a: I64, keys_b: I64) -> I64:
    if _same(keys_a, keys_b):
        return i64([])
    return unique(symmetric_difference(keys_a, keys_b) >> 32)


def _same(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> bool:
    """Equal arrays (documents that share a section share its arrays: then no comparison)."""
    return a is b or (a.shape == b.shape and bool(np.array_equal(a, b)))


@dataclass(frozen=True)
class Changes:
    """Entities whose counting attributes differ between two consecutive documents."""

    persons: I64  # media, desktop or agent-group membership changed
    dns: I64  # switch type changed
    places: I64  # place-group membership changed


def changes_between(a: ConfigIndex, b: ConfigIndex) -> Changes:
    persons = unique(np.concatenate([
        _value_changes(a.person_ids, (a.person_media, a.person_desktop),
                       b.person_ids, (b.person_media, b.person_desktop)),
        _membership_changes(a.agent_members, b.agent_members)]))
    dns = _value_changes(a.dn_ids, (a.dn_switch_type,), b.dn_ids, (b.dn_switch_type,))
    places = _membership_changes(a.place_members, b.place_members)
    return Changes(persons=persons, dns=dns, places=places)


@dataclass(frozen=True)
class ConfigHistory:
    """Documents in time order; `times[k]` is when document k came into force."""

    times: I64
    indexes: tuple[ConfigIndex, ...]
    vocabulary: Vocabulary

    def __len__(self) -> int:
        return len(self.indexes)

    def doc_at(self, ts: I64) -> Idx:
        """Index of the document in force at each instant (the first one before any sample).
        Requires at least one document."""
        k = np.searchsorted(self.times, ts, side="right") - 1
        return np.maximum(k, 0)

    def in_force(self, start_ts: int, end_ts: int) -> range:
        """Indices of the documents in force at some instant of [start_ts, end_ts)."""
        if not self.indexes:
            return range(0)
        first = int(self.doc_at(i64([start_ts]))[0])
        last = int(np.searchsorted(self.times, end_ts, side="left")) - 1
        return range(first, max(first, last) + 1)

    def changes(self, k: int) -> Changes:
        """What changed when document k came into force (k >= 1)."""
        return changes_between(self.indexes[k - 1], self.indexes[k])

    def ids_in_force(self, attr: str, start_ts: int, end_ts: int) -> I64:
        """The distinct ids of `attr` ("tenant_ids", "agent_group_ids", …) over the documents in
        force at some instant of [start_ts, end_ts)."""
        parts = [getattr(self.indexes[k], attr) for k in self.in_force(start_ts, end_ts)]
        return unique(np.concatenate([*parts, i64([])]))


def build_config_history(samples: Iterable[tuple[int, Mapping[str, Any]]],
                         vocabulary: Vocabulary) -> ConfigHistory:
    """Index time-stamped documents. Samples are sorted by time (for equal times the later one
    in the input wins); consecutive equal documents are merged (only changes matter)."""
    ordered = sorted(enumerate(samples), key=lambda item: (int(item[1][0]), item[0]))
    times: list[int] = []
    docs: list[Mapping[str, Any]] = []
    for _, (taken_at, document) in ordered:
        ts = int(taken_at)
        if times and times[-1] == ts:
            docs[-1] = document
            continue
        times.append(ts)
        docs.append(document)
    kept_times: list[int] = []
    kept_docs: list[Mapping[str, Any]] = []
    for ts, document in zip(times, docs, strict=True):
        if kept_docs and (kept_docs[-1] is document or kept_docs[-1] == document):
            continue
        kept_times.append(ts)
        kept_docs.append(document)
    parsers = {section: _SectionParser(section, vocabulary) for section in _SECTIONS}
    indexes = [_index({section: parsers[section].parse(objects)
                       for section, objects in _sections(document).items()})
               for document in kept_docs]
    return ConfigHistory(times=i64(kept_times), indexes=tuple(indexes), vocabulary=vocabulary)


# --------------------------------------------------------------------------- columnar sources
# The store reads large documents without turning them into Python objects: it keeps each full
# document's attributes the parsers read as arrays (`SECTION_KEYS`, `ANNEX_KEYS`; integer
# attributes as `int_column`s) and later documents as edits of an earlier one (`Keep` ranges and
# new objects). These functions turn that into the same tables as `build_config_history` makes
# from the documents themselves.

SECTIONS: tuple[str, ...] = tuple(_SECTIONS)


Kind = Literal["ints", "texts", "int_lists"]


class _KeyRecorder:
    """A `Fields` of no objects that records which attributes a parser reads, and how."""

    def __init__(self) -> None:
        self.keys: dict[str, Kind] = {}
        self.annex_keys: list[str] = []

    def __len__(self) -> int:
        return 0

    def ints(self, key: str) -> list[Any]:
        self.keys.setdefault(key, "ints")
        return []

    def texts(self, key: str) -> list[Any]:
        self.keys.setdefault(key, "texts")
        return []

    def int_lists(self, key: str) -> list[Any]:
        self.keys.setdefault(key, "int_lists")
        return []

    def annex(self, key: str) -> list[Any]:
        self.annex_keys.append(key)
        return []


def _read_keys() -> tuple[dict[str, dict[str, Kind]], dict[str, tuple[str, ...]]]:
    """The attributes (and `userProperties.lrm` attributes) each section's parser reads, and
    through which `Fields` method, found by running it, so that the store's columnar reader can
    never miss one."""
    keys: dict[str, dict[str, Kind]] = {}
    annex: dict[str, tuple[str, ...]] = {}
    for section in SECTIONS:
        recorder = _KeyRecorder()
        _PARSERS[section](recorder, Vocabulary())
        keys[section] = recorder.keys
        annex[section] = tuple(dict.fromkeys(recorder.annex_keys))
    return keys, annex


SECTION_KEYS, ANNEX_KEYS = _read_keys()


def int_column(values: Sequence[Any] | I64) -> I64:
    """The integer column the parsers make of an attribute read with `Fields.ints`."""
    return _ints(values)


@dataclass(frozen=True, eq=False)
class RawSection:
    """One section of one document as position-aligned columns (one row per object, in document
    order; for groups the members are a flat column with [lo, hi) slices), before ids are
    validated, de-duplicated and sorted. Documents that share a section share the object, and a
    `HistoryBuilder` finishes it once."""

    section: str
    columns: Columns


@dataclass(frozen=True)
class Keep:
    """In a section edit: the objects [start, stop) of the base section, unchanged."""

    start: int
    stop: int


def document_sections(document: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The object list of every section of a document (a section that is absent or not a list
    is empty; alternative spellings of the group sections are accepted)."""
    return _sections(document)


def parse_section(section: str, fields: Fields, vocabulary: Vocabulary) -> RawSection:
    return RawSection(section, _PARSERS[section](fields, vocabulary))


def patch_section(base: RawSection, ops: Sequence[Keep | Sequence[Any]],
                  vocabulary: Vocabulary) -> RawSection:
    """The section made of `ops` in order: `Keep` ranges of `base` and lists of new objects.
    Equal to parsing the edited object list afresh; only the new objects are parsed, all in
    one call (an edit has hundreds of small lists)."""
    added = [obj for op in ops if not isinstance(op, Keep) for obj in op]
    new = _PARSERS[base.section](ObjectFields(added), vocabulary)
    # The rows of the result as positions in [base rows; new rows].
    n_base = int(base.columns[0].size)
    starts, stops, next_new = [], [], n_base
    for op in ops:
        if isinstance(op, Keep):
            kept = range(n_base)[op.start:op.stop]  # a slice's rows, as `base[start:stop]`
            starts.append(kept.start)
            stops.append(max(kept.start, kept.stop))
        else:
            starts.append(next_new)
            next_new += len(op)
            stops.append(next_new)
    _, rows = expand_ranges(np.asarray(starts, dtype=np.intp), np.asarray(stops, dtype=np.intp))
    if base.section not in GROUP_SECTIONS:
        return RawSection(base.section, tuple(
            np.concatenate([old, more])[rows] for old, more in zip(base.columns, new,
                                                                   strict=True)))
    (dbid, tenant, lo, hi, members), (new_dbid, new_tenant, new_lo, new_hi, new_members) = (
        base.columns, new)
    lo = np.concatenate([lo, new_lo + members.size])[rows]
    hi = np.concatenate([hi, new_hi + members.size])[rows]
    _, at = expand_ranges(lo, hi)
    lengths = hi - lo
    ends = np.cumsum(lengths)
    return RawSection(base.section, (
        np.concatenate([dbid, new_dbid])[rows], np.concatenate([tenant, new_tenant])[rows],
        ends - lengths, ends, np.concatenate([members, new_members])[at]))


class HistoryBuilder:
    """`ConfigHistory`s from documents given as `RawSection`s: the same history as
    `build_config_history` over the documents themselves. A section shared by documents (or
    by the histories one builder makes) is finished once."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        self._finished: dict[int, tuple[RawSection, _Table]] = {}
        self._indexes: dict[int, tuple[Mapping[str, RawSection], ConfigIndex]] = {}

    def history(self, documents: Sequence[tuple[int, Mapping[str, RawSection]]]
                ) -> ConfigHistory:
        """The history of (taken_at, sections) documents, in strictly increasing time order
        (consecutive equal documents already merged)."""
        times = [int(t) for t, _ in documents]
        if any(b <= a for a, b in pairwise(times)):
            raise ValueError("documents must be in strictly increasing time order")
        return ConfigHistory(times=i64(times),
                             indexes=tuple(self._index(sections) for _, sections in documents),
                             vocabulary=self.vocabulary)

    def _index(self, sections: Mapping[str, RawSection]) -> ConfigIndex:
        cached = self._indexes.get(id(sections))
        if cached is None or cached[0] is not sections:
            cached = (sections, _index({s: self._table(sections[s]) for s in SECTIONS}))
            self._indexes[id(sections)] = cached
        return cached[1]

    def _table(self, raw: RawSection) -> _Table:
        cached = self._finished.get(id(raw))
        if cached is None or cached[0] is not raw:
            cached = (raw, _finish(raw.section, raw.columns))
            self._finished[id(raw)] = cached
        return cached[1]
