"""ICON HA de-duplication: every LOGINSESSIONID counts once, whatever the number of IDB copies.

Rows arrive as columnar arrays (one row per copy, from every IDB). GUIDs are carried as the two
halves of their MD5 (computed by the IDB reader, in SQL or in Python): fixed-width integers sort
and compare far faster than strings, and a 128-bit collision among a day's sessions is
not a practical concern.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields

import numpy as np
import numpy.typing as npt

Int64Array = npt.NDArray[np.int64]
NULL = -1  # stands for SQL NULL in every integer column


@dataclass(frozen=True)
class RawSessions:
    """G_LOGIN_SESSION rows as read from one or more IDBs (NULL → -1)."""

    guid_hi: Int64Array
    guid_lo: Int64Array
    agent: Int64Array
    login: Int64Array
    place: Int64Array
    dn: Int64Array
    created: Int64Array
    terminated: Int64Array
    provider_tag: Int64Array

    def __post_init__(self) -> None:
        lengths = {len(getattr(self, f.name)) for f in fields(self)}
        if len(lengths) > 1:
            raise ValueError(f"RawSessions columns differ in length: {sorted(lengths)}")

    def __len__(self) -> int:
        return len(self.created)

    @classmethod
    def empty(cls) -> RawSessions:
        return cls(**{f.name: np.empty(0, dtype=np.int64) for f in fields(cls)})

    @classmethod
    def concat(cls, parts: list[RawSessions]) -> RawSessions:
        if not parts:
            return cls.empty()
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts])
                      for f in fields(cls)})

    def take(self, index: npt.NDArray[np.intp] | npt.NDArray[np.bool_]) -> RawSessions:
        return RawSessions(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


@dataclass(frozen=True)
class MergeResult:
    sessions: RawSessions
    rows_read: int
    duplicates_removed: int
    ends_from_partner: int
    conflicting_sessions: int
    # One row per session set aside for conflicting copies (for merging parts: `merge_parts`).
    conflicting: RawSessions = field(default_factory=RawSessions.empty)


def _group_by_guid(hi: Int64Array, lo: Int64Array) -> tuple[npt.NDArray[np.intp],
                                                             npt.NDArray[np.intp]]:
    """An order that puts the rows of each GUID together, and where each group starts.
    One sort on the high halves (no stable multi-key sort: nothing below depends on the order
    inside a group); a high half shared by different GUIDs, which would interleave their rows,
    is caught and sorted on both halves."""
    order = np.argsort(hi)
    h, low = hi[order], lo[order]
    new_hi = np.r_[True, h[1:] != h[:-1]]
    new_guid = new_hi | np.r_[False, low[1:] != low[:-1]]
    if np.count_nonzero(new_guid) != np.count_nonzero(new_hi):
        order = np.lexsort((lo, hi))
        h, low = hi[order], lo[order]
        new_guid = np.r_[True, (h[1:] != h[:-1]) | (low[1:] != low[:-1])]
    return order, np.flatnonzero(new_guid)


def merge_copies(rows: RawSessions) -> MergeResult:
    """Collapse copies of the same session into one row.

    - The start is the earliest start among the copies; the end is the latest end among the copies
      that have one, so a copy that missed the logout during an outage takes it from its partner.
    - Other columns come from the most complete copy (one with an end, if any).
    - Copies that disagree on the agent are not guessed at: the session is set aside and counted
      in `conflicting_sessions`.
    """
    n = len(rows)
    if n == 0:
        return MergeResult(rows, 0, 0, 0, 0)
    has_end = rows.terminated != NULL
    order, starts = _group_by_guid(rows.guid_hi, rows.guid_lo)
    # The representative is the first copy (in input order) with an end, else the first copy:
    # the smallest of `row` for copies with an end and `n + row` for the others.
    rank = np.where(has_end[order], order, order + n)
    first = np.minimum.reduceat(rank, starts)
    representative = np.where(first < n, first, first - n)

    created = np.minimum.reduceat(rows.created[order], starts)
    terminated = np.maximum.reduceat(rows.terminated[order], starts)
    agents = rows.agent[order]
    conflict = np.maximum.reduceat(agents, starts) != np.minimum.reduceat(agents, starts)

    group_sizes = np.diff(np.r_[starts, n])
    ends_in_group = np.add.reduceat(has_end[order].astype(np.int64), starts)
    # (A session set aside for conflicting copies took nothing from anyone.)
    ends_from_partner = int(np.count_nonzero((group_sizes > ends_in_group) & (ends_in_group > 0)
                                             & ~conflict))

    merged = rows.take(representative)
    merged = RawSessions(
        guid_hi=merged.guid_hi, guid_lo=merged.guid_lo, agent=merged.agent, login=merged.login,
        place=merged.place, dn=merged.dn, created=created, terminated=terminated,
        provider_tag=merged.provider_tag,
    )
    return MergeResult(
        sessions=merged.take(~conflict),
        rows_read=n,
        duplicates_removed=n - len(starts),
        ends_from_partner=ends_from_partner,
        conflicting_sessions=int(np.count_nonzero(conflict)),
        conflicting=merged.take(conflict),
    )


def merge_parts(parts: list[MergeResult], every_row: Callable[[], RawSessions]) -> MergeResult:
    """One result from parts merged apart (each ICON HA pair's copies as soon as the pair is
    read). Different pairs hold different sessions, so this is `merge_copies(every_row())`;
    when a GUID does turn up in two parts (a misconfigured pair), that is what is computed.
    `every_row` gives all the rows in the order a single merge would have taken them."""
    if len(parts) == 1:
        return parts[0]
    # Only the GUID columns are joined for the check: a copy of the whole table is 64 MB a
    # million sessions, most of it memory this process has not touched yet.
    every = [part for r in parts for part in (r.sessions, r.conflicting)]
    if _has_repeated_guid(np.concatenate([p.guid_hi for p in every]),
                          np.concatenate([p.guid_lo for p in every])):
        return merge_copies(every_row())
    return MergeResult(
        sessions=RawSessions.concat([r.sessions for r in parts]),
        rows_read=sum(r.rows_read for r in parts),
        duplicates_removed=sum(r.duplicates_removed for r in parts),
        ends_from_partner=sum(r.ends_from_partner for r in parts),
        conflicting_sessions=sum(r.conflicting_sessions for r in parts),
        conflicting=RawSessions.concat([r.conflicting for r in parts]),
    )


def _has_repeated_guid(hi: Int64Array, lo: Int64Array) -> bool:
    if hi.size < 2:
        return False
    ordered = np.sort(hi)
    if not np.any(ordered[1:] == ordered[:-1]):
        return False  # the usual answer, from the high halves alone
    _, starts = _group_by_guid(hi, lo)
    return bool(starts.size < hi.size)
