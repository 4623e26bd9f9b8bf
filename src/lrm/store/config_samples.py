"""Configuration samples in the LRM DB: stored only when the configuration changed, read back
as the time-ordered history the counting core resolves sessions against.

A hosted provider's configuration is large (half a million persons make a 160 MB document) and
changes a few objects at a time, so:

- **Storage.** A document is stored as zlib-compressed JSON bytes (`body`: a provider's document
  outgrows PostgreSQL's 256 MB limit of a jsonb value), either in full or, when this process
  still holds the last full document it stored (the *base*), as an edit of it (`base_id`):
  `{"$delta": {"base": <config_document id>, "changes": {key: {"ops": [...]} | {"value": v}},
  "removed": [key, ...]}}`, where `ops` rebuild a list in order from `{"keep": [start, stop]}`
  ranges of the base's list and `{"add": [objects]}`. Objects edited in place are found by
  comparing the lists position by position; when objects were added or removed, they are
  matched by a 128-bit digest of their canonical JSON. `content_hash` stays a hash of the whole
  document (of its values and of each list's canonical JSON), so identical
  samples still share one row. A base is a full document, or an edit at most `MAX_DEPTH`
  edits away from one (a restarted sampler continues from the document in force).
- **Reading for the job** (`HistoryLoader`): a full document is stored with its compiled form
  (`lrm.store.compiled_config`: the attributes the parsers read, as arrays), so the job never
  parses the JSON of a large document; an edit costs only its new objects. Anything unusual
  (a document without a compiled form, an edit that replaces or removes a whole key) is read
  the slow, exact way: the objects themselves. `samples_between` returns whole documents (for
  tools and tests).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from lrm.domain.config import (
    GROUP_SECTIONS,
    MAX_DBID,
    SECTIONS,
    ConfigHistory,
    HistoryBuilder,
    Keep,
    ObjectFields,
    RawSection,
    changed_positions,
    document_sections,
    int_column,
    parse_section,
    patch_section,
)
from lrm.domain.vocabulary import Vocabulary
from lrm.store.compiled_config import compile_document, compiled_sections
from lrm.store.schema import config_document, config_group, config_sample, tenant

Document = dict[str, list[dict[str, Any]]]
DELTA = "$delta"
# A sample is stored as a delta only while its new objects stay below this share of the
# document's objects (and this count); beyond, a full document is cheaper to read.
DELTA_MAX_SHARE = 0.05
DELTA_MAX_OBJECTS = 50_000
# A delta's base is usually a full document; an unchanged document in force that is itself a
# delta (found by a new sampler or a back-fill) may serve as one, up to this many edits away
# from a full document.
MAX_DEPTH = 4
_U64 = npt.NDArray[np.uint64]


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def enabled_agent_count(document: Mapping[str, Any]) -> int:
    """Enabled agents (isAgent 2, state 1), read as the counting core reads them."""
    persons = [p for _, p in _valid_objects(document_sections(document)["persons"])]
    return int(np.count_nonzero((_attribute(persons, "isAgent") == 2)
                                & (_attribute(persons, "state") == 1)))


def _attribute(objects: list[Mapping[str, Any]], key: str) -> npt.NDArray[np.int64]:
    return int_column([o.get(key) for o in objects])


def _valid_objects(objects: list[Any]) -> list[tuple[int, Mapping[str, Any]]]:
    """(DBID, object) of the objects with a valid DBID, the later one of a repeated DBID — as
    the counting core reads them (a malformed object never stops a sample from being stored)."""
    ids = int_column([o.get("DBID") if isinstance(o, Mapping) else None for o in objects])
    by_id = {i: o for i, o in zip(ids.tolist(), objects, strict=True) if 0 < i <= MAX_DBID}
    return list(by_id.items())


# =============================================================================== storing
@dataclass(frozen=True)
class _Digests:
    """Per object of a list: a 128-bit digest of its canonical JSON, as (hi, lo) words."""

    hi: _U64
    lo: _U64

    @classmethod
    def of(cls, objects: list[Any]) -> _Digests:
        raw = b"".join(hashlib.blake2b(_canonical(o).encode(), digest_size=16).digest()
                       for o in objects)
        words = np.frombuffer(raw, dtype="<u8").reshape(-1, 2)
        return cls(words[:, 0].copy(), words[:, 1].copy())

    def __len__(self) -> int:
        return int(self.hi.size)

    def equals(self, other: _Digests) -> bool:
        return (len(self) == len(other) and bool(np.array_equal(self.hi, other.hi))
                and bool(np.array_equal(self.lo, other.lo)))


@dataclass(frozen=True)
class _BaseList:
    """A list of the base document, indexed for matching: digests sorted by (hi, lo, position)."""

    digests: _Digests
    sorted_hi: _U64
    sorted_lo: _U64
    position: npt.NDArray[np.int64]

    @classmethod
    def of(cls, digests: _Digests) -> _BaseList:
        order = np.lexsort((np.arange(len(digests)), digests.lo, digests.hi))
        return cls(digests, digests.hi[order], digests.lo[order], order.astype(np.int64))

    def positions(self, new: _Digests) -> npt.NDArray[np.int64]:
        """For each new object, the position of an equal base object, or -1."""
        if len(self.digests) == 0 or len(new) == 0:
            return np.full(len(new), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.sorted_hi, new.hi), self.sorted_hi.size - 1)
        # A 64-bit `hi` shared by different objects leaves the later ones unmatched: they are
        # stored as new objects, which is still exact.
        hit = (self.sorted_hi[at] == new.hi) & (self.sorted_lo[at] == new.lo)
        return np.where(hit, self.position[at], -1)


@dataclass(frozen=True)
class SampleBase:
    """A stored document this process holds: later samples are stored as its edits. `depth` is
    the number of edits between it and a full document (0: full).

    A base holds the document's lists themselves (`lists`; not modified, usually the very lists
    the configuration source keeps), so that an unchanged list is recognised by identity and
    in-place edits position by position — fast, for a back-fill's many samples — or, in its
    `compact` form, only a digest per object (16 bytes instead of the object: what a
    long-running sampler keeps between two samples)."""

    document_id: int
    content_hash: str  # with the id: the very document (ids repeat in a recreated database)
    depth: int
    values: Mapping[str, Any]  # the document's keys that are not lists
    lists: Mapping[str, list[Any]] | None
    _digest_index: dict[str, _BaseList] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, stored: StoredDocument, document: Mapping[str, Any],
           depth: int = 0) -> SampleBase:
        return cls(stored.id, stored.content_hash, depth,
                   {k: v for k, v in document.items() if not isinstance(v, list)},
                   {k: v for k, v in document.items() if isinstance(v, list)})

    def compact(self) -> SampleBase:
        """This base with a digest per object instead of the lists."""
        if self.lists is None:
            return self
        return SampleBase(self.document_id, self.content_hash, self.depth, self.values, None,
                          {k: self.digest_index(k) for k in self.lists})

    def keys(self) -> set[str]:
        return {*self.values, *(self.lists if self.lists is not None else self._digest_index)}

    def digest_index(self, key: str) -> _BaseList:
        """The key's list indexed by object digests (made on first need: matching by digests
        is only needed when objects were added or removed)."""
        if key not in self._digest_index:
            assert self.lists is not None
            self._digest_index[key] = _BaseList.of(_Digests.of(self.lists[key]))
        return self._digest_index[key]


@dataclass(frozen=True)
class StoredSample:
    """What `store_sample` did: `written` (a sample row was written), the document in force at
    the sample's time, and the base to pass to the next call once this transaction has
    committed."""

    written: bool
    document: StoredDocument
    base: SampleBase | None


class StoredDocument(NamedTuple):
    id: int
    content_hash: str


class ListHashes:
    """The sha256 of each list's canonical JSON, remembered per list object: a configuration
    source hands back the very same list object for a list that did not change, so a large
    unchanged list is hashed once. The caller must not modify a list it has passed in."""

    def __init__(self) -> None:
        self._known: dict[int, tuple[list[Any], str]] = {}

    def content_hash(self, document: Mapping[str, Any]) -> str:
        """The document's `content_hash`: its non-list values and its lists' hashes."""
        known, self._known = self._known, {}  # remember the current document's lists only
        summary: dict[str, Any] = {}
        for key, value in document.items():
            if isinstance(value, list):
                hit = known.get(id(value))
                if hit is None or hit[0] is not value:
                    hit = (value, hashlib.sha256(_canonical(value).encode()).hexdigest())
                self._known[id(value)] = hit
                summary[key] = {"list-sha256": hit[1]}
            else:
                summary[key] = value
        return hashlib.sha256(_canonical(summary).encode()).hexdigest()


def _ops(base: _BaseList, objects: list[Any], digests: _Digests) -> tuple[list[Any], int]:
    """The edit rebuilding `objects` from the base list, and its number of new objects."""
    at = base.positions(digests)
    n = at.size
    if n == 0:
        return [], 0
    matched = at >= 0
    # A piece starts wherever an object does not continue the previous one's base run.
    run_on = np.zeros(n, dtype=np.bool_)
    run_on[1:] = matched[1:] & matched[:-1] & (at[1:] == at[:-1] + 1)
    breaks = np.flatnonzero(~run_on)
    ops: list[Any] = []
    for first, stop in zip(breaks.tolist(), [*breaks[1:].tolist(), n], strict=True):
        if matched[first]:
            ops.append({"keep": [int(at[first]), int(at[first]) + stop - first]})
        elif ops and "add" in ops[-1]:
            ops[-1]["add"].extend(objects[first:stop])
        else:
            ops.append({"add": list(objects[first:stop])})
    return ops, int(n - np.count_nonzero(matched))


def _ops_in_place(objects: list[Any], changed: list[int]) -> list[Any]:
    """The edit rebuilding `objects` from an equally long base list that differs from it at
    the `changed` positions (sorted)."""
    ops: list[Any] = []
    kept_from = 0
    for at in changed:
        if at > kept_from:
            ops.append({"keep": [kept_from, at]})
        if ops and "add" in ops[-1] and kept_from == at:
            ops[-1]["add"].append(objects[at])
        else:
            ops.append({"add": [objects[at]]})
        kept_from = at + 1
    if kept_from < len(objects):
        ops.append({"keep": [kept_from, len(objects)]})
    return ops


def _delta(base: SampleBase, document: Mapping[str, Any]) -> dict[str, Any] | None:
    """`document` as an edit of the base, or None when that would not be small."""
    changes: dict[str, Any] = {}
    new_objects = 0
    total = 0
    base_keys = base.keys()
    for key, value in document.items():
        if not isinstance(value, list):
            if key not in base.values or base.values[key] != value:
                changes[key] = {"value": value}
            continue
        total += len(value)
        if key not in base_keys or key in base.values:
            changes[key] = {"value": value}
            new_objects += len(value)
            continue
        old = base.lists[key] if base.lists is not None else None
        if value is old:
            continue
        # Objects edited in place (the usual change) are found position by position; else
        # (objects added or removed, or a compact base) objects are matched by digest
        # wherever they are.
        at = (changed_positions(old, value) if old is not None and len(value) == len(old)
              else None)
        if at is not None and len(at) <= DELTA_MAX_SHARE * len(value):
            if at:
                changes[key] = {"ops": _ops_in_place(value, at)}
                new_objects += len(at)
            continue
        index, digests = base.digest_index(key), _Digests.of(value)
        if not index.digests.equals(digests):
            ops, added = _ops(index, value, digests)
            changes[key] = {"ops": ops}
            new_objects += added
    if new_objects > min(DELTA_MAX_OBJECTS, DELTA_MAX_SHARE * max(total, 1)):
        return None
    removed = sorted(k for k in base_keys if k not in document)
    return {DELTA: {"base": base.document_id, "changes": changes, "removed": removed}}


def store_sample(connection: sa.Connection, taken_at: datetime, document: Document,
                 instance_id: str, *, base: SampleBase | None = None,
                 hashes: ListHashes | None = None) -> StoredSample:
    """Record the configuration at `taken_at` if it differs from the sample in force then,
    as an edit of `base` when that is small. Also refreshes tenant and group names. The caller
    keeps `.base` for its next call, once the transaction has committed, and passes the same
    `hashes` each time (so that unchanged lists are not hashed again)."""
    digest = (hashes or ListHashes()).content_hash(document)
    in_force = connection.execute(
        sa.select(config_document.c.id, config_document.c.content_hash)
        .join(config_sample, config_sample.c.document_id == config_document.c.id)
        .where(config_sample.c.taken_at <= taken_at)
        .order_by(config_sample.c.taken_at.desc()).limit(1)
    ).first()
    if in_force is not None and in_force.content_hash == digest:
        if base is None:
            # Unchanged: the stored document in force is the base for the changes to come
            # (rather than storing the next change in full, a second full document to read).
            depth = _depth(connection, int(in_force.id))
            if depth < MAX_DEPTH:
                base = SampleBase.of(StoredDocument(int(in_force.id), digest), document, depth)
        return StoredSample(False, StoredDocument(int(in_force.id), digest), base)
    document_id = connection.execute(
        sa.select(config_document.c.id).where(config_document.c.content_hash == digest)
    ).scalar()
    if base is not None and connection.execute(
            sa.select(config_document.c.id).where(
                config_document.c.id == base.document_id,
                config_document.c.content_hash == base.content_hash)).first() is None:
        base = None  # not in this database (recreated or restored since)
    next_base = base
    if document_id is None:
        stored = _delta(base, document) if base is not None else None
        document_id = connection.execute(
            insert(config_document).values(
                content_hash=digest, body=_pack(stored if stored is not None else document),
                base_id=base.document_id if stored is not None and base is not None else None,
                compiled=compile_document(document) if stored is None else None)
            .on_conflict_do_nothing(index_elements=["content_hash"])
            .returning(config_document.c.id)).scalar()
        if document_id is None:  # stored meanwhile by another process
            document_id = connection.execute(
                sa.select(config_document.c.id).where(config_document.c.content_hash == digest)
            ).scalar_one()
        elif stored is None:
            next_base = SampleBase.of(StoredDocument(document_id, digest), document)

    connection.execute(insert(config_sample).values(
        taken_at=taken_at, document_id=document_id, instance_id=instance_id,
        enabled_agents=enabled_agent_count(document),
    ).on_conflict_do_update(index_elements=["taken_at"],
                            set_={"document_id": document_id, "instance_id": instance_id}))
    _refresh_names(connection, document)
    return StoredSample(True, StoredDocument(int(document_id), digest), next_base)


def latest_sample_document(connection: sa.Connection) -> StoredDocument | None:
    """The document of the latest sample (None before the first)."""
    found = connection.execute(
        sa.select(config_document.c.id, config_document.c.content_hash)
        .join(config_sample, config_sample.c.document_id == config_document.c.id)
        .order_by(config_sample.c.taken_at.desc()).limit(1)).first()
    return None if found is None else StoredDocument(int(found.id), found.content_hash)


def _pack(value: Mapping[str, Any]) -> bytes:
    """What `config_document.body` holds: the JSON, zlib-compressed (fast level: documents
    are written every few minutes, and compress about tenfold even so)."""
    return zlib.compress(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode(),
                         1)


def _unpack(body: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(zlib.decompress(body))
    return value


def _depth(connection: sa.Connection, document_id: int) -> int:
    """How many edits a stored document is from a full one."""
    depth = 0
    while depth <= MAX_DEPTH:
        base = connection.execute(sa.select(config_document.c.base_id)
                                  .where(config_document.c.id == document_id)).scalar()
        if base is None:
            return depth
        document_id, depth = int(base), depth + 1
    return depth


def _refresh_names(connection: sa.Connection, document: Document) -> None:
    sections = document_sections(document)
    tenants = [{"id": i, "name": str(t.get("name", i))}
               for i, t in _valid_objects(sections["tenants"])]
    if tenants:
        stmt = insert(tenant).values(tenants)
        connection.execute(stmt.on_conflict_do_update(
            index_elements=["id"], set_={"name": stmt.excluded.name, "updated_at": sa.func.now()}))
    groups = []
    for kind in GROUP_SECTIONS:
        objects = _valid_objects(sections[kind])
        owners = _attribute([g for _, g in objects], "tenantDBID").tolist()
        groups += [{"kind": kind.removesuffix("s").replace("-", "_"), "id": i,
                    "tenant_id": owner if 0 < owner <= MAX_DBID else 0,
                    "name": str(g.get("name", i))}
                   for (i, g), owner in zip(objects, owners, strict=True)]
    if groups:
        stmt = insert(config_group).values(groups)
        connection.execute(stmt.on_conflict_do_update(
            index_elements=["kind", "id"],
            set_={"name": stmt.excluded.name, "tenant_id": stmt.excluded.tenant_id,
                  "updated_at": sa.func.now()}))


# =============================================================================== reading
def _samples(connection: sa.Connection, start: datetime,
             end: datetime) -> list[tuple[datetime, int]]:
    """(taken_at, document id) of the sample in force at `start` and every later one before
    `end`, oldest first."""
    first = (sa.select(config_sample.c.taken_at).where(config_sample.c.taken_at <= start)
             .order_by(config_sample.c.taken_at.desc()).limit(1).scalar_subquery())
    rows = connection.execute(
        sa.select(config_sample.c.taken_at, config_sample.c.document_id)
        .where(config_sample.c.taken_at >= sa.func.coalesce(first, start),
               config_sample.c.taken_at < end)
        .order_by(config_sample.c.taken_at)
    ).all()
    return [(row.taken_at, int(row.document_id)) for row in rows]


def _apply(base: Mapping[str, Any], delta: Mapping[str, Any]) -> dict[str, Any]:
    document = {k: v for k, v in base.items() if k not in delta["removed"]}
    for key, change in delta["changes"].items():
        if "value" in change:
            document[key] = change["value"]
            continue
        old = base[key]
        new: list[Any] = []
        for op in change["ops"]:
            if "keep" in op:
                new.extend(old[op["keep"][0]:op["keep"][1]])
            else:
                new.extend(op["add"])
        document[key] = new
    return document


def _documents(connection: sa.Connection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Whole documents (deltas applied to their bases, which may be deltas too)."""
    raw: dict[int, Any] = {}
    wanted = set(ids)
    while wanted:
        raw.update({int(r.id): _unpack(r.body) for r in connection.execute(
            sa.select(config_document.c.id, config_document.c.body)
            .where(config_document.c.id.in_(sorted(wanted))))})
        wanted = {int(d[DELTA]["base"]) for d in raw.values() if DELTA in d} - set(raw)
    whole: dict[int, dict[str, Any]] = {}

    def document(i: int) -> dict[str, Any]:
        if i not in whole:
            d = raw[i]
            whole[i] = _apply(document(int(d[DELTA]["base"])), d[DELTA]) if DELTA in d else d
        return whole[i]

    return {i: document(i) for i in set(ids)}


