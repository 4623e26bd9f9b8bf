"""Distinct seats: from session segments to the moments a seat's item mask changes.

Several sessions on one seat at the same instant are one seat (SPEC §5.1). For each (subject,
seat) — a subject is a tenant, a group or the whole system — the active segments change only at
their start and end times. Between two consecutive such times the set of active segments is
constant, and so is the seat's **item mask**: bit i is set when at least one active segment
satisfies seat item i's rule. A seat counts for item i while bit i is set, and for a bundle
while `mask & include != 0 and mask & exclude == 0` ("the items it uses then", SPEC §5.4).

`seat_transitions` returns, for every (subject, seat, t) where the mask changes, the mask just
before and just after t. Intervals are half-open [start, end): a session ending at t and another
starting at t on the same seat keep the seat continuously occupied, and only the state after
the last event of a timestamp is read (ties).

How: one sort of the 2·n start/end events by (subject, seat, t), then a running count of active
segments per item bit. The counts of four bits share one int64 (16-bit lanes: one cumulative
sum serves four items); lanes are exact while no (subject, seat) has 65,536 or more segments
(an upper bound of its simultaneous ones), which is checked, with a one-bit-at-a-time
fallback. When every segment has the same mask (one item counted alone), the transitions are
the bounds of each seat's union of segments: one sort of the starts and a running maximum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lrm.domain._arrays import (
    I64,
    Idx,
    dense_rank,
    i64,
    pack,
    run_ends,
    sort_keys,
    sort_tagged,
    time_bits,
    unpack,
)

_LANE_BITS = 16
_LANES = 4
_LANE_MAX = (1 << _LANE_BITS) - 1


@dataclass(frozen=True)
class Transitions:
    """Changes of a (subject, seat) item mask, grouped by (subject, seat) and sorted by t
    within each. `t` is in seconds from the start of the day, in [0, horizon]."""

    subject: I64
    t: I64
    before: I64
    after: I64

    def __len__(self) -> int:
        return int(self.t.size)


def _empty() -> Transitions:
    empty = i64([])
    return Transitions(empty, empty, empty, empty)


def seat_transitions(subject: I64, seat: I64, start: I64, end: I64, mask: I64, *,
                     horizon: int) -> Transitions:
    """Mask changes of every (subject, seat). Rows with start >= end contribute nothing.
    `start`/`end` are seconds from the start of the day, 0 <= start, end <= horizon."""
    seat_ids, seat_index = dense_rank(seat)
    mask_values, mask_code = dense_rank(mask)
    return dense_seat_transitions(subject, seat_index, int(seat_ids.size), start, end,
                                  mask_code, mask_values, horizon=horizon)


def seat_owners(subject: I64, seat_index: I64, n_seats: int) -> I64 | None:
    """The subject of each seat index when every row of a seat has the same subject (a place
    belongs to one tenant); None when some seat has rows of two subjects."""
    owner = np.zeros(n_seats, dtype=np.int64)
    owner[seat_index] = subject
    return owner if np.array_equal(owner[seat_index], subject) else None


def _pairs(subject: I64, seat_index: I64, n_seats: int) -> tuple[I64, I64]:
    """A dense index of each row's (subject, seat) pair, and the subject of each index.
    Usually each seat has one subject: then the seat index is the pair index, with no sort to
    rank the pairs."""
    owner = seat_owners(subject, seat_index, n_seats)
    if owner is not None:
        return seat_index, owner
    pair_ids, pair_index = dense_rank(subject * np.int64(n_seats) + seat_index)
    return pair_index, pair_ids // np.int64(n_seats)


def dense_seat_transitions(subject: I64, seat_index: I64, n_seats: int, start: I64, end: I64,
                           mask_code: I64, mask_values: I64, *, horizon: int) -> Transitions:
    """`seat_transitions` for seats given as dense indices (< n_seats) and masks given as codes
    into the table `mask_values` (so a count computes both once for all its levels)."""
    keep = start < end
    if not keep.all():
        subject, seat_index, start, end, mask_code = (
            a[keep] for a in (subject, seat_index, start, end, mask_code))
    n = int(start.size)
    if n == 0:
        return _empty()
    if int(start.min()) < 0 or int(end.max()) > horizon:
        raise ValueError("segment times must lie within [0, horizon]")
    pair_index, pair_subject = _pairs(subject, seat_index, n_seats)
    # (pair, t) keys with t in the low bits: shifts and masks, no int64 division.
    bits = time_bits(horizon)
    if mask_values.size == 1:
        return _one_mask_transitions(pair_index, pair_subject, start, end,
                                     int(mask_values[0]), bits)

    keys = np.concatenate([pack(pair_index, start, bits), pack(pair_index, end, bits)])
    # Each event is tagged with its mask code, plus the number of codes for an end. Only the
    # mask after all events of a (pair, t) is read, so their order within it does not matter.
    n_codes = int(mask_values.size)
    tags = np.concatenate([mask_code, mask_code + np.int64(n_codes)])
    # A seat carrying 65,536+ simultaneous segments would overflow a 16-bit lane; the number
    # of segments of a (subject, seat) bounds it.
    lanes_ok = n <= _LANE_MAX or int(np.bincount(pair_index).max()) <= _LANE_MAX
    del pair_index
    keys, tags = sort_tagged(keys, tags, 2 * n_codes)
    last = np.flatnonzero(run_ends(keys))
    keys = keys[last]
    after = _masks_after(tags, last, mask_values, lanes_ok)
    del tags

    pair, t = unpack(keys, bits)
    before = np.empty_like(after)
    before[0] = 0
    before[1:] = after[:-1]
    before[1:][pair[1:] != pair[:-1]] = 0
    changed = np.flatnonzero(before != after)
    return Transitions(subject=pair_subject[pair[changed]], t=t[changed],
                       before=before[changed], after=after[changed])


def _one_mask_transitions(pair_index: I64, pair_subject: I64, start: I64, end: I64, mask: int,
                          bits: np.int64) -> Transitions:
    """Every segment has the same mask: a seat has it while any of its segments is active, so
    its transitions are the bounds of the union of its segments (the "islands" of the SQL
    sweep, research/anchors.md §4.2). One sort of the n segment starts instead of the 2n
    events."""
    if mask == 0:
        return _empty()
    start_keys = pack(pair_index, start, bits)
    if int(pair_index.max()).bit_length() + 2 * int(bits) <= 63:
        # (pair, start, end) in one key: a plain sort, no argsort and no gather of the ends
        # (the order of equal starts does not change the islands).
        both = np.sort((start_keys << bits) | end)
        start_keys = both >> bits
        ends = pack(start_keys >> bits, both & ((np.int64(1) << bits) - 1), bits)
        del both
    else:
        start_keys, order = sort_keys(start_keys)
        ends = pack(pair_index, end, bits)[order]
        del order
    # The furthest end reached so far; it never crosses into the next pair, whose keys are
    # all larger.
    reach = np.maximum.accumulate(ends)
    del ends
    # An island starts at a segment that starts after everything before it ended (one that
    # starts exactly where the island reached continues it: back-to-back sessions).
    begins = np.ones(start_keys.size, dtype=np.bool_)
    np.greater(start_keys[1:], reach[:-1], out=begins[1:])
    first = np.flatnonzero(begins)
    keys = np.empty(2 * first.size, dtype=np.int64)
    keys[0::2] = start_keys[first]
    keys[1::2] = reach[np.append(first[1:], start_keys.size) - 1]
    on = np.zeros(keys.size, dtype=np.int64)
    on[0::2] = mask
    off = np.zeros(keys.size, dtype=np.int64)
    off[1::2] = mask
    pair, t = unpack(keys, bits)
    return Transitions(subject=pair_subject[pair], t=t, before=off, after=on)


def _masks_after(tags: I64, last: Idx, mask_values: I64, lanes_ok: bool) -> I64:
    """The item mask of each (pair, t) in `last` after its events, given each event's tag (its
    mask code, plus the number of codes for an end): per item bit, a running count of active
    segments (four bits per int64 when `lanes_ok`)."""
    present = int(np.bitwise_or.reduce(mask_values))
    item_bits = [b for b in range(present.bit_length()) if (present >> b) & 1]
    after = np.zeros(last.size, dtype=np.int64)
    group = _LANES if lanes_ok else 1
    for first in range(0, len(item_bits), group):
        word_bits = item_bits[first:first + group]
        spread = np.zeros(mask_values.size, dtype=np.int64)
        for lane, b in enumerate(word_bits):
            spread |= ((mask_values >> np.int64(b)) & 1) << np.int64(_LANE_BITS * lane)
        delta = np.concatenate([spread, -spread])[tags]  # a start adds, an end takes away
        np.cumsum(delta, out=delta)
        counts = delta[last]
        del delta
        for lane, b in enumerate(word_bits):
            if lanes_ok:
                on = ((counts >> np.int64(_LANE_BITS * lane)) & np.int64(_LANE_MAX)) != 0
            else:
                on = counts != 0
            after |= on.astype(np.int64) << np.int64(b)
    return after
