"""Resolve login sessions against the configuration in force at each instant (SPEC §5.1).

The output is a table of **segments**: pieces of sessions, clipped to the business day, on which
every counting attribute is constant. A session is split at a configuration change only when
the change touches it (its person's media, desktop or agent groups; its DN's switch type; its
place's place groups), so a day with many configuration samples does not multiply the rows.

Per session (fixed for the whole session):
- seat = its Place; else its DN (PRIMARYDEVICEID > 0); else its person. One int64 key:
  kind << 40 | DBID with kind 1 place, 2 DN, 3 person.
- tenant = the person's tenant, else the place's, else the DN's, from the document in force at
  login (CREATED_TS), even when the session started before the business day.
- channel = voice for PROVIDERTAG 1, or for a NULL tag with a DN; multimedia for tag 2;
  otherwise unknown (counted for rules that do not ask about the channel; tallied).
Per segment (from the document in force during it):
- switch_type of the DN's switch; media and desktop of the person's `lrm` annex; agent-group
  membership of the person and place-group membership of the place.

Bad rows are never dropped silently; each row gets at most one set-aside kind, checked in this
order:
- `end_before_start`: TERMINATED_TS < CREATED_TS (set aside);
- `start_in_future`: CREATED_TS > now + tolerance (set aside);
- `unknown_tenant`: no tenant from person, place or DN at login (set aside).
And these are tallied while the session is still counted:
- `unknown_reference`: a person, place or DN DBID absent from the document in force at login
  (the tenant was still resolved through another reference);
- `unknown_channel`, `open` (active until the end of the day), `zero_length` (contributes
  nothing: the interval [t, t) is empty), `outside_day` (valid but not overlapping the day).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from lrm.domain._arrays import (
    I8,
    I32,
    I64,
    Bool,
    Idx,
    argsort_keys,
    dense_rank,
    expand_ranges,
    i64,
    sorted_positions,
    unique,
)
from lrm.domain.calendar import BusinessDay
from lrm.domain.config import ConfigHistory
from lrm.domain.items import CHANNEL_CODES, CHANNEL_UNKNOWN
from lrm.domain.sessions import TAG_MULTIMEDIA, TAG_NULL, TAG_VOICE, SessionTable
from lrm.domain.vocabulary import MISSING, Vocabulary

SET_ASIDE_KINDS = ("end_before_start", "start_in_future", "unknown_tenant")
TALLY_KINDS = ("unknown_reference", "unknown_channel", "open", "zero_length", "outside_day")
SEAT_PLACE, SEAT_DN, SEAT_PERSON = 1, 2, 3
SEAT_SHIFT = 40
DEFAULT_FUTURE_TOLERANCE_S = 300
_GROUP_MASK = (1 << 32) - 1


def seat_key(kind: int, dbid: int) -> int:
    """The int64 key of a seat (SEAT_PLACE / SEAT_DN / SEAT_PERSON and a DBID)."""
    return (kind << SEAT_SHIFT) | dbid


@dataclass(frozen=True)
class Segments:
    """Pieces of counted sessions with constant attributes; [start, end) in epoch seconds,
    inside the business day, start < end."""

    session: I64
    start: I64
    end: I64
    tenant: I64
    seat: I64
    channel: I8
    switch_type: I32
    media: I64
    desktop: I32
    person: I64
    place: I64
    doc: I64
    vocabulary: Vocabulary

    def __len__(self) -> int:
        return int(self.start.size)

    def take(self, rows: Idx | I64) -> Segments:
        """The segments at `rows` (used to expand group memberships)."""
        return Segments(session=self.session[rows], start=self.start[rows], end=self.end[rows],
                        tenant=self.tenant[rows], seat=self.seat[rows],
                        channel=self.channel[rows], switch_type=self.switch_type[rows],
                        media=self.media[rows], desktop=self.desktop[rows],
                        person=self.person[rows], place=self.place[rows], doc=self.doc[rows],
                        vocabulary=self.vocabulary)


@dataclass(frozen=True)
class GroupPairs:
    """(segment row, group DBID) for every group a segment belongs to."""

    segment: I64
    group: I64


@dataclass(frozen=True)
class Resolution:
    """Segments of the counted sessions, their group memberships, and the tallies per kind
    (`sessions`, `counted`, SET_ASIDE_KINDS and TALLY_KINDS)."""

    segments: Segments
    agent_groups: GroupPairs
    place_groups: GroupPairs
    counts: dict[str, int]


def _rows_by_doc(doc: Idx | I64, rows: Idx, n_docs: int) -> list[tuple[int, Idx]]:
    """Split `rows` by the document index `doc[rows]`: [(k, rows in document k)]."""
    if rows.size == 0:
        return []
    d = doc[rows]
    # Few documents: a stable sort of 16-bit keys is a linear-time radix sort.
    order = (np.argsort(d.astype(np.int16), kind="stable") if n_docs < (1 << 15)
             else argsort_keys(d.astype(np.int64)))
    bounds = np.searchsorted(d[order], np.arange(n_docs + 1))
    return [(k, rows[order[bounds[k]:bounds[k + 1]]])
            for k in range(n_docs) if bounds[k + 1] > bounds[k]]


class _Universe:
    """Dense positions for every DBID of one kind seen in any document or session, so that a
    document's attributes become arrays indexed by position (a gather instead of a search).
    Position `size` stands for "no such object" and always holds the default value."""

    def __init__(self, doc_ids: list[I64], query: I64) -> None:
        values, inverse = dense_rank(query)
        self.ids = unique(np.concatenate([*_distinct(doc_ids), values[values > 0]]))
        self.size = int(self.ids.size)
        pos = sorted_positions(self.ids, values)
        self.query_pos = np.where(values > 0, pos, self.size)[inverse]
        self._doc_ids = doc_ids
        self._cache: dict[tuple[int, ...], tuple[tuple[Any, ...], npt.NDArray[Any]]] = {}

    def _cached(self, key: tuple[Any, ...], make: Callable[[], npt.NDArray[Any]]
                ) -> npt.NDArray[Any]:
        """`make()`, once per distinct input arrays (by identity; they are kept alive here)."""
        ident = tuple(id(k) if isinstance(k, np.ndarray) else k for k in key)
        hit = self._cache.get(ident)
        if hit is None:
            hit = (key, make())
            self._cache[ident] = hit
        return hit[1]

    def _positions(self, k: int) -> Idx:
        ids = self._doc_ids[k]
        return self._cached((ids,), lambda: sorted_positions(self.ids, ids))

    def dense(self, k: int, values: npt.NDArray[Any], default: int) -> npt.NDArray[Any]:
        """Document k's attribute `values` (aligned with its sorted ids) by position."""
        positions = self._positions(k)

        def make() -> npt.NDArray[Any]:
            out = np.full(self.size + 1, default, dtype=values.dtype)
            out[positions] = values
            return out
        return self._cached((positions, values, default), make)

    def present(self, k: int) -> Bool:
        """By position: is the object in document k?"""
        positions = self._positions(k)

        def make() -> Bool:
            out = np.zeros(self.size + 1, dtype=np.bool_)
            out[positions] = True
            return out
        return self._cached((positions, "present"), make)

    def groups(self, keys: I64, rows_pos: I64) -> tuple[Idx, I64]:
        """(row, group DBID) of every membership (keys member << 32 | group) of the objects
        at positions `rows_pos`."""
        member_pos = sorted_positions(self.ids, keys >> 32)
        counts = np.bincount(member_pos, minlength=self.size + 1)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        row, pos = expand_ranges(offsets[rows_pos], offsets[rows_pos + 1])
        return row, keys[pos] & np.int64(_GROUP_MASK)


