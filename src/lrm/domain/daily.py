"""Daily values, weekly/monthly aggregation, enabled agents and GVP daily values (SPEC §5.3).

Choices where the specification is silent (each is tested):
- Ties: the **latest** minute at the maximum is the peak time, everywhere (days, periods,
  enabled agents, GVP bins).
- A day whose non-excluded minutes are all zero has value 0 and, by the same latest-tie rule,
  the latest non-excluded minute as its peak time (a report shows 0 at e.g. 23:59).
- A day whose minutes are all excluded has value 0 and peak minute -1 (no peak time).
- Enabled agents are a configured count, not a concurrency: excluded time does not apply; the
  daily value is the maximum over the documents in force during the day, and the peak minute
  is the minute from which the latest document with that count was in force (the day's first
  minute for a document taken before the day).
- GVP: bins whose start lies in [day start, day end); no bin at all gives 0 with minute -1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lrm.domain._arrays import I32, I64, Bool, i64, lookup
from lrm.domain.calendar import BusinessDay
from lrm.domain.config import ConfigHistory, ConfigIndex

NO_MINUTE = -1


_ROWS_PER_CHUNK = 4096


def daily_peak(minute_peaks: npt.NDArray[np.integer], excluded: Bool) -> tuple[I32, I32]:
    """(value, minute) of each row of `minute_peaks` (shape (..., minutes)): the maximum over
    the minutes not excluded, at the latest minute reaching it. Vectorised over leading axes
    (in chunks of rows, so memory stays small)."""
    rows = np.asarray(minute_peaks)
    minutes = rows.shape[-1]
    if excluded.shape != (minutes,):
        raise ValueError(f"excluded mask has shape {excluded.shape}, expected ({minutes},)")
    shape = rows.shape[:-1]
    if minutes == 0 or excluded.all():
        return np.zeros(shape, dtype=np.int32), np.full(shape, NO_MINUTE, dtype=np.int32)
    flat = rows.reshape(-1, minutes)
    value = np.empty(flat.shape[0], dtype=np.int32)
    minute = np.empty(flat.shape[0], dtype=np.int32)
    keep = ~excluded
    for lo in range(0, flat.shape[0], _ROWS_PER_CHUNK):
        chunk = flat[lo:lo + _ROWS_PER_CHUNK].astype(np.int32, copy=False)
        if excluded.any():
            chunk = np.where(keep, chunk, np.int32(-1))
        best = chunk.max(axis=1)
        at_best = chunk == best[:, None]
        minute[lo:lo + chunk.shape[0]] = minutes - 1 - np.argmax(at_best[:, ::-1], axis=1)
        value[lo:lo + chunk.shape[0]] = best
    return value.reshape(shape), minute.reshape(shape)


@dataclass(frozen=True)
class EnabledDaily:
    """Daily enabled-agent values of one level: per subject, the value and its minute."""

    subject_ids: I64
    value: I32
    minute: I32


def _counts_per_doc(index: ConfigIndex, level: str, subject_ids: I64) -> I64:
    n = subject_ids.size
    if level in ("tenant", "system"):
        owners = index.person_tenant[index.person_enabled]
        found, pos = lookup(subject_ids, owners)
        per_tenant = np.bincount(pos[found], minlength=n).astype(np.int64)
        return i64([per_tenant.sum()]) if level == "system" else per_tenant
    keys = index.agent_members if level == "agent_group" else index.place_members
    ids = index.person_ids if level == "agent_group" else index.place_ids
    enabled = index.person_enabled if level == "agent_group" else index.place_enabled
    member = keys >> 32
    group = keys & np.int64((1 << 32) - 1)
    mfound, mpos = lookup(ids, member)
    on = mfound & enabled[mpos] if ids.size else mfound
    gfound, gpos = lookup(subject_ids, group[on])
    return np.bincount(gpos[gfound], minlength=n).astype(np.int64)


def enabled_agents_daily(day: BusinessDay, history: ConfigHistory, level: str,
                         subject_ids: I64) -> EnabledDaily:
    """Item 100 for one level ("tenant", "system", "agent_group", "place_group"):
    the maximum over the day's documents of enabled agents (`isAgent` 2 and `state` 1) per
    tenant, per agent group (enabled members), per place group (member places with `state` 1),
    and for the system (all tenants together, `subject_ids` being the tenant ids)."""
    docs = history.in_force(day.start_ts, day.end_ts)
    n = 1 if level == "system" else subject_ids.size
    out_ids = i64([0]) if level == "system" else subject_ids
    if len(docs) == 0:
        return EnabledDaily(out_ids, np.zeros(n, np.int32), np.full(n, NO_MINUTE, np.int32))
    best = np.full(n, -1, dtype=np.int64)
    minute = np.full(n, NO_MINUTE, dtype=np.int32)
    for k in docs:
        counts = _counts_per_doc(history.indexes[k], level, subject_ids)
        since = max(int(history.times[k]), day.start_ts)
        better = counts >= best  # later documents win ties
        best = np.where(better, counts, best)
        minute = np.where(better, (since - day.start_ts) // 60, minute).astype(np.int32)
    return EnabledDaily(out_ids, best.astype(np.int32), minute)


def gvp_daily(day: BusinessDay, bin_starts: npt.ArrayLike,
              counts: npt.ArrayLike) -> tuple[int, int]:
    """(value, minute) of a GVP item: the maximum count over the five-minute bins that start
    inside the business day; the minute is that bin's start (latest on ties); (0, -1) when no
    bin falls inside the day."""
    ts = i64(bin_starts)
    cnt = i64(counts)
    inside = (ts >= day.start_ts) & (ts < day.end_ts)
    if not inside.any():
        return 0, NO_MINUTE
    ts, cnt = ts[inside], cnt[inside]
    order = np.lexsort((ts, cnt))  # by count, then time: the last is the latest maximum
    best = int(order[-1])
    return int(cnt[best]), int((ts[best] - day.start_ts) // 60)
