"""Reading every configured IDB for a business day, with the ICON HA rules of SPEC §4.1: one
copy of a pair down is a warning (counted from the partner, recorded in the run); a whole pair
down fails the job with a message naming every IDB of the pair."""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from lrm.domain.dedup import RawSessions
from lrm.domain.errors import SourceError
from lrm.settings import IconSection
from lrm.sources.idb import IdbRead, IdbReader, guid_hashes, open_idb_reader


@dataclass
class IdbReadResult:
    rows: RawSessions
    outcome: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def reader_of(icon: IconSection) -> IdbReader:
    return open_idb_reader(icon.name, icon.url, read_timeout_s=icon.read_timeout_s)


def read_all_idbs(icons: list[IconSection], window_start: int, window_end: int,
                  future_after: int) -> IdbReadResult:
    """Read every IDB in parallel (the reads are I/O-bound) and apply the pair rules."""
    if not icons:
        return IdbReadResult(RawSessions.empty())

    def read(icon: IconSection) -> IdbRead | SourceError:
        try:
            return reader_of(icon).read(window_start, window_end, future_after)
        except SourceError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=min(len(icons), 8),
                            thread_name_prefix="lrm-idb") as pool:
        results: list[IdbRead | SourceError] = list(pool.map(read, icons))

    outcome: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[tuple[IconSection, IdbRead | SourceError]]] = defaultdict(list)
    for icon, result in zip(icons, results, strict=True):
        groups[icon.ha_pair or f"(single) {icon.name}"].append((icon, result))
        if isinstance(result, SourceError):
            outcome[icon.name] = {"status": "failed", "error": str(result)}
        else:
            outcome[icon.name] = {"status": "ok", "rows": len(result.rows)}

    failed_pairs: list[str] = []
    warnings: list[str] = []
    for pair, members in groups.items():
        down = [icon.name for icon, result in members if isinstance(result, SourceError)]
        if down and len(down) == len(members):
            errors = "; ".join(str(result) for _, result in members)
            failed_pairs.append(f"{pair}: every IDB is unreachable ({errors})")
        elif down:
            partners = [icon.name for icon, r in members if not isinstance(r, SourceError)]
            warnings.append(f"{', '.join(down)} unreachable; sessions of {pair} counted from "
                            f"{', '.join(partners)}")
            for name in down:
                outcome[name]["status"] = "degraded"
    if failed_pairs:
        raise SourceError("; ".join(failed_pairs), source="icon")
    rows = [r.rows for r in results if isinstance(r, IdbRead)]
    for members in groups.values():
        rows += _partner_copies(members, outcome)
    return IdbReadResult(RawSessions.concat(rows), outcome, warnings)


def _partner_copies(members: list[tuple[IconSection, IdbRead | SourceError]],
                    outcome: dict[str, dict[str, Any]]) -> list[RawSessions]:
    """For every row without an end in one copy, the partner copies' rows of that session that
    the window did not bring (they ended before the day: the copy without an end missed the
    logout during an outage). Without them the session would count as open all day."""
    extra: list[RawSessions] = []
    for icon, result in members:
        if isinstance(result, SourceError):
            continue
        wanted = sorted({g for other, r in members if other is not icon
                         and isinstance(r, IdbRead) for g in r.open_guids})
        # Only the sessions this copy's window did not bring: usually none of the thousands
        # still open, so a whole day costs no lookup by GUID at all.
        wanted = [g for g, brought in zip(wanted, _contains(result.rows, *guid_hashes(wanted)),
                                          strict=True) if not brought]
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
