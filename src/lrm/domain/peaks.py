"""Per-minute peaks (SPEC §5.3; research/anchors.md §4).

The per-minute value of an item for a subject is the maximum, over every instant of the minute,
of the number of distinct seats counting for it — not a snapshot at the minute's first second.

From the seat transitions (`seats.seat_transitions`) each predicate (a seat item or a bundle)
gives a +1 / -1 / 0 delta per transition: pred(mask after) - pred(mask before). Sorted by
(subject, t), a cumulative sum gives the number of seats counting after each transition; only
the level after the last transition of a timestamp is real (ties). The peak of minute m is the
maximum of
- the level carried in from before the minute (unless a transition happens exactly at the
  minute's first second, which replaces it), and
- the levels after each timestamp inside the minute.
Cost: one sort of the transitions, then O(transitions + subjects × minutes) per distinct
predicate table (predicates that change on the same transitions by the same amounts share
their peaks). No dense per-second arrays, so thousands of group subjects stay cheap; subjects
are processed in chunks so that memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from lrm.domain._arrays import (
    I32,
    I64,
    Bool,
    dense_rank,
    pack,
    run_ends,
    run_starts,
    sort_tagged,
    time_bits,
    unpack,
)
from lrm.domain.seats import Transitions, dense_seat_transitions, seat_transitions

Predicate = tuple[int, int]  # (include bits, exclude bits)
_CELLS_PER_CHUNK = 2_000_000
_SMALL_MASKS = 1 << 11  # masks below this: (before, after) pairs rank through a table


def predicate_mask(masks: I64, predicate: Predicate) -> Bool:
    """True where a seat with these item masks counts for the predicate: it uses at least one
    included item and no excluded item. A seat item i is the predicate (1 << i, 0)."""
    include, exclude = predicate
    hit: Bool = (masks & np.int64(include)) != 0
    if exclude:
        hit &= (masks & np.int64(exclude)) == 0
    return hit


def minute_peaks(transitions: Transitions, n_subjects: int, predicates: Sequence[Predicate], *,
                 horizon: int) -> npt.NDArray[np.int32]:
    """Per-minute peaks, shape (n_subjects, len(predicates), horizon // 60), int32."""
    minutes = horizon // 60
    out = np.zeros((n_subjects, len(predicates), minutes), dtype=np.int32)
    if len(transitions) == 0 or not predicates or minutes == 0:
        return out
    # (subject, t) keys with t in the low bits: shifts and masks, no int64 division.
    bits = time_bits(horizon)
    # Few distinct masks occur: each transition gets a code of its (before, after) pair, and
    # per predicate a table gives the change (-1, 0, +1) of the number of seats counting.
    # Only the level after all transitions of a (subject, t) is read, so their order within
    # it does not matter: the code rides along in the sort.
    kind_before, kind_after, kind = _pair_kinds(transitions.before, transitions.after)
    keys, kind = sort_tagged(pack(transitions.subject, transitions.t, bits), kind,
                             int(kind_after.size))
    # Predicates with the same table (a bundle of one item and the item; items whose rules no
    # seat of the day tells apart) have the same levels: each distinct table is swept once. A
    # table of zeros (no seat ever counts) leaves its peaks at zero.
    sweeps: dict[bytes, tuple[I32, list[int]]] = {}
    for p, predicate in enumerate(predicates):
        table = (predicate_mask(kind_after, predicate).astype(np.int32)
                 - predicate_mask(kind_before, predicate).astype(np.int32))
        if table.any():
            sweeps.setdefault(table.tobytes(), (table, []))[1].append(p)
    if not sweeps:
        return out
    subject = unpack(keys, bits)[0]

    per_chunk = max(1, _CELLS_PER_CHUNK // minutes)
    bounds = np.searchsorted(subject, np.arange(0, n_subjects + per_chunk, per_chunk))
    for c, lo_subject in enumerate(range(0, n_subjects, per_chunk)):
        lo, hi = int(bounds[c]), int(bounds[c + 1])
        if lo == hi:
            continue
        hi_subject = min(n_subjects, lo_subject + per_chunk)
        _chunk(keys[lo:hi] - (np.int64(lo_subject) << bits), kind[lo:hi],
               hi_subject - lo_subject, list(sweeps.values()), horizon,
               out[lo_subject:hi_subject])
    return out


def _pair_kinds(before: I64, after: I64) -> tuple[I64, I64, I64]:
    """(mask before, mask after) of each distinct pair, and each transition's pair index.
    Masks are bit sets of a few seat items, so usually small: then a pair is one number
    ranked through a presence table; otherwise the masks are ranked first."""
    lowest = min(int(before.min()), int(after.min()))
    top = max(int(before.max()), int(after.max())) + 1
    if lowest >= 0 and top <= _SMALL_MASKS:
        pairs, kind = dense_rank(before * np.int64(top) + after)
        return pairs // top, pairs % top, kind
    count = int(before.size)
    mask_values, codes = dense_rank(np.concatenate([before, after]))
    n_values = np.int64(mask_values.size)
    pairs, kind = dense_rank(codes[:count] * n_values + codes[count:])
    return mask_values[pairs // n_values], mask_values[pairs % n_values], kind


def _chunk(keys: I64, kind: I64, n_subjects: int, sweeps: Sequence[tuple[I32, Sequence[int]]],
           horizon: int, out: npt.NDArray[np.int32]) -> None:
    """Peaks of the subjects of one chunk; `sweeps` pairs each distinct table with the indices
    of the predicates that have it."""
    minutes = horizon // 60
    subject, t = unpack(keys, time_bits(horizon))
    # Real levels: after the last transition of each (subject, t), inside the day.
    real = np.flatnonzero(run_ends(keys) & (t < horizon))
    t_real = t[real]
    cell = subject[real] * minutes + t_real // 60
    starts = np.flatnonzero(run_starts(cell))
    if starts.size == 0:
        return
    ends = np.append(starts[1:], cell.size) - 1
    occupied = cell[starts]
    n_cells = n_subjects * minutes

    # Gather indices into [0, values...]: 0 reads a zero level.
    own_at = np.zeros(n_cells, dtype=np.int32)
    own_at[occupied] = np.arange(1, occupied.size + 1, dtype=np.int32)
    last_at = np.maximum.accumulate(own_at.reshape(n_subjects, minutes), axis=1)
    carry_grid = np.zeros((n_subjects, minutes), dtype=np.int32)
    carry_grid[:, 1:] = last_at[:, :-1]
    carry_at = carry_grid.reshape(-1)
    # A transition at the minute's first second replaces the level carried in.
    carry_at[occupied[(t_real[starts] % 60) == 0]] = 0
    del last_at

    level_max = np.zeros(occupied.size + 1, dtype=np.int32)
    level_end = np.zeros(occupied.size + 1, dtype=np.int32)
    for table, same in sweeps:
        level = np.cumsum(table[kind], dtype=np.int32)[real]
        level_max[1:] = np.maximum.reduceat(level, starts)
        level_end[1:] = level[ends]
        peak = np.maximum(level_end[carry_at], level_max[own_at]).reshape(n_subjects, minutes)
        for p in same:
            out[:, p, :] = peak


def level_minute_peaks(subject: I64, seat: I64, start: I64, end: I64, mask: I64,
                       n_subjects: int, predicates: Sequence[Predicate], *,
                       horizon: int) -> npt.NDArray[np.int32]:
    """Seat rows (subject index, seat key, [start, end) in seconds from the day start, item
    mask) to per-minute peaks of shape (n_subjects, len(predicates), horizon // 60)."""
    transitions = seat_transitions(subject, seat, start, end, mask, horizon=horizon)
    return minute_peaks(transitions, n_subjects, predicates, horizon=horizon)


def dense_level_minute_peaks(subject: I64, seat_index: I64, n_seats: int, start: I64, end: I64,
                             mask_code: I64, mask_values: I64, n_subjects: int,
                             predicates: Sequence[Predicate], *,
                             horizon: int) -> npt.NDArray[np.int32]:
    """`level_minute_peaks` with seats as dense indices and masks as codes (see
    `seats.dense_seat_transitions`)."""
    transitions = dense_seat_transitions(subject, seat_index, n_seats, start, end, mask_code,
                                         mask_values, horizon=horizon)
    return minute_peaks(transitions, n_subjects, predicates, horizon=horizon)
