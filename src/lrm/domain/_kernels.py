"""Compiled loops (numba) for the counting steps whose numpy form needs many passes.

A sweep over sorted transitions reads each one once and keeps a running level per predicate;
in numpy the same takes a cumulative sum, a segmented maximum and several gathers per
predicate table, each a full pass over memory (research/anchors.md §4: the sweep is the
exact method; only its cost differs). The functions are compiled when this module is first
imported — from numba's on-disk cache after the first time, about 0.2 s — not on first call,
so a run never waits for the compiler half-way, and they release the GIL, so the count's
threads run them at the same time."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt

from lrm.domain._arrays import I64

F = TypeVar("F", bound=Callable[..., None])


def _compiled(signature: str) -> Callable[[F], F]:
    """Compile for exactly `signature` (C-contiguous arrays), now, through numba's cache."""

    def compile_(function: F) -> F:
        try:
            return cast(F, numba.njit(signature, cache=True, nogil=True)(function))
        except RuntimeError:
            # No writable cache: neither beside this file (a read-only install) nor in the
            # user's cache folder (a service account without a home; NUMBA_CACHE_DIR names
            # one). Compile in this process instead: about a second per start.
            return cast(F, numba.njit(signature, nogil=True)(function))

    return compile_


@_compiled("void(int32[::1], int64[::1], int32[:, :, ::1], int64, int64, int64)")
def _hold(level: npt.NDArray[np.int32], columns: I64, out: npt.NDArray[np.int32],
          subject: np.int64, first: np.int64, last: np.int64) -> None:
    """Minutes first..last of `subject` see `level` (per table, into its column of `out`)."""
    for q in range(level.size):
        value = level[q]
        if value > 0:
            column = columns[q]
            for minute in range(first, last + 1):
                out[subject, column, minute] = max(out[subject, column, minute], value)


@_compiled("void(int64[::1], int64[::1], int64, int32[:, ::1], int64[::1], int64, "
           "int32[:, :, ::1])")
def level_sweep(keys: I64, kind: I64, bits: np.int64, tables: npt.NDArray[np.int32],
                columns: I64, horizon: np.int64, out: npt.NDArray[np.int32]) -> None:
    """Per-minute peaks into `out[subject, columns[q], minute]` (zeros on entry), for each
    predicate table q: transition keys (subject, t) packed as in `_arrays.pack` with `bits`
    time bits and sorted, `kind[i]` the code of transition i, `tables[q, code]` the change
    (-1, 0, +1) of the number of seats counting for table q."""
    # A subject's level is 0 before its first transition; after all transitions of one
    # (subject, t) it holds until the subject's next t (only that level is real: ties). Each
    # minute's peak is the maximum of the levels that hold during some part of it.
    n_tables = tables.shape[0]
    time_mask = (np.int64(1) << bits) - 1
    level = np.zeros(n_tables, dtype=np.int32)
    n = keys.size
    i = 0
    while i < n:
        subject = keys[i] >> bits
        level[:] = 0
        held_from = np.int64(0)
        while i < n and (keys[i] >> bits) == subject:
            key = keys[i]
            t = key & time_mask
            if t >= horizon:  # ends at the end of the day change nothing inside it
                while i < n and keys[i] == key:
                    i += 1
                continue
            if t > held_from:
                _hold(level, columns, out, subject, held_from // 60, (t - 1) // 60)
            while i < n and keys[i] == key:
                code = kind[i]
                for q in range(n_tables):
                    level[q] += tables[q, code]
                i += 1
            held_from = t
        _hold(level, columns, out, subject, held_from // 60, (horizon - 1) // 60)

