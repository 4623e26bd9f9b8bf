"""Reading login sessions from ICON databases (IDB), in bulk.

Two paths behind one interface:
- PostgreSQL: every column made a non-NULL int8, so each row has the same width and the whole
  read is decoded by one `np.frombuffer` (no Python object per row). The GUID is hashed inside
  the query: its MD5 as a 16-byte bytea (one `md5` and one `decode` per row: string slicing and
  bit casts cost the IDB server more than the hash itself), read as two big-endian int8 halves.
  The server packs each row into 72 bytes and joins them into one `bytea` (`string_agg`): one
  protocol message for the read instead of one per row, which cost the client 0.28 s of CPU
  (holding the GIL) per 570 k rows; the server's CPU is about the same either way. The read is
  planned without parallel workers, as the `COPY` was. A `bytea` holds at most 1 GB (about
  14.9 million rows); a read the server refuses as too large is read again with
  `COPY (SELECT …) TO STDOUT (FORMAT binary)`, a message per row.
- Any other SQLAlchemy dialect (Oracle, SQL Server): the same query in SQLAlchemy Core, fetched
  in large batches from a server-side cursor, GUIDs hashed in Python. Portable, slower.
Both return the same `RawSessions`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np
import psycopg
import psycopg.sql
import sqlalchemy as sa
from psycopg import pq
from sqlalchemy.exc import SQLAlchemyError

from lrm.domain.dedup import NULL, Int64Array, RawSessions
from lrm.domain.errors import SourceError
from lrm.sources.silence import SilenceGuard
from lrm.store.copy_out import copy_out
from lrm.store.db import libpq_url, sqlalchemy_url

COLUMNS = ("guid_hi", "guid_lo", "agent", "login", "place", "dn", "created", "terminated",
           "provider_tag")
_CONNECT_TIMEOUT_S = 10
_BATCH_ROWS = 50_000

# Sessions overlapping [window_start, window_end), plus the bad rows the job must account for:
# an end before the start (in the window's run: the rows created in it) and a start absurdly
# far in the future. Each arm is a range of the index on CREATED_TS or on TERMINATED_TS, so a
# night's read does not walk every session the IDB has kept: "created before the window's end
# and not ended before its start" alone is a scan of the whole history (2.37 s against 0.15 s
# for the last day of an IDB holding 31 days, 14.3 M rows).
_PG_SELECT = """
  SELECT decode(md5(loginsessionid), 'hex'),
         COALESCE(agentid, -1)::int8, COALESCE(loginid, -1)::int8,
         COALESCE(placeid, -1)::int8, COALESCE(primarydeviceid, -1)::int8,
         created_ts::int8, COALESCE(terminated_ts, -1)::int8, COALESCE(providertag, -1)::int8
  FROM g_login_session
"""
_PG_PACKED = """
  SELECT string_agg(decode(md5(loginsessionid), 'hex')
                    || int8send(COALESCE(agentid, -1)::int8)
                    || int8send(COALESCE(loginid, -1)::int8)
                    || int8send(COALESCE(placeid, -1)::int8)
                    || int8send(COALESCE(primarydeviceid, -1)::int8)
                    || int8send(created_ts::int8)
                    || int8send(COALESCE(terminated_ts, -1)::int8)
                    || int8send(COALESCE(providertag, -1)::int8), ''::bytea)
  FROM g_login_session
"""
SESSION_WINDOW = """
  WHERE (created_ts >= {start} AND created_ts < {end})
     OR (created_ts < {start} AND (terminated_ts >= {start} OR terminated_ts IS NULL))
     OR created_ts > {future}
"""
# GUIDs of the rows without an end: the partner copy may have the end (an outage in this copy),
# and that copy can lie outside the window (it ended before the day), so it is fetched by GUID.
_PG_OPEN_GUIDS = """
  SELECT loginsessionid, decode(md5(loginsessionid), 'hex') FROM g_login_session
  WHERE terminated_ts IS NULL AND created_ts < {end}
"""

# Binary COPY framing: 11-byte signature, int32 flags, int32 extension length; then per row an
# int16 field count and, per field, an int32 length and the value; finally an int16 -1 trailer.
_HEADER_LEN = 19
_ROW_DTYPE = np.dtype([("nfields", ">i2"), ("guid_len", ">i4"), ("guid_hi", ">i8"),
                       ("guid_lo", ">i8")] + [
    item for name in COLUMNS[2:] for item in ((f"{name}_len", ">i4"), (name, ">i8"))
])


_PACKED_DTYPE = np.dtype([(name, ">i8") for name in COLUMNS])
# The server's answers to a packed read over 1 GB (or one it has no memory for).
_TOO_LARGE = (psycopg.errors.ProgramLimitExceeded, psycopg.errors.OutOfMemory)


@dataclass(frozen=True)
class IdbRead:
    rows: RawSessions
    open_guids: list[str]
    open_keys: tuple[Int64Array, Int64Array]  # the (hi, lo) key of each open GUID, in order

    @classmethod
    def hashed_here(cls, rows: RawSessions, open_guids: list[str]) -> IdbRead:
        """The read, with the open GUIDs' keys computed by the client (`guid_hashes`)."""
        return cls(rows, open_guids, guid_hashes(open_guids))