def samples_between(connection: sa.Connection, start: datetime,
                    end: datetime) -> list[tuple[datetime, Document]]:
    """The samples that matter for [start, end): the one in force at `start` and every later
    one before `end`, oldest first, as whole documents."""
    samples = _samples(connection, start, end)
    documents = _documents(connection, [i for _, i in samples])
    return [(taken_at, documents[i]) for taken_at, i in samples]


def has_sample_between(connection: sa.Connection, start: datetime, end: datetime) -> bool:
    """Was any sample taken in [start, end)? (False: the sampler was not running then.)"""
    return connection.execute(
        sa.select(sa.literal(1)).where(config_sample.c.taken_at >= start,
                                       config_sample.c.taken_at < end).limit(1)
    ).first() is not None


class HistoryLoader:
    """Reads configuration histories for the counting core: `history(start, end)` equals
    `build_config_history(samples_between(connection, start, end), vocabulary)`, read without
    building the documents. Documents read once are kept, so a history can be widened (to the
    earliest login of the day's sessions) for the cost of the documents it adds."""

    def __init__(self, connection: sa.Connection, vocabulary: Vocabulary) -> None:
        self._reader = _SectionReader(connection, vocabulary)
        self._builder = HistoryBuilder(vocabulary)
        self._connection = connection

    def history(self, start: datetime, end: datetime) -> ConfigHistory:
        documents: list[tuple[int, Mapping[str, RawSection]]] = []
        previous: int | None = None
        for taken_at, document_id in _samples(self._connection, start, end):
            if document_id != previous:  # consecutive equal documents: only changes matter
                documents.append((int(taken_at.timestamp()),
                                  self._reader.sections(document_id)))
                previous = document_id
        return self._builder.history(documents)


