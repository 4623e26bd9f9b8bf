"""Writing a business date's results: per-minute arrays and daily values, bulk-loaded with
binary COPY and swapped in atomically (delete + insert + fence + run status in one transaction),
so a failed or fenced run leaves the previous results untouched."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import numpy.typing as npt
import psycopg
import sqlalchemy as sa

from lrm.store.schema import usage_daily, usage_minute

_PG_EPOCH_DAYS = date(2000, 1, 1).toordinal()
_PG_EPOCH_S = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp())
_INT4_OID = 23
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_COPY_TRAILER = b"\xff\xff"


@dataclass(frozen=True)
class LevelResults:
    """All values of one level (tenant, system, agent_group or place_group) for one date.

    Row r is (subject_ids[r], item_ids[r]); `minute_peaks[r]` has one value per minute of the
    business day; `peak_minute[r]` is the index of the daily peak minute (-1: no peak time)."""

    level: str
    subject_ids: npt.NDArray[np.int64]
    item_ids: npt.NDArray[np.int64]
    daily_value: npt.NDArray[np.int64]
    peak_minute: npt.NDArray[np.int64]
    minute_peaks: npt.NDArray[np.int32] | None  # None: the item has no per-minute series


@dataclass(frozen=True)
class DayResults:
    business_date: date
    day_start_ts: int
    minutes: int
    levels: Sequence[LevelResults]

    def replaced_items(self) -> dict[str, list[int]]:
        """Which (level, item) pairs this run computed: only those are replaced."""
        items: dict[str, set[int]] = {}
        for block in self.levels:
            items.setdefault(block.level, set()).update(int(i) for i in block.item_ids)
        return {level: sorted(ids) for level, ids in items.items()}

    @property
    def row_count(self) -> int:
        return sum(len(b.subject_ids) for b in self.levels)


def replace_day(connection: sa.Connection, results: DayResults, run_id: int,
                before_commit: Callable[[sa.Connection], None]) -> None:
    """Swap in `results` for its date. Runs inside the caller's transaction; `before_commit`
    (the fences and the run status change) runs last, after the bulk work, so the lease row is
    share-locked only for the instant of the commit."""
    d = results.business_date
    for level, items in results.replaced_items().items():
        connection.execute(sa.delete(usage_daily).where(
            usage_daily.c.business_date == d, usage_daily.c.level == level,
            usage_daily.c.item_id.in_(items)))
        connection.execute(sa.delete(usage_minute).where(
            usage_minute.c.business_date == d, usage_minute.c.level == level,
            usage_minute.c.item_id.in_(items)))
    raw = connection.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    with raw.cursor() as cursor:
        with cursor.copy("COPY usage_minute (business_date, level, subject_id, item_id, "
                         "day_start, peaks, run_id) FROM STDIN (FORMAT binary)") as copy:
            copy.write(_COPY_SIGNATURE)
            for block in results.levels:
                if block.minute_peaks is not None and len(block.subject_ids):
                    copy.write(encode_minute_rows(block, results, run_id))
            copy.write(_COPY_TRAILER)
        with cursor.copy("COPY usage_daily (level, subject_id, item_id, business_date, "
                         "peak_value, peak_time, run_id) FROM STDIN") as copy:
            for block in results.levels:
                peak_ts = results.day_start_ts + block.peak_minute * 60
                for subject, item, value, minute, ts in zip(
                        block.subject_ids.tolist(), block.item_ids.tolist(),
                        block.daily_value.tolist(), block.peak_minute.tolist(), peak_ts.tolist(),
                        strict=True):
                    peak_time = datetime.fromtimestamp(ts, UTC) if minute >= 0 else None
                    copy.write_row((block.level, subject, item, d, value, peak_time, run_id))
    before_commit(connection)


def encode_minute_rows(block: LevelResults, results: DayResults, run_id: int) -> bytes:
    """Binary COPY rows for usage_minute, built as one fixed-width numpy record array: every
    row of a level has the same shape, so no Python object is made per row or per minute."""
    assert block.minute_peaks is not None
    n_rows, n_minutes = block.minute_peaks.shape
    level = block.level.encode()
    dtype = np.dtype([
        ("nfields", ">i2"),
        ("l_date", ">i4"), ("date", ">i4"),
        ("l_level", ">i4"), ("level", f"S{len(level)}"),
        ("l_subject", ">i4"), ("subject", ">i8"),
        ("l_item", ">i4"), ("item", ">i4"),
        ("l_start", ">i4"), ("start", ">i8"),
        ("l_peaks", ">i4"), ("ndim", ">i4"), ("flags", ">i4"), ("oid", ">i4"),
        ("dim", ">i4"), ("lbound", ">i4"),
        ("values", [("len", ">i4"), ("v", ">i4")], (n_minutes,)),
        ("l_run", ">i4"), ("run", ">i8"),
    ])
    rows = np.zeros(n_rows, dtype=dtype)
    rows["nfields"] = 7
    rows["l_date"], rows["date"] = 4, results.business_date.toordinal() - _PG_EPOCH_DAYS
    rows["l_level"], rows["level"] = len(level), level
    rows["l_subject"], rows["subject"] = 8, block.subject_ids
    rows["l_item"], rows["item"] = 4, block.item_ids
    rows["l_start"], rows["start"] = 8, (results.day_start_ts - _PG_EPOCH_S) * 1_000_000
    rows["l_peaks"] = 20 + 8 * n_minutes
    rows["ndim"], rows["flags"], rows["oid"] = 1, 0, _INT4_OID
    rows["dim"], rows["lbound"] = n_minutes, 1
    rows["values"]["len"] = 4
    rows["values"]["v"] = block.minute_peaks
    rows["l_run"], rows["run"] = 8, run_id
    return rows.tobytes()


def purge_minutes(connection: sa.Connection, older_than: date) -> int:
    """Delete per-minute rows of business dates before `older_than`; daily rows stay."""
    result = connection.execute(
        sa.delete(usage_minute).where(usage_minute.c.business_date < older_than))
    return int(result.rowcount)
