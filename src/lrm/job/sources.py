"""Reading every configured IDB for a business day, with the ICON HA rules of SPEC §4.1: one
copy of a pair down is a warning (counted from the partner, recorded in the run); a whole pair
down fails the job with a message naming every IDB of the pair."""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from lrm.domain.dedup import RawSessions
from lrm.domain.errors import SourceError
from lrm.settings import IconSection
from lrm.sources.idb import open_idb_reader


@dataclass
class IdbReadResult:
    rows: RawSessions
    outcome: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def read_all_idbs(icons: list[IconSection], window_start: int, window_end: int,
                  future_after: int) -> IdbReadResult:
    """Read every IDB in parallel (the reads are I/O-bound) and apply the pair rules."""
    if not icons:
        return IdbReadResult(RawSessions.empty())

    def read(icon: IconSection) -> RawSessions | SourceError:
        try:
            return open_idb_reader(icon.name, icon.url).read(window_start, window_end,
                                                               future_after)
        except SourceError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=min(len(icons), 8),
                            thread_name_prefix="lrm-idb") as pool:
        results = list(pool.map(read, icons))

    outcome: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[tuple[IconSection, RawSessions | SourceError]]] = defaultdict(list)
    for icon, result in zip(icons, results, strict=True):
        groups[icon.ha_pair or f"(single) {icon.name}"].append((icon, result))
        if isinstance(result, SourceError):
            outcome[icon.name] = {"status": "failed", "error": str(result)}
        else:
            outcome[icon.name] = {"status": "ok", "rows": len(result)}

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
    rows = RawSessions.concat([r for r in results if isinstance(r, RawSessions)])
    return IdbReadResult(rows, outcome, warnings)
