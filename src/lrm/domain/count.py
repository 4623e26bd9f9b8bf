"""The pure entry point of the nightly count: one business day, every level, every item.

`count_day` takes the day's sessions, the configuration samples, the catalogue, the active
bundle set and the excluded-time windows, and returns compact arrays per level:

| level         | subjects                      | items                          |
|---------------|-------------------------------|--------------------------------|
| `tenant`      | tenant DBIDs                  | seat items, then bundles       |
| `system`      | [0]                           | seat items, then bundles       |
| `agent_group` | agent-group DBIDs             | seat items                     |
| `place_group` | place-group DBIDs             | seat items                     |

Subjects are every tenant / group present in a document in force during the day, plus every
tenant of a counted session, so a quiet tenant gets rows of zeros rather than no rows.
The system level counts distinct seats over all tenants together at each instant (the peak
of the sum; a seat used by two tenants at once is still one seat). Bundles are not computed for
groups (research lrm-domain.md §2.5: not supported for group reports).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from lrm.domain._arrays import I32, I64, Bool, dense_rank, i64, sorted_positions, unique
from lrm.domain.bundles import Bundle, BundleSet
from lrm.domain.calendar import BusinessDay, excluded_minute_mask
from lrm.domain.config import ConfigHistory, build_config_history
from lrm.domain.daily import NO_MINUTE, EnabledDaily, daily_peak, enabled_agents_daily
from lrm.domain.items import Catalogue
from lrm.domain.peaks import Predicate, dense_level_minute_peaks, minute_peaks
from lrm.domain.resolve import (
    DEFAULT_FUTURE_TOLERANCE_S,
    GroupPairs,
    Resolution,
    Segments,
    resolve_sessions,
)
from lrm.domain.seats import Transitions, dense_seat_transitions, seat_owners
from lrm.domain.sessions import SessionTable
from lrm.domain.vocabulary import Vocabulary

LEVELS = ("tenant", "system", "agent_group", "place_group")
# The order the levels are counted in: the group levels have the most per-minute rows (a series
# per group and seat item), so they are counted first and their rows can be written while the
# other levels are counted; the system level, with the fewest, is last.
_COUNT_ORDER = ("agent_group", "place_group", "tenant", "system")
_ROWS_PER_BATCH = 300_000
Progress = Callable[[str], None]


@dataclass(frozen=True)
class LevelPart:
    """Results of a level's subjects `subject_ids`: `minute_peaks[s, i, m]` is subject s, item
    i, minute m; `daily_value[s, i]` / `daily_minute[s, i]` the daily value and its minute (-1:
    none). A level's subjects are counted in batches, and each batch's part is handed out as
    soon as it is counted, so that a caller can store it while the next is counted."""

    level: str
    subject_ids: I64
    item_ids: I64
    minute_peaks: npt.NDArray[np.int32]
    daily_value: I32
    daily_minute: I32


@dataclass(frozen=True)
class LevelResult(LevelPart):
    """Results of one whole level (every subject), with its enabled agents."""

    enabled: EnabledDaily


PartSink = Callable[[LevelPart], None]


@dataclass(frozen=True)
class DayResult:
    """Everything counted for one business day.

    `levels` maps "tenant", "system", "agent_group", "place_group" to their results;
    `excluded` flags the excluded minutes; `counts` holds the session tallies of
    `resolve.resolve_sessions` (sessions, counted, the set-aside kinds end_before_start /
    start_in_future / unknown_tenant, and unknown_reference, unknown_channel, open,
    zero_length, outside_day) plus config_objects_skipped; `bundle_set_id` is the set used."""

    day: BusinessDay
    excluded: Bool
    levels: dict[str, LevelResult]
    counts: dict[str, int]
    bundle_set_id: int | None

    def peak_ts(self, minute: int) -> int | None:
        """UTC epoch seconds of a peak minute (None for -1, "no peak")."""
        return None if minute < 0 else self.day.minute_ts(minute)


def item_masks(segments: Segments, catalogue: Catalogue) -> I64:
    """Per segment, bit i set when the segment satisfies seat item i's rule (i = position in
    `catalogue.seat_items`)."""
    masks = np.zeros(len(segments), dtype=np.int64)
    for bit, item in enumerate(catalogue.seat_items):
        assert item.rule is not None
        masks |= item.rule.mask(segments).astype(np.int64) << np.int64(bit)
    return masks


def predicates_for(catalogue: Catalogue, bundles: Sequence[Bundle]) -> list[Predicate]:
    """(include bits, exclude bits) for every seat item, then every bundle."""
    bit_of = {item.id: 1 << bit for bit, item in enumerate(catalogue.seat_items)}
    predicates: list[Predicate] = [(bit, 0) for bit in bit_of.values()]
    for bundle in bundles:
        missing = [i for i in (*bundle.include, *bundle.exclude) if i not in bit_of]
        if missing:
            raise ValueError(f"bundle {bundle.id} uses items that are not seat items of this "
                             f"catalogue: {missing}")
        include = sum(bit_of[i] for i in set(bundle.include))
        exclude = sum(bit_of[i] for i in set(bundle.exclude))
        predicates.append((include, exclude))
    return predicates


def level_items(catalogue: Catalogue, bundles: Sequence[Bundle]) -> dict[str, I64]:
    """The items each level has values of: seat items, and bundles for the tenant and system
    levels (not for groups: research lrm-domain.md §2.5)."""
    seat_items = i64([item.id for item in catalogue.seat_items])
    all_items = np.concatenate([seat_items, i64([b.id for b in bundles])])
    return {"tenant": all_items, "system": all_items, "agent_group": seat_items,
            "place_group": seat_items}


def _subjects(history: ConfigHistory, day: BusinessDay, attr: str, extra: I64) -> I64:
    return unique(np.concatenate([history.ids_in_force(attr, day.start_ts, day.end_ts), extra]))


@dataclass(frozen=True)
class _Rows:
    """The segment columns every level needs, computed once: times from the day start, dense
    seat indices, item masks as codes into a table of distinct masks."""

    start: I64
    end: I64
    seat_index: I64
    n_seats: int
    mask_code: I64
    mask_values: I64

    @classmethod
    def of(cls, day: BusinessDay, segments: Segments, masks: I64) -> _Rows:
        seat_ids, seat_index = dense_rank(segments.seat)
        mask_values, mask_code = dense_rank(masks)
        return cls(segments.start - day.start_ts, segments.end - day.start_ts, seat_index,
                   int(seat_ids.size), mask_code, mask_values)


def _level(level: str, day: BusinessDay, excluded: Bool, subject_ids: I64, subject: I64,
           data: _Rows, rows: I64 | None, item_ids: I64,
           predicates: Sequence[Predicate], enabled: Callable[[], EnabledDaily],
           report: PartSink) -> LevelResult:
    n_subjects = int(subject_ids.size)
    peaks = np.zeros((n_subjects, len(predicates), day.minutes), dtype=np.int32)
    value = np.zeros((n_subjects, len(predicates)), dtype=np.int32)
    minute = np.full((n_subjects, len(predicates)), NO_MINUTE, dtype=np.int32)
    if rows is None:
        rows = np.arange(subject.size, dtype=np.int64)
    # Subjects are independent: count them in batches of about _ROWS_PER_BATCH rows, so that
    # the temporary arrays stay small whatever the number of tenants or groups, and each
    # batch's results can be stored while the next is counted.
    per_subject = np.bincount(subject, minlength=n_subjects)
    first_row = np.concatenate([[0], np.cumsum(per_subject)])
    cuts = np.unique(np.searchsorted(first_row, np.arange(0, int(first_row[-1]),
                                                          _ROWS_PER_BATCH), side="right") - 1)
    bounds = [*(int(c) for c in cuts if 0 < c < n_subjects), n_subjects]
    # numpy's stable sort of 16-bit keys is a radix sort: seven times faster here.
    order = (np.argsort(subject.astype(np.uint16) if n_subjects <= 1 << 16 else subject,
                        kind="stable") if len(bounds) > 1 else None)
    lo = 0
    for hi in bounds:
        if order is None:
            batch = rows
            local = subject
        else:
            picked = order[int(first_row[lo]):int(first_row[hi])]
            batch = rows[picked]
            local = subject[picked] - lo
        if batch.size:
            peaks[lo:hi] = dense_level_minute_peaks(
                local, data.seat_index[batch], data.n_seats, data.start[batch],
                data.end[batch], data.mask_code[batch], data.mask_values, hi - lo, predicates,
                horizon=day.seconds)
        if hi > lo:
            value[lo:hi], minute[lo:hi] = daily_peak(peaks[lo:hi], excluded)
            report(LevelPart(level, subject_ids[lo:hi], item_ids, peaks[lo:hi], value[lo:hi],
                             minute[lo:hi]))
        lo = hi
    # The enabled agents last: the first batch's part is out sooner.
    return LevelResult(level=level, subject_ids=subject_ids, item_ids=item_ids,
                       minute_peaks=peaks, daily_value=value, daily_minute=minute,
                       enabled=enabled())


def _result(level: str, excluded: Bool, subject_ids: I64, item_ids: I64,
            peaks: npt.NDArray[np.int32], enabled: Callable[[], EnabledDaily],
            report: PartSink) -> LevelResult:
    value, minute = daily_peak(peaks, excluded)
    if subject_ids.size:  # as `_level`: a part has subjects
        report(LevelPart(level, subject_ids, item_ids, peaks, value, minute))
    return LevelResult(level=level, subject_ids=subject_ids, item_ids=item_ids,
                       minute_peaks=peaks, daily_value=value, daily_minute=minute,
                       enabled=enabled())


class _SharedSeatTransitions:
    """The seat transitions of every segment, by tenant, for the tenant and the system level.

    When every seat belongs to one tenant all day (a place, DN or person is one tenant's), a
    seat's mask changes are the same at both levels; only the subject differs. The sweep of
    the 2n start/end events is then done once, by whichever level asks first, and the other
    waits for it. Otherwise (`usable` is False) each level sweeps its own (subject, seat)
    pairs, so that a seat shared by two tenants still counts once for the system."""

    def __init__(self, day: BusinessDay, data: _Rows, tenant: I64) -> None:
        self.usable = seat_owners(tenant, data.seat_index, data.n_seats) is not None
        self._day, self._data, self._tenant = day, data, tenant
        self._lock = threading.Lock()
        self._transitions: Transitions | None = None

    def get(self) -> Transitions:
        with self._lock:
            if self._transitions is None:
                data = self._data
                self._transitions = dense_seat_transitions(
                    self._tenant, data.seat_index, data.n_seats, data.start, data.end,
                    data.mask_code, data.mask_values, horizon=self._day.seconds)
            return self._transitions

    def peaks(self, level: str, n_subjects: int,
              predicates: Sequence[Predicate]) -> npt.NDArray[np.int32]:
        transitions = self.get()
        if level == "system":
            transitions = replace(transitions, subject=np.zeros(len(transitions), np.int64))
        return minute_peaks(transitions, n_subjects, predicates, horizon=self._day.seconds)


def _group_level(level: str, day: BusinessDay, excluded: Bool, history: ConfigHistory,
                 pairs: GroupPairs, data: _Rows, item_ids: I64,
                 predicates: Sequence[Predicate], report: PartSink) -> LevelResult:
    attr = "agent_group_ids" if level == "agent_group" else "place_group_ids"
    subject_ids = _subjects(history, day, attr, pairs.group)
    subject = sorted_positions(subject_ids, pairs.group).astype(np.int64)
    return _level(level, day, excluded, subject_ids, subject, data, pairs.segment, item_ids,
                  predicates, partial(enabled_agents_daily, day, history, level, subject_ids),
                  report)


def count_day(day: BusinessDay, sessions: SessionTable,
              config_samples: Iterable[tuple[int, Mapping[str, Any]]] | ConfigHistory,
              catalogue: Catalogue,
              bundle_set: BundleSet | None, excluded_windows: Sequence[str], now_ts: int, *,
              future_tolerance_s: int = DEFAULT_FUTURE_TOLERANCE_S,
              levels: Sequence[str] = LEVELS, progress: Progress | None = None,
              workers: int = 2,
              on_level: Callable[[LevelResult], None] | None = None,
              on_part: PartSink | None = None) -> DayResult:
    """Count one business day. `config_samples` are (taken_at epoch seconds, document) pairs
    covering the day (including the one in force at its start and at the earliest login of a
    session still active in it), or their history already built with the catalogue's
    vocabulary; `now_ts` is the time of the run (for `start_in_future`).
    `progress` is called with the name of each finished stage; `workers` threads compute the
    levels (1: sequentially, in the calling thread). So that a caller can store results while
    the rest is counted, `on_part` is called with each level's results as they are counted (a
    level's subjects in one or more parts, in order, which together cover them), and
    `on_level` with each level's whole result after its last part; both in the calling
    thread, in the order things finish (the group levels are started first)."""
    unknown = sorted(set(levels) - set(LEVELS))
    if unknown:
        raise ValueError(f"unknown levels {unknown}")

    def stage(name: str) -> None:
        if progress is not None:
            progress(name)

    excluded = excluded_minute_mask(day, list(excluded_windows))
    vocabulary = Vocabulary(catalogue.media_names())
    if isinstance(config_samples, ConfigHistory):
        history = config_samples
        if history.vocabulary.media != vocabulary.media:
            raise ValueError("the configuration history was built for another catalogue")
    else:
        history = build_config_history(config_samples, vocabulary)
    stage("config")
    resolution: Resolution = resolve_sessions(sessions, history, day, now_ts,
                                              future_tolerance_s=future_tolerance_s)
    segments = resolution.segments
    stage("resolve")
    masks = item_masks(segments, catalogue)
    bundles = bundle_set.bundles if bundle_set is not None else ()
    predicates = predicates_for(catalogue, bundles)
    items = level_items(catalogue, bundles)
    all_items, seat_items = items["tenant"], items["agent_group"]
    data = _Rows.of(day, segments, masks)
    stage("items")

    tenant_ids = _subjects(history, day, "tenant_ids", segments.tenant)
    tenant = sorted_positions(tenant_ids, segments.tenant).astype(np.int64)
    shared = _SharedSeatTransitions(day, data, tenant)
    seat_predicates = predicates[: seat_items.size]

    def tenant_or_system(level: str, report: PartSink) -> LevelResult:
        subject_ids = tenant_ids if level == "tenant" else i64([0])
        enabled = partial(enabled_agents_daily, day, history, level, tenant_ids)
        if shared.usable:
            peaks = shared.peaks(level, int(subject_ids.size), predicates)
            return _result(level, excluded, subject_ids, all_items, peaks, enabled, report)
        subject = tenant if level == "tenant" else np.zeros_like(tenant)
        return _level(level, day, excluded, subject_ids, subject, data, None, all_items,
                      predicates, enabled, report)

    tasks: dict[str, Callable[[PartSink], LevelResult]] = {
        "tenant": lambda report: tenant_or_system("tenant", report),
        "system": lambda report: tenant_or_system("system", report),
        "agent_group": lambda report: _group_level(
            "agent_group", day, excluded, history, resolution.agent_groups, data, seat_items,
            seat_predicates, report),
        "place_group": lambda report: _group_level(
            "place_group", day, excluded, history, resolution.place_groups, data, seat_items,
            seat_predicates, report),
    }
    wanted = [level for level in _COUNT_ORDER if level in levels]
    done: dict[str, LevelResult] = {}

    def finished(result: LevelResult) -> None:
        done[result.level] = result
        stage(result.level)
        if on_level is not None:
            on_level(result)

    def ignore(_part: LevelPart) -> None:
        """No caller wants parts."""

    if workers <= 1 or len(wanted) <= 1:
        for level in wanted:
            finished(tasks[level](on_part or ignore))
    else:
        # Levels are independent; numpy releases the GIL in its heavy loops, so threads use
        # the cores. Results do not depend on scheduling. The workers hand their parts and
        # results to this thread, which passes them on as they come.
        events: queue.Queue[LevelPart | LevelResult | BaseException] = queue.Queue()

        def work(level: str) -> None:
            try:
                events.put(tasks[level](events.put if on_part is not None else ignore))
            except BaseException as exc:  # re-raised in the calling thread
                events.put(exc)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            for level in wanted:
                pool.submit(work, level)
            while len(done) < len(wanted):
                event = events.get()
                if isinstance(event, BaseException):
                    raise event
                if isinstance(event, LevelResult):
                    finished(event)
                else:
                    assert on_part is not None
                    on_part(event)
    results = {level: done[level] for level in LEVELS if level in done}
    counts = dict(resolution.counts)
    counts["config_objects_skipped"] = sum(
        history.indexes[k].skipped for k in history.in_force(day.start_ts, day.end_ts))
    return DayResult(day=day, excluded=excluded, levels=results, counts=counts,
                     bundle_set_id=bundle_set.id if bundle_set is not None else None)
