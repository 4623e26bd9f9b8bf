"""usage_minute_staged's binary COPY rows, encoded slice by slice into one reused buffer, are the
bytes PostgreSQL's binary COPY format defines (checked against a row-by-row `struct` encoder)."""

from __future__ import annotations

import struct
from datetime import UTC, date, datetime

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from lrm.store.results import LevelResults, MinuteRows

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def reference_rows(block: LevelResults, business_date: date, day_start_ts: int,
                   run_id: int, batch: int) -> bytes:
    assert block.minute_peaks is not None
    out = bytearray()
    level = block.level.encode()
    days = (business_date - PG_EPOCH.date()).days
    start_us = (day_start_ts - int(PG_EPOCH.timestamp())) * 1_000_000
    for subject, item, peaks in zip(block.subject_ids.tolist(), block.item_ids.tolist(),
                                    block.minute_peaks.tolist(), strict=True):
        array = struct.pack(">iiiii", 1, 0, 23, len(peaks), 1) + b"".join(
            struct.pack(">ii", 4, v) for v in peaks)
        out += struct.pack(">h", 8)
        out += struct.pack(">ii", 4, days)
        out += struct.pack(">i", len(level)) + level
        out += struct.pack(">iq", 8, subject)
        out += struct.pack(">ii", 4, item)
        out += struct.pack(">iq", 8, start_us)
        out += struct.pack(">i", len(array)) + array
        out += struct.pack(">iq", 8, run_id)
        out += struct.pack(">ii", 4, batch)
    return bytes(out)


def block(level: str, rows: int, minutes: int, seed: int) -> LevelResults:
    rng = np.random.default_rng(seed)
    return LevelResults(level=level, subject_ids=rng.integers(1, 2**40, rows),
                        item_ids=rng.integers(1, 20_000, rows),
                        daily_value=np.zeros(rows, np.int64), peak_minute=np.zeros(rows, np.int64),
                        minute_peaks=rng.integers(-2**31, 2**31, (rows, minutes), dtype=np.int32))


@given(st.lists(st.tuples(st.sampled_from(["tenant", "system", "agent_group", "place_group"]),
                          st.integers(0, 7), st.sampled_from([3, 5]), st.integers(1, 4)),
                min_size=1, max_size=6), st.integers(0, 2**31))
def test_slices_of_blocks_encode_as_the_reference(
        blocks: list[tuple[str, int, int, int]], seed: int) -> None:
    rows = MinuteRows(date(2026, 3, 29), 1_774_738_800, 42)
    for k, (level, n_rows, minutes, step) in enumerate(blocks):
        b = block(level, n_rows, minutes, seed + k)
        got = b"".join(bytes(rows.encode(b, slice(lo, lo + step), k))
                       for lo in range(0, n_rows, step))
        assert got == reference_rows(b, date(2026, 3, 29), 1_774_738_800, 42, k)