class IdbReader(Protocol):
    name: str

    def read(self, window_start: int, window_end: int, future_after: int) -> IdbRead:
        """Every session row overlapping [window_start, window_end) (epoch seconds), plus rows
        created in the window that end before they start and rows starting after
        `future_after`; and the GUIDs of the rows without an end."""
        ...

    def read_guids(self, guids: Sequence[str]) -> RawSessions:
        """The rows of these sessions, wherever they lie in time."""
        ...


def open_idb_reader(name: str, url: str, *, read_timeout_s: float) -> IdbReader:
    """The fastest reader for the database behind `url`."""
    dialect = sa.engine.make_url(sqlalchemy_url(url)).get_backend_name()
    if dialect == "postgresql":
        return PostgresCopyReader(name, url, read_timeout_s)
    return PortableReader(name, url)


@dataclass
class PostgresCopyReader:
    name: str
    url: str
    read_timeout_s: float  # a read that hears nothing for this long is abandoned

    packed: bool = True  # False: always a message per row (as when the server refuses a bytea)

    def read(self, window_start: int, window_end: int, future_after: int) -> IdbRead:
        where = SESSION_WINDOW.format(start=int(window_start), end=int(window_end),
                                  future=int(future_after))
        with self._connect() as (connection, guard):
            rows = None
            if self.packed:
                try:
                    rows = self._packed(connection, guard, psycopg.sql.SQL(_PG_PACKED + where))
                except _TOO_LARGE:
                    connection.rollback()  # which undoes the SET, too
                    _plan_serially(connection)
            if rows is None:
                rows = self._copy(connection, guard, psycopg.sql.SQL(_PG_SELECT + where))
            guard.heard()
            # Hashed by the server as the rows' GUIDs are (tens of thousands: 0.3 s here).
            found = connection.execute(_PG_OPEN_GUIDS.format(end=int(window_end))).fetchall()
        return IdbRead(rows, [guid for guid, _ in found], _digest_halves(
            b"".join(digest for _, digest in found)))

    def read_guids(self, guids: Sequence[str]) -> RawSessions:
        if not guids:
            return RawSessions.empty()
        query = psycopg.sql.SQL(_PG_SELECT + " WHERE loginsessionid = ANY({})").format(
            psycopg.sql.Literal(list(guids)))
        with self._connect() as (connection, guard):
            return self._copy(connection, guard, query)

    @contextmanager
    def _connect(self) -> Iterator[tuple[psycopg.Connection[Any], SilenceGuard]]:
        guard: SilenceGuard | None = None
        try:
            with psycopg.connect(libpq_url(self.url), connect_timeout=_CONNECT_TIMEOUT_S,
                                 application_name="lrm-idb-reader") as connection, \
                    SilenceGuard(connection.fileno(), self.read_timeout_s) as guard:
                connection.read_only = True
                _plan_serially(connection)
                yield connection, guard
        except psycopg.Error as exc:
            if guard is not None and guard.tripped:
                raise SourceError(f"no data from the IDB for {self.read_timeout_s:g} s "
                                  "(read_timeout_s): the read was abandoned",
                                  source=self.name) from exc
            raise SourceError(_describe(exc), source=self.name) from exc

    @staticmethod
    def _copy(connection: psycopg.Connection[Any], guard: SilenceGuard,
              select: psycopg.sql.Composable) -> RawSessions:
        return decode_copy_binary(_copy_out(connection, guard, select))

    @staticmethod
    def _packed(connection: psycopg.Connection[Any], guard: SilenceGuard,
                select: psycopg.sql.Composable) -> RawSessions:
        return decode_packed(_copy_out(connection, guard, select))


def _plan_serially(connection: psycopg.Connection[Any]) -> None:
    """Plan the reads without parallel workers, as a `COPY` of the rows was planned: an
    aggregate may be parallel, and PostgreSQL then prefers a parallel scan of the whole table
    to the window's index ranges (three processes reading an IDB that keeps months of
    sessions).
    Set in the read's transaction: a rollback undoes it. Servers before 9.6 plan no parallel
    scans and do not know the setting (setting it there would fail the read)."""
    if plans_in_parallel(connection.info.server_version):
        connection.execute("SET max_parallel_workers_per_gather = 0")


def plans_in_parallel(server_version: int) -> bool:
    """Whether a PostgreSQL server of this version (libpq's number: 90600 for 9.6, 180001 for
    18.1) may plan parallel scans."""
    return server_version >= 90600


def _copy_out(connection: psycopg.Connection[Any], guard: SilenceGuard,
              select: psycopg.sql.Composable) -> bytearray:
    statement = psycopg.sql.SQL("COPY ({}) TO STDOUT (FORMAT binary)").format(select)
    if connection.info.transaction_status == pq.TransactionStatus.IDLE:
        connection.execute("SELECT 1")  # psycopg opens the read-only transaction
    payload = guard.buffer()
    copy_out(connection, statement.as_bytes(connection), payload)
    return payload