def _members(keys: Iterable[I64]) -> list[I64]:
    """The member DBIDs of membership keys (member << 32 | group), once per distinct array."""
    return [k >> 32 for k in _distinct(keys)]


def _distinct(arrays: Iterable[I64]) -> list[I64]:
    """The arrays without consecutive repeats. Consecutive documents differ in a few objects,
    so most of their id arrays are equal (the very same array when a section is shared, equal
    content when an edit rebuilt it): sorting them all together cost the most of resolving a
    day."""
    kept: list[I64] = []
    for array in arrays:
        if not kept or not (array is kept[-1] or (array.shape == kept[-1].shape
                                                  and np.array_equal(array, kept[-1]))):
            kept.append(array)
    return kept


def _split_points(history: ConfigHistory, day: BusinessDay, rows: Idx, s: I64, e: I64,
                  entity: dict[str, I64]) -> tuple[I64, I64]:
    """(session row, time) of every configuration change that touches a counted session strictly
    inside its clipped interval."""
    split_rows: list[I64] = []
    split_times: list[I64] = []
    sorted_by: dict[str, tuple[I64, Idx]] = {}
    for k in range(1, len(history)):
        t = int(history.times[k])
        if not day.start_ts < t < day.end_ts:
            continue
        changes = history.changes(k)
        for name, changed in (("person", changes.persons), ("dn", changes.dns),
                              ("place", changes.places)):
            if changed.size == 0:
                continue
            if name not in sorted_by:
                values = entity[name][rows]
                order = argsort_keys(np.maximum(values, 0))
                sorted_by[name] = (values[order], rows[order])
            values, owners = sorted_by[name]
            lo = np.searchsorted(values, changed, side="left")
            hi = np.searchsorted(values, changed, side="right")
            _, pos = expand_ranges(lo, hi)
            hit = owners[pos]
            hit = hit[(s[hit] < t) & (t < e[hit])]
            split_rows.append(hit.astype(np.int64))
            split_times.append(np.full(hit.size, t, dtype=np.int64))
    if not split_rows:
        return i64([]), i64([])
    r = np.concatenate(split_rows)
    t_all = np.concatenate(split_times)
    order = np.lexsort((t_all, r))
    r, t_all = r[order], t_all[order]
    first = np.ones(r.size, dtype=np.bool_)
    first[1:] = (r[1:] != r[:-1]) | (t_all[1:] != t_all[:-1])
    return r[first], t_all[first]


