"""What report rows are made of besides the values (SPEC §7): subjects, limits (provisioned
counts by effective date, entitlement files by day), the reference data a report reads, the
column order and the missing dates. Pure. The rows themselves are built by
`lrm.domain.report_table`.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property

import numpy as np

from lrm.domain._arrays import I64, lookup

EPOCH = date(1970, 1, 1)
_EPOCH_ORDINAL = EPOCH.toordinal()
NO_LIMIT = -1  # quantities are never negative
# Inside packed (pair, day) keys a day is counted from date.min (0001-01-01): every date Python
# knows, up to 9999-12-31, fits in the low 22 bits.
_DAY_BITS = 22
_DAY_BIAS = _EPOCH_ORDINAL - date.min.toordinal()


def day_number(d: date) -> int:
    """Days since 1970-01-01 (the store reads dates this way)."""
    return d.toordinal() - _EPOCH_ORDINAL


def day_of(number: int) -> date:
    """The date `number` days after 1970-01-01."""
    return date.fromordinal(number + _EPOCH_ORDINAL)


@dataclass(frozen=True)
class LimitHistory:
    """Limits of one (subject, item) by effective date, oldest first."""

    effective_dates: Sequence[date]
    quantities: Sequence[int]

    def in_force(self, day: date) -> tuple[int, date] | None:
        index = bisect.bisect_right(self.effective_dates, day) - 1
        if index < 0:
            return None
        return self.quantities[index], self.effective_dates[index]


@dataclass(frozen=True)
class DailyLimits:
    """Limits that can start and stop on any day (entitlement files): day → (quantity,
    effective date)."""

    by_day: dict[date, tuple[int, date]]

    def in_force(self, day: date) -> tuple[int, date] | None:
        return self.by_day.get(day)


Limits = LimitHistory | DailyLimits


@dataclass(frozen=True)
class LimitTable:
    """Limits of (subject, item) pairs by day as sorted arrays, for looking up thousands of
    rows at once: from `from_day[k]` on, the pair `pair[k]` has `quantity[k]` (`NO_LIMIT`:
    none) effective since `effective_day[k]` (days are `day_number`s)."""

    pair: I64  # (subject << 32) | item, sorted, then by from_day
    from_day: I64
    quantity: I64
    effective_day: I64

    @classmethod
    def of(cls, limits: Mapping[tuple[int, int], Limits]) -> LimitTable:
        entries: list[tuple[int, int, int, int]] = []
        for (subject, item), history in limits.items():
            pair = (subject << 32) | item
            if isinstance(history, LimitHistory):
                entries += [(pair, day_number(d), q, day_number(d)) for d, q in
                            zip(history.effective_dates, history.quantities, strict=True)]
            else:
                # A limit per day: each day is an entry, and a day without one ends it.
                for d, (quantity, effective) in history.by_day.items():
                    entries.append((pair, day_number(d), quantity, day_number(effective)))
                    if d + timedelta(days=1) not in history.by_day:
                        entries.append((pair, day_number(d) + 1, NO_LIMIT, NO_LIMIT))
        entries.sort()
        columns = np.array(entries, dtype=np.int64).reshape(-1, 4)
        return cls(*(columns[:, k].copy() for k in range(4)))

    @cached_property
    def _keys(self) -> tuple[I64, I64]:
        """The distinct pairs, and every entry as a packed (pair's rank, day) key."""
        pairs, rank = np.unique(self.pair, return_inverse=True)
        return pairs, (rank.reshape(-1).astype(np.int64) << _DAY_BITS) | (
            self.from_day + _DAY_BIAS)

    def in_force(self, subject: I64, item: I64, day: I64) -> tuple[I64, I64]:
        """(quantity, effective day) in force for each (subject, item, day); `NO_LIMIT` in both
        where there is none."""
        if self.pair.size == 0 or day.size == 0:
            return (np.full(day.size, NO_LIMIT, dtype=np.int64),
                    np.full(day.size, NO_LIMIT, dtype=np.int64))
        pairs, keys = self._keys
        has_pair, rank = lookup(pairs, (subject << 32) | item)
        at = np.searchsorted(keys, (rank << _DAY_BITS) | (day + _DAY_BIAS), side="right") - 1
        found = has_pair & (at >= 0) & ((keys[np.maximum(at, 0)] >> _DAY_BITS) == rank)
        at = np.where(found, at, 0)
        quantity = np.where(found, self.quantity[at], NO_LIMIT)
        return quantity, np.where(quantity != NO_LIMIT, self.effective_day[at], NO_LIMIT)


@dataclass(frozen=True)
class Subject:
    """What a row is about: a tenant, a group (with its tenant), or the system (id 0)."""

    id: int
    name: str
    tenant_id: int | None = None
    tenant_name: str | None = None


@dataclass(frozen=True)
class EntitlementFile:
    """An uploaded entitlement file: item quantities valid from `valid_from` to `valid_to`."""

    id: int
    issue_date: date
    valid_from: date
    valid_to: date
    quantities: dict[int, int]  # item id → quantity


def entitlement_limits(files: Sequence[EntitlementFile], start: date,
                       end: date) -> dict[tuple[int, int], Limits]:
    """System limits (subject 0) for [start, end]: for each day the active file (its validity
    contains the day, the newest issue wins) gives each item's quantity, effective from the
    file's valid_from."""
    relevant = [f for f in files if f.valid_from <= end and f.valid_to >= start]
    per_item: dict[int, dict[date, tuple[int, date]]] = {}
    for offset in range((end - start).days + 1 if relevant else 0):
        day = start + timedelta(days=offset)
        active = [f for f in relevant if f.valid_from <= day <= f.valid_to]
        if not active:
            continue
        chosen = max(active, key=lambda f: (f.issue_date, f.id))
        for item_id, quantity in chosen.quantities.items():
            per_item.setdefault(item_id, {})[day] = (quantity, chosen.valid_from)
    return {(0, item): DailyLimits(days) for item, days in per_item.items()}


@dataclass(frozen=True)
class ReportReference:
    """Everything a report reads besides its values: names, limits and which dates have a
    succeeded run. Small tables, read together, so that the API can keep one per data version
    and a report costs a single query."""

    item_names: dict[int, str]
    tenants: dict[int, Subject]
    groups: dict[str, dict[int, Subject]]  # level (agent_group, place_group) → id → group
    provisioned: dict[tuple[int, int], Limits]  # (tenant, item) → every effective date
    entitlements: Sequence[EntitlementFile]
    succeeded_dates: frozenset[date]

    @cached_property
    def provisioned_table(self) -> LimitTable:
        """`provisioned` as arrays (built once per reference, used by every tenant report)."""
        return LimitTable.of(self.provisioned)

    @cached_property
    def last_complete_date(self) -> date | None:
        return max(self.succeeded_dates, default=None)


ReportRow = dict[str, object]


def columns_for(level: str) -> list[str]:
    """The column order of rows at `level` (CSV header, table header)."""
    subject = {"system": [], "tenant": ["tenant_id", "tenant_name"]}.get(
        level, ["group_id", "group_name", "tenant_id", "tenant_name"])
    return [*subject, "item_id", "item_name", "period_start", "weekday", "peak_time",
            "peak_value", "limit", "limit_effective_date", "over_limit"]


def missing_dates(start: date, end: date, complete: AbstractSet[date]) -> list[date]:
    """Dates in [start, end] without a succeeded job run."""
    missing = []
    day, one = start, timedelta(days=1)
    for _ in range((end - start).days + 1):
        if day not in complete:
            missing.append(day)
        if day < end:  # never past `end`: date.max has no next day
            day += one
    return missing
