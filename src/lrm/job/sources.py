"""Reading every configured IDB for a business day, with the ICON HA rules of SPEC §4.1: one
copy of a pair down is a warning (counted from the partner, recorded in the run); a whole pair
down fails the job with a message naming every IDB of the pair. Each pair's copies are merged
(de-duplicated) as soon as both are read, while the other pairs are still being read."""

from __future__ import annotations

import time
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from lrm.domain.dedup import MergeResult, RawSessions, merge_copies, merge_parts
from lrm.domain.errors import SourceError
from lrm.settings import IconSection
from lrm.sources.idb import IdbRead, IdbReader, open_idb_reader


@dataclass
class IdbReadResult:
    merged: MergeResult
    outcome: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    merge_seconds: float = 0.0  # spent merging copies (in the background, pair by pair)


@dataclass
class _PairRead:
    reads: dict[str, RawSessions]  # by IDB name
    partner_copies: list[RawSessions]
    merged: MergeResult
    outcome: dict[str, dict[str, Any]]
    warnings: list[str]
    failure: str | None
    merge_seconds: float


def reader_of(icon: IconSection) -> IdbReader:
    return open_idb_reader(icon.name, icon.url, read_timeout_s=icon.read_timeout_s)


def read_all_idbs(icons: list[IconSection], window_start: int, window_end: int,
                  future_after: int) -> IdbReadResult:
    """Read every IDB in parallel (the reads are I/O-bound), apply the pair rules and merge the
    copies of each session."""
    if not icons:
        return IdbReadResult(merge_copies(RawSessions.empty()))

    def read(icon: IconSection) -> IdbRead | SourceError:
        try:
            return reader_of(icon).read(window_start, window_end, future_after)
        except SourceError as exc:
            return exc

    groups: dict[str, list[IconSection]] = defaultdict(list)
    for icon in icons:
        groups[icon.ha_pair or f"(single) {icon.name}"].append(icon)
    with ThreadPoolExecutor(max_workers=min(len(icons), 8),
                            thread_name_prefix="lrm-idb") as readers, \
            ThreadPoolExecutor(max_workers=min(len(groups), 4),
                               thread_name_prefix="lrm-idb-pair") as pairs:
        reads = {icon.name: readers.submit(read, icon) for icon in icons}
        pending = [pairs.submit(_read_pair, pair, members,
                                [reads[icon.name] for icon in members])
                   for pair, members in groups.items()]
        done = [p.result() for p in pending]

    by_name = {name: state for p in done for name, state in p.outcome.items()}
    outcome = {icon.name: by_name[icon.name] for icon in icons}  # the configuration's order
    failed = [p.failure for p in done if p.failure is not None]
    if failed:
        raise SourceError("; ".join(failed), source="icon")

    def every_row() -> RawSessions:
        # As one merge of everything took them: the IDBs in the configuration's order, then
        # the partner copies.
        reads = {name: rows for p in done for name, rows in p.reads.items()}
        return RawSessions.concat([reads[icon.name] for icon in icons if icon.name in reads]
                                  + [rows for p in done for rows in p.partner_copies])

    # (The pairs' merges ran side by side: their summed time is more than they took.)
    return IdbReadResult(merge_parts([p.merged for p in done], every_row), outcome,
                         [w for p in done for w in p.warnings],
                         sum(p.merge_seconds for p in done))


def _read_pair(pair: str, members: list[IconSection],
               reads: list[Future[IdbRead | SourceError]]) -> _PairRead:
    """The pair's reads (as they finish), its rules, the partner copies, its merged sessions."""
    paired = [(icon, read.result()) for icon, read in zip(members, reads, strict=True)]
    outcome: dict[str, dict[str, Any]] = {
        icon.name: {"status": "failed", "error": str(result)} if isinstance(result, SourceError)
        else {"status": "ok", "rows": len(result.rows)} for icon, result in paired}
    rows = {icon.name: r.rows for icon, r in paired if isinstance(r, IdbRead)}
    down = [icon.name for icon, _ in paired if icon.name not in rows]
    if not rows:
        errors = "; ".join(str(result) for _, result in paired)
        return _PairRead({}, [], merge_copies(RawSessions.empty()), outcome, [],
                         f"{pair}: every IDB is unreachable ({errors})", 0.0)
    warnings = []
    if down:
        warnings.append(f"{', '.join(down)} unreachable; sessions of {pair} counted from "
                        f"{', '.join(rows)}")
        for name in down:
            outcome[name]["status"] = "degraded"
    partner_copies = _partner_copies(paired, outcome)
    started = time.monotonic()
    merged = merge_copies(RawSessions.concat([*rows.values(), *partner_copies]))
    return _PairRead(rows, partner_copies, merged, outcome, warnings, None,
                     time.monotonic() - started)


def _partner_copies(members: list[tuple[IconSection, IdbRead | SourceError]],
                    outcome: dict[str, dict[str, Any]]) -> list[RawSessions]:
    """For every row without an end in one copy, the partner copies' rows of that session that
    the window did not bring (they ended before the day: the copy without an end missed the
    logout during an outage). Without them the session would count as open all day."""
    extra: list[RawSessions] = []
    for icon, result in members:
        if isinstance(result, SourceError):
            continue
        others = [r for other, r in members if other is not icon and isinstance(r, IdbRead)]
        guids = [g for r in others for g in r.open_guids]
        if not guids:
            continue
        hi = np.concatenate([r.open_keys[0] for r in others])
        lo = np.concatenate([r.open_keys[1] for r in others])
        # Only the sessions this copy's window did not bring: usually none of the thousands
        # still open, so a whole day costs no lookup by GUID at all.
        missing = np.flatnonzero(~_contains(result.rows, hi, lo))
        wanted = sorted({guids[i] for i in missing.tolist()})
        if not wanted:
            continue
        try:
            found = reader_of(icon).read_guids(wanted)
        except SourceError as exc:
            outcome[icon.name] = {"status": "degraded", "error": str(exc)}
            continue
        if len(found):
            extra.append(found)
            outcome[icon.name]["ends_fetched_by_guid"] = len(found)
    return extra


def _contains(rows: RawSessions, hi: npt.NDArray[np.int64],
              lo: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Which (hi, lo) GUID keys some row of `rows` has."""
    if not len(rows) or not hi.size:
        return np.zeros(hi.size, dtype=np.bool_)
    order = np.argsort(rows.guid_hi)
    row_hi, row_lo = rows.guid_hi[order], rows.guid_lo[order]
    first = np.searchsorted(row_hi, hi, side="left")
    last = np.searchsorted(row_hi, hi, side="right")
    found: npt.NDArray[np.bool_] = (last == first + 1) & (
        row_lo[np.minimum(first, row_lo.size - 1)] == lo)
    # Keys are 128-bit: where several rows share a high half, compare the low halves.
    for k in np.flatnonzero(last > first + 1).tolist():
        found[k] = bool(np.any(row_lo[first[k]:last[k]] == lo[k]))
    return found