def resolve_sessions(sessions: SessionTable, history: ConfigHistory, day: BusinessDay,
                     now_ts: int, *,
                     future_tolerance_s: int = DEFAULT_FUTURE_TOLERANCE_S) -> Resolution:
    """Turn sessions into segments of the business day, with set-aside and tally counts."""
    n = len(sessions)
    created, terminated = sessions.created, sessions.terminated
    person, place, dn = sessions.person, sessions.place, sessions.dn
    has_person, has_place, has_dn = person > 0, place > 0, dn > 0
    is_open = terminated < 0
    indexes = history.indexes
    persons = _Universe([i.person_ids for i in indexes] + _members(i.agent_members
                                                                 for i in indexes),
                        np.where(has_person, person, 0))
    places = _Universe([i.place_ids for i in indexes] + _members(i.place_members
                                                                for i in indexes),
                       np.where(has_place, place, 0))
    dns = _Universe([i.dn_ids for i in indexes], np.where(has_dn, dn, 0))

    end_before_start = ~is_open & (terminated < created)
    future = ~end_before_start & (created > now_ts + future_tolerance_s)
    candidate = ~end_before_start & ~future

    tenant = np.full(n, -1, dtype=np.int64)
    known = np.zeros((3, n), dtype=np.bool_)  # person, place, DN found at login
    if len(history):
        login_doc = history.doc_at(created)
        for k, rows in _rows_by_doc(login_doc, np.flatnonzero(candidate), len(history)):
            idx = indexes[k]
            pp, lp, dp = persons.query_pos[rows], places.query_pos[rows], dns.query_pos[rows]
            pf, lf, df = persons.present(k)[pp], places.present(k)[lp], dns.present(k)[dp]
            pt = persons.dense(k, idx.person_tenant, -1)[pp]
            lt = places.dense(k, idx.place_tenant, -1)[lp]
            dt = dns.dense(k, idx.dn_tenant, -1)[dp]
            known[0, rows], known[1, rows], known[2, rows] = pf, lf, df
            tenant[rows] = np.where(pt > 0, pt, np.where(lt > 0, lt, np.where(dt > 0, dt, -1)))
    unknown_tenant = candidate & (tenant < 0)
    valid = candidate & (tenant >= 0)
    unknown_reference = valid & ((has_person & ~known[0]) | (has_place & ~known[1])
                                 | (has_dn & ~known[2]))

    s = np.maximum(created, day.start_ts)
    e = np.where(is_open, day.end_ts, np.minimum(terminated, day.end_ts))
    zero_length = valid & ~is_open & (terminated == created)
    in_day = valid & (s < e)
    tag = sessions.provider_tag
    channel = np.where(tag == TAG_VOICE, CHANNEL_CODES["voice"],
                       np.where(tag == TAG_MULTIMEDIA, CHANNEL_CODES["multimedia"],
                                np.where((tag == TAG_NULL) & has_dn, CHANNEL_CODES["voice"],
                                         CHANNEL_UNKNOWN))).astype(np.int8)
    seat = np.where(has_place, (SEAT_PLACE << SEAT_SHIFT) | place,
                    np.where(has_dn, (SEAT_DN << SEAT_SHIFT) | dn,
                             (SEAT_PERSON << SEAT_SHIFT) | person)).astype(np.int64)

    counts = {
        "sessions": n,
        "end_before_start": int(end_before_start.sum()),
        "start_in_future": int(future.sum()),
        "unknown_tenant": int(unknown_tenant.sum()),
        "counted": int(in_day.sum()),
        "unknown_reference": int((unknown_reference & in_day).sum()),
        "unknown_channel": int((in_day & (channel == CHANNEL_UNKNOWN)).sum()),
        "open": int((in_day & is_open).sum()),
        "zero_length": int(zero_length.sum()),
        "outside_day": int((valid & ~in_day & ~zero_length).sum()),
    }

    rows = np.flatnonzero(in_day)
    split_rows, split_times = _split_points(history, day, rows, s, e,
                                            {"person": person, "dn": dn, "place": place})
    if split_rows.size:
        pt_rows = np.concatenate([rows.astype(np.int64), split_rows])
        pt_times = np.concatenate([s[rows], split_times])
        order = argsort_keys(pt_rows * np.int64(day.seconds + 1) + (pt_times - day.start_ts))
        seg_session = pt_rows[order]
        seg_start = pt_times[order]
    else:
        seg_session = rows.astype(np.int64)
        seg_start = s[rows]
    seg_end = e[seg_session].copy()
    same_next = seg_session[1:] == seg_session[:-1]
    seg_end[:-1][same_next] = seg_start[1:][same_next]

    m = seg_session.size
    switch_type = np.full(m, MISSING, dtype=np.int32)
    media = np.zeros(m, dtype=np.int64)
    desktop = np.full(m, MISSING, dtype=np.int32)
    seg_doc = (history.doc_at(seg_start).astype(np.int64) if len(history)
               else np.zeros(m, dtype=np.int64))
    agent_seg: list[I64] = []
    agent_grp: list[I64] = []
    place_seg: list[I64] = []
    place_grp: list[I64] = []
    seg_pp = persons.query_pos[seg_session]
    seg_lp = places.query_pos[seg_session]
    seg_dp = dns.query_pos[seg_session]
    for k, srows in _rows_by_doc(seg_doc, np.arange(m), len(history)):
        idx = indexes[k]
        pp, lp = seg_pp[srows], seg_lp[srows]
        switch_type[srows] = dns.dense(k, idx.dn_switch_type, MISSING)[seg_dp[srows]]
        media[srows] = persons.dense(k, idx.person_media, 0)[pp]
        desktop[srows] = persons.dense(k, idx.person_desktop, MISSING)[pp]
        row, group = persons.groups(idx.agent_members, pp)
        agent_seg.append(srows[row].astype(np.int64))
        agent_grp.append(group)
        row, group = places.groups(idx.place_members, lp)
        place_seg.append(srows[row].astype(np.int64))
        place_grp.append(group)

    segments = Segments(session=seg_session, start=seg_start, end=seg_end,
                        tenant=tenant[seg_session], seat=seat[seg_session],
                        channel=channel[seg_session], switch_type=switch_type, media=media,
                        desktop=desktop, person=person[seg_session], place=place[seg_session],
                        doc=seg_doc, vocabulary=history.vocabulary)
    return Resolution(segments=segments,
                      agent_groups=_pairs(agent_seg, agent_grp),
                      place_groups=_pairs(place_seg, place_grp),
                      counts=counts)


def _pairs(segs: list[I64], groups: list[I64]) -> GroupPairs:
    if not segs:
        return GroupPairs(segment=i64([]), group=i64([]))
    return GroupPairs(segment=np.concatenate(segs), group=np.concatenate(groups))
