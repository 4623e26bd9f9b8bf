"""Per-minute peaks (SPEC §5.3; research/anchors.md §4).

The per-minute value of an item for a subject is the maximum, over every instant of the minute,
of the number of distinct seats counting for it — not a snapshot at the minute's first second.

From the seat transitions (`seats.seat_transitions`) each predicate (a seat item or a bundle)
gives a +1 / -1 / 0 delta per transition: pred(mask after) - pred(mask before). Sorted by
(subject, t), a running sum gives the number of seats counting after each transition; only
the level after the last transition of a timestamp is real (ties). The peak of minute m is the
maximum of
- the level carried in from before the minute (unless a transition happens exactly at the
  minute's first second, which replaces it), and
- the levels after each timestamp inside the minute.
Cost: one sort of the transitions, then one compiled pass over them
(`_kernels.level_sweep`), O(transitions + subjects × minutes) per distinct predicate table
(predicates that change on the same transitions by the same amounts share their peaks). No
dense per-second arrays and no temporaries of the size of the output, so thousands of group
subjects stay cheap.
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
    i64,
    pack,
    sort_tagged,
    time_bits,
)
from lrm.domain._kernels import level_sweep
from lrm.domain.seats import Transitions, dense_seat_transitions, seat_transitions

Predicate = tuple[int, int]  # (include bits, exclude bits)
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
    # The compiled sweep writes where the keys say, unchecked: a subject or time out of range
    # must stop here, not write outside `out`.
    if (int(transitions.subject.min()) < 0 or int(transitions.subject.max()) >= n_subjects
            or int(transitions.t.min()) < 0 or int(transitions.t.max()) > horizon):
        raise ValueError(f"transitions must have subjects in [0, {n_subjects}) and times in "
                         f"[0, {horizon}]")
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
    # seat of the day tells apart) have the same levels: each distinct table is swept once,
    # into the column of its first predicate. A table of zeros (no seat ever counts) leaves
    # its peaks at zero.
    sweeps: dict[bytes, tuple[I32, list[int]]] = {}
    for p, predicate in enumerate(predicates):
        table = (predicate_mask(kind_after, predicate).astype(np.int32)
                 - predicate_mask(kind_before, predicate).astype(np.int32))
        if table.any():
            sweeps.setdefault(table.tobytes(), (table, []))[1].append(p)
    if not sweeps:
        return out
    tables = np.stack([table for table, _ in sweeps.values()])
    columns = i64([same[0] for _, same in sweeps.values()])
    level_sweep(np.ascontiguousarray(keys), np.ascontiguousarray(kind), bits, tables, columns,
                np.int64(horizon), out)
    for _, same in sweeps.values():
        for p in same[1:]:
            out[:, p, :] = out[:, same[0], :]
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