@dataclass(frozen=True)
class _Loaded:
    sections: dict[str, RawSection]
    compiled: bool  # from a compiled document (and the edits of one): deltas can patch it


class _SectionReader:
    """Reads stored documents as `RawSection`s: a full document from its compiled form, an edit
    as its base's sections patched with the edit's new objects; anything else (a document
    stored before documents were compiled, an edit that replaces or removes a whole key) from
    the JSON objects themselves."""

    def __init__(self, connection: sa.Connection, vocabulary: Vocabulary) -> None:
        self.connection = connection
        self.vocabulary = vocabulary
        self._loaded: dict[int, _Loaded] = {}

    def sections(self, document_id: int) -> dict[str, RawSection]:
        return self._load(document_id).sections

    def _load(self, document_id: int) -> _Loaded:
        if document_id not in self._loaded:
            self._loaded[document_id] = self._read(document_id)
        return self._loaded[document_id]

    def _read(self, document_id: int) -> _Loaded:
        # A full document's JSON is never read here: only an edit's (small) JSON.
        # Binary results: the compiled form is tens of megabytes, twice that as hex text.
        raw = self.connection.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        with raw.cursor(binary=True) as cursor:
            cursor.execute("SELECT compiled, CASE WHEN base_id IS NOT NULL THEN body END "
                           "FROM config_document WHERE id = %s", (document_id,))
            found = cursor.fetchone()
        assert found is not None, f"configuration document {document_id} is missing"
        compiled, edit = found
        if compiled is not None:
            return _Loaded(compiled_sections(compiled, self.vocabulary), compiled=True)
        if edit is not None:
            return self._read_delta(document_id, _unpack(edit)[DELTA])
        return self._read_objects(document_id)

    def _read_delta(self, document_id: int, delta: Mapping[str, Any]) -> _Loaded:
        base = self._load(int(delta["base"]))
        changes: Mapping[str, Any] = delta["changes"]
        # Patched only when every change edits a list under its canonical name; anything else
        # (a key spelt otherwise, which a parser may read as a section, a whole value, a
        # removed key) is read from the objects.
        if (not base.compiled or delta["removed"]
                or any(k not in SECTIONS or "ops" not in changes[k] for k in changes)):
            return self._read_objects(document_id)
        sections = dict(base.sections)
        for key, change in changes.items():
            ops = [Keep(*op["keep"]) if "keep" in op else op["add"] for op in change["ops"]]
            sections[key] = patch_section(base.sections[key], ops, self.vocabulary)
        return _Loaded(sections, compiled=True)

    def _read_objects(self, document_id: int) -> _Loaded:
        document = _documents(self.connection, [document_id])[document_id]
        return _Loaded({s: parse_section(s, ObjectFields(objects), self.vocabulary)
                        for s, objects in document_sections(document).items()}, compiled=False)
