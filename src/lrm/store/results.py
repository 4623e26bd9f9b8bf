"""Writing a business date's results: per-minute arrays and daily values, bulk-loaded with
binary COPY and swapped in atomically (delete + insert + fence + run status in one transaction),
so a failed or fenced run leaves the previous results untouched.

Most of a write is PostgreSQL parsing and compressing the per-minute arrays, on the one core
that serves a connection. So the per-minute rows are copied into an unlogged staging table
over several connections of their own, each batch committed there (where nothing reads it),
and the run's transaction moves each staged batch into usage_minute as it arrives: the values
are copied as they are stored, compressed, about ten times faster than they were parsed."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import TracebackType

import numpy as np
import numpy.typing as npt
import psycopg
import sqlalchemy as sa

from lrm.domain.errors import DatabaseError
from lrm.store.schema import usage_daily, usage_minute, usage_minute_staged

_PG_EPOCH_DAYS = date(2000, 1, 1).toordinal()
_PG_EPOCH_S = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp())
_INT4_OID = 23
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_COPY_TRAILER = b"\xff\xff"
_MINUTE_ROWS_PER_WRITE = 500
# Per-minute rows per staged batch: small enough that the last level's rows are shared among
# the staging connections, large enough that moving a batch costs little more than its rows.
_MINUTE_ROWS_PER_BATCH = 1_000
#: Connections that copy per-minute rows into the staging table at the same time.
STAGING_CONNECTIONS = 2
_STAGE = ("COPY usage_minute_staged (business_date, level, subject_id, item_id, day_start, "
          "peaks, run_id, batch) FROM STDIN (FORMAT binary)")
_COLUMNS = "business_date, level, subject_id, item_id, day_start, peaks, run_id"
_MOVE = sa.text(f"INSERT INTO usage_minute ({_COLUMNS}) SELECT {_COLUMNS} "
                "FROM usage_minute_staged WHERE run_id = :run AND batch = :batch")


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


class DayWriter:
    """Replaces a date's results block by block inside the caller's transaction, so that the
    blocks of one level can be written (and PostgreSQL can parse and compress them) while the
    next levels are still being counted. Each block replaces only its own (level, item) rows;
    nothing is visible before the caller commits, and `finish` must come before the commit.

    A context manager: leaving it stops the staging connections (a failed run's staged rows
    stay in the staging table, unread, until the next run's commit empties it)."""

    def __init__(self, connection: sa.Connection, business_date: date, day_start_ts: int,
                 run_id: int, *, staging_connections: int = STAGING_CONNECTIONS) -> None:
        self.connection = connection
        self.business_date = business_date
        self.day_start_ts = day_start_ts
        self.run_id = run_id
        self._replaced: set[tuple[str, int]] = set()
        self._stager = _Stager(connection.engine, business_date, day_start_ts, run_id,
                               staging_connections)
        self._staged: list[tuple[int, Future[int]]] = []  # (batch, its rows once staged)

    def __enter__(self) -> DayWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stager.close()

    def clear(self, items: Mapping[str, Iterable[int]]) -> None:
        """Delete the date's previous rows of these items, by level, now (a caller that knows
        them can have PostgreSQL delete them while the values are still being counted)."""
        for level, item_ids in items.items():
            self._delete(level, item_ids)

    def _delete(self, level: str, item_ids: Iterable[int]) -> None:
        # The date's previous rows of these (level, item)s, once (a later block of the same
        # items must not delete what an earlier one wrote).
        items = sorted({int(i) for i in item_ids} - {
            i for done, i in self._replaced if done == level})
        self._replaced.update((level, i) for i in items)
        if items:
            for table in (usage_daily, usage_minute):
                self.connection.execute(sa.delete(table).where(
                    table.c.business_date == self.business_date, table.c.level == level,
                    table.c.item_id.in_(items)))

    def write(self, block: LevelResults) -> None:
        """Write a block's daily rows and have its per-minute rows staged; move the batches
        that are staged by now."""
        self._delete(block.level, block.item_ids.tolist())
        if not len(block.subject_ids):
            return
        if block.minute_peaks is not None:
            for lo in range(0, len(block.subject_ids), _MINUTE_ROWS_PER_BATCH):
                self._staged.append(self._stager.stage(
                    block, slice(lo, min(lo + _MINUTE_ROWS_PER_BATCH, len(block.subject_ids)))))
        raw = self.connection.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        with raw.cursor() as cursor, cursor.copy(
                "COPY usage_daily (level, subject_id, item_id, business_date, peak_value, "
                "peak_time, run_id) FROM STDIN (FORMAT binary)") as copy:
            copy.write(_COPY_SIGNATURE)
            copy.write(encode_daily_rows(block, self.business_date, self.day_start_ts,
                                         self.run_id))
            copy.write(_COPY_TRAILER)
        self._move(wait=False)

    def finish(self) -> None:
        """Move every staged batch into usage_minute, then empty the staging table (of this
        run's rows and of any a failed run left): the last step before the commit."""
        self._move(wait=True)
        # TRUNCATE, not DELETE: nothing to vacuum. It waits for no one: only the run holding
        # the job lock stages rows, and its staging connections are done.
        self.connection.execute(sa.text(f"TRUNCATE {usage_minute_staged.name}"))

    def _move(self, *, wait: bool) -> None:
        left = []
        for batch, staged in self._staged:
            if not (wait or staged.done()):
                left.append((batch, staged))
                continue
            rows = staged.result()
            moved = self.connection.execute(_MOVE, {"run": self.run_id, "batch": batch})
            if moved.rowcount != rows:
                raise DatabaseError(
                    f"run {self.run_id} staged {rows} per-minute rows in batch {batch} but "
                    f"{moved.rowcount} were found in {usage_minute_staged.name}: something "
                    "else changed that table during the run")
        self._staged = left


class _Stager:
    """Copies slices of blocks into the staging table over connections of its own (autocommit:
    each batch is committed there), one per thread."""

    def __init__(self, engine: sa.Engine, business_date: date, day_start_ts: int, run_id: int,
                 connections: int) -> None:
        if connections < 1:
            raise ValueError(f"staging needs at least one connection (got {connections})")
        self._engine = engine
        self._rows_of = (business_date, day_start_ts, run_id)  # each thread's encoder
        self._pool = ThreadPoolExecutor(max_workers=connections, thread_name_prefix="lrm-stage")
        self._local = threading.local()
        self._opened: list[sa.Connection] = []
        self._lock = threading.Lock()
        self._batches = 0

    def stage(self, block: LevelResults, rows: slice) -> tuple[int, Future[int]]:
        batch = self._batches
        self._batches += 1
        return batch, self._pool.submit(self._copy, block, rows, batch)

    def _copy(self, block: LevelResults, rows: slice, batch: int) -> int:
        local = self._local
        if not hasattr(local, "connection"):
            connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            with self._lock:
                self._opened.append(connection)
            local.connection, local.rows = connection, MinuteRows(*self._rows_of)
        raw = local.connection.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        with raw.cursor() as cursor, cursor.copy(_STAGE) as copy:
            copy.write(_COPY_SIGNATURE)
            # In slices, so that PostgreSQL parses one while the next is encoded.
            for lo in range(rows.start, rows.stop, _MINUTE_ROWS_PER_WRITE):
                copy.write(local.rows.encode(
                    block, slice(lo, min(lo + _MINUTE_ROWS_PER_WRITE, rows.stop)), batch))
            copy.write(_COPY_TRAILER)
        return int(rows.stop) - int(rows.start)

    def close(self) -> None:
        """Stop: batches not started are dropped, those being copied finish."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.close()


def _minute_row_dtype(level: str, n_minutes: int) -> np.dtype[np.void]:
    """One binary COPY row of usage_minute_staged, as a fixed-width record: every row of a
    level has the same shape, so no Python object is made per row or per minute."""
    return np.dtype([
        ("nfields", ">i2"),
        ("l_date", ">i4"), ("date", ">i4"),
        ("l_level", ">i4"), ("level", f"S{len(level.encode())}"),
        ("l_subject", ">i4"), ("subject", ">i8"),
        ("l_item", ">i4"), ("item", ">i4"),
        ("l_start", ">i4"), ("start", ">i8"),
        ("l_peaks", ">i4"), ("ndim", ">i4"), ("flags", ">i4"), ("oid", ">i4"),
        ("dim", ">i4"), ("lbound", ">i4"),
        ("values", [("len", ">i4"), ("v", ">i4")], (n_minutes,)),
        ("l_run", ">i4"), ("run", ">i8"),
        ("l_batch", ">i4"), ("batch", ">i4"),
    ])


class MinuteRows:
    """Encodes slices of blocks as binary COPY rows for usage_minute_staged into one record
    array, reused from slice to slice: fresh memory costs a page fault every 4 kB, and the
    fields that are the same in every row of a level (lengths, date, level, day start, run,
    the array header and each element's length) are written only when the level changes."""

    def __init__(self, business_date: date, day_start_ts: int, run_id: int) -> None:
        self.business_date = business_date
        self.day_start_ts = day_start_ts
        self.run_id = run_id
        self._rows: npt.NDArray[np.void] | None = None
        self._filled_for: str | None = None  # the level whose constant fields _rows holds

    def encode(self, block: LevelResults, rows: slice, batch: int) -> memoryview:
        assert block.minute_peaks is not None
        peaks = block.minute_peaks[rows]
        n_rows, n_minutes = peaks.shape
        dtype = _minute_row_dtype(block.level, n_minutes)
        if self._rows is None or self._rows.dtype != dtype or self._rows.size < n_rows:
            self._rows = np.empty(n_rows, dtype=dtype)
            self._filled_for = None
        if self._filled_for != block.level:
            self._fill_constants(self._rows, block.level, n_minutes)
            self._filled_for = block.level
        out = self._rows[:n_rows]
        out["subject"] = block.subject_ids[rows]
        out["item"] = block.item_ids[rows]
        out["values"]["v"] = peaks
        out["batch"] = batch
        return out.view(np.uint8).data

    def _fill_constants(self, out: npt.NDArray[np.void], level: str, n_minutes: int) -> None:
        name = level.encode()
        out["nfields"] = 8
        out["l_date"], out["date"] = 4, self.business_date.toordinal() - _PG_EPOCH_DAYS
        out["l_level"], out["level"] = len(name), name
        out["l_subject"], out["l_item"] = 8, 4
        out["l_start"], out["start"] = 8, (self.day_start_ts - _PG_EPOCH_S) * 1_000_000
        out["l_peaks"] = 20 + 8 * n_minutes
        out["ndim"], out["flags"], out["oid"] = 1, 0, _INT4_OID
        out["dim"], out["lbound"] = n_minutes, 1
        out["values"]["len"] = 4
        out["l_run"], out["run"] = 8, self.run_id
        out["l_batch"] = 4


def encode_daily_rows(block: LevelResults, business_date: date, day_start_ts: int,
                      run_id: int) -> bytes:
    """Binary COPY rows for usage_daily. A row without a peak time has a NULL field (no bytes),
    so rows with and without one are two fixed-width record arrays (row order is irrelevant)."""
    level = block.level.encode()
    has_time = block.peak_minute >= 0
    parts = []
    for timed in (True, False):
        at = np.flatnonzero(has_time == timed)
        dtype = np.dtype([
            ("nfields", ">i2"),
            ("l_level", ">i4"), ("level", f"S{len(level)}"),
            ("l_subject", ">i4"), ("subject", ">i8"),
            ("l_item", ">i4"), ("item", ">i4"),
            ("l_date", ">i4"), ("date", ">i4"),
            ("l_value", ">i4"), ("value", ">i4"),
            ("l_time", ">i4"), *([("time", ">i8")] if timed else []),
            ("l_run", ">i4"), ("run", ">i8"),
        ])
        out = np.zeros(at.size, dtype=dtype)
        out["nfields"] = 7
        out["l_level"], out["level"] = len(level), level
        out["l_subject"], out["subject"] = 8, block.subject_ids[at]
        out["l_item"], out["item"] = 4, block.item_ids[at]
        out["l_date"], out["date"] = 4, business_date.toordinal() - _PG_EPOCH_DAYS
        out["l_value"], out["value"] = 4, block.daily_value[at]
        if timed:
            out["l_time"] = 8
            out["time"] = (day_start_ts + block.peak_minute[at] * 60 - _PG_EPOCH_S) * 1_000_000
        else:
            out["l_time"] = -1
        out["l_run"], out["run"] = 8, run_id
        parts.append(out.tobytes())
    return b"".join(parts)


def purge_minutes(connection: sa.Connection, older_than: date) -> int:
    """Delete per-minute rows of business dates before `older_than`; daily rows stay."""
    result = connection.execute(
        sa.delete(usage_minute).where(usage_minute.c.business_date < older_than))
    return int(result.rowcount)