def guid_hashes(guids: Sequence[str]) -> tuple[Int64Array, Int64Array]:
    """The (hi, lo) halves of the GUIDs' MD5 — the key both readers give each row (the
    PostgreSQL one computes it in the query, over the UTF-8 text)."""
    return _digest_halves(b"".join(hashlib.md5(g.encode(), usedforsecurity=False).digest()
                                   for g in guids))


def _digest_halves(digests: bytes) -> tuple[Int64Array, Int64Array]:
    halves = np.frombuffer(digests, dtype=">i8").reshape(-1, 2).astype(np.int64)
    return halves[:, 0].copy(), halves[:, 1].copy()


def decode_copy_binary(payload: bytes | bytearray) -> RawSessions:
    """Decode the fixed-width binary COPY stream of `_PG_SELECT`."""
    body = memoryview(payload)[_HEADER_LEN:-2]
    if len(body) % _ROW_DTYPE.itemsize:
        raise ValueError("unexpected binary COPY row width")
    rows = np.frombuffer(body, dtype=_ROW_DTYPE)
    return RawSessions(**{name: rows[name].astype(np.int64) for name in COLUMNS})


def decode_packed(payload: bytes | bytearray) -> RawSessions:
    """Decode the binary COPY of `_PG_PACKED`: one row, one `bytea` field (NULL: no rows)."""
    body = memoryview(payload)[_HEADER_LEN:-2]
    if len(body) < 6 or int.from_bytes(body[:2], "big", signed=True) != 1:
        raise ValueError("unexpected binary COPY of packed sessions")
    size = int.from_bytes(body[2:6], "big", signed=True)
    if size < 0:
        return RawSessions.empty()
    if size != len(body) - 6 or size % _PACKED_DTYPE.itemsize:
        raise ValueError("unexpected length of packed sessions")
    rows = np.frombuffer(body[6:], dtype=_PACKED_DTYPE)
    return RawSessions(**{name: rows[name].astype(np.int64) for name in COLUMNS})


_G = sa.table("g_login_session", *(sa.column(c) for c in (
    "loginsessionid", "agentid", "loginid", "placeid", "primarydeviceid", "created_ts",
    "terminated_ts", "providertag")))


@dataclass
class PortableReader:
    name: str
    url: str

    def read(self, window_start: int, window_end: int, future_after: int) -> IdbRead:
        c = _G.c
        rows = self._fetch(sa.or_(  # the same rows as SESSION_WINDOW
            sa.and_(c.created_ts >= window_start, c.created_ts < window_end),
            sa.and_(c.created_ts < window_start, sa.or_(c.terminated_ts >= window_start,
                                                        c.terminated_ts.is_(None))),
            c.created_ts > future_after))
        with self._connection() as connection:
            open_guids = [str(g) for g in connection.execute(
                sa.select(c.loginsessionid).where(c.terminated_ts.is_(None),
                                                  c.created_ts < window_end)).scalars()]
        return IdbRead.hashed_here(rows, open_guids)

    def read_guids(self, guids: Sequence[str]) -> RawSessions:
        if not guids:
            return RawSessions.empty()
        return RawSessions.concat([
            self._fetch(_G.c.loginsessionid.in_(list(guids[i:i + 1000])))
            for i in range(0, len(guids), 1000)])

    @contextmanager
    def _connection(self) -> Iterator[sa.Connection]:
        engine = sa.create_engine(sqlalchemy_url(self.url))
        try:
            with engine.connect() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise SourceError(_describe(exc), source=self.name) from exc
        finally:
            engine.dispose()

    def _fetch(self, condition: sa.ColumnElement[bool]) -> RawSessions:
        c = _G.c
        query = sa.select(c.loginsessionid, c.agentid, c.loginid, c.placeid, c.primarydeviceid,
                          c.created_ts, c.terminated_ts, c.providertag).where(condition)
        batches: list[RawSessions] = []
        with self._connection() as connection:
            result = connection.execution_options(stream_results=True).execute(query)
            while chunk := result.fetchmany(_BATCH_ROWS):
                batches.append(_rows_to_arrays(chunk))
        return RawSessions.concat(batches)


def _rows_to_arrays(chunk: Sequence[Sequence[Any]]) -> RawSessions:
    guid_hi, guid_lo = guid_hashes([str(row[0]) for row in chunk])
    columns = list(zip(*chunk, strict=True))

    def ints(values: tuple[object, ...]) -> Int64Array:
        return np.fromiter((NULL if v is None else int(cast(int, v)) for v in values),
                           dtype=np.int64, count=len(values))

    return RawSessions(
        guid_hi=guid_hi,
        guid_lo=guid_lo,
        agent=ints(columns[1]), login=ints(columns[2]), place=ints(columns[3]),
        dn=ints(columns[4]), created=ints(columns[5]), terminated=ints(columns[6]),
        provider_tag=ints(columns[7]),
    )


def _describe(exc: BaseException) -> str:
    """The first line of a driver error, without the driver's class names."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = text[0] if text else exc.__class__.__name__
    if "does not exist" in first and "relation" in first:
        return f"{first} (is this an ICON database with G_LOGIN_SESSION?)"
    return first
