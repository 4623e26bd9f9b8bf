"""PostgreSQL binary COPY encoding of numpy columns, vectorised (pure).

The binary format is a signature and header, then per row a 16-bit field count and per field a
32-bit length (-1 for NULL) followed by the value in network byte order, then a trailer. Rows have
different lengths (NULLs carry no data), so each row's start offset is a cumulative sum and every
column is scattered into one byte buffer with fancy indexing: no per-row Python code.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
PG_EPOCH = 946_684_800          # 2000-01-01T00:00:00Z in Unix seconds

Kind = Literal["int2", "int4", "int8", "timestamp", "bytes"]
_WIDTH = {"int2": 2, "int4": 4, "int8": 8, "timestamp": 8}
_DTYPE = {"int2": ">i2", "int4": ">i4", "int8": ">i8", "timestamp": ">i8"}


@dataclass(frozen=True)
class Column:
    """One column to encode. `values` holds integers (for `timestamp`: Unix epoch seconds) or
    fixed-width byte strings (`bytes`, e.g. an S36 array for a varchar column). `null` marks
    NULLs (None: no NULLs)."""

    kind: Kind
    values: npt.NDArray[np.generic]
    null: npt.NDArray[np.bool_] | None = None

    def width(self) -> int:
        if self.kind == "bytes":
            return int(self.values.dtype.itemsize)
        return _WIDTH[self.kind]

    def payload(self, rows: slice) -> npt.NDArray[np.uint8]:
        """The big-endian bytes of each value, shape (rows, width)."""
        values = self.values[rows]
        if self.kind == "bytes":
            raw = np.ascontiguousarray(values).view(np.uint8)
        else:
            if self.kind == "timestamp":
                values = (values.astype(np.int64) - PG_EPOCH) * 1_000_000
            raw = np.ascontiguousarray(values.astype(_DTYPE[self.kind])).view(np.uint8)
        return raw.reshape(len(values), self.width())


def _scatter(buf: npt.NDArray[np.uint8], pos: npt.NDArray[np.int64],
             data: npt.NDArray[np.uint8]) -> None:
    if len(pos):
        buf[pos[:, None] + np.arange(data.shape[1])] = data


def encode_rows(columns: Sequence[Column], rows: slice) -> bytes:
    """The binary COPY rows (no signature, no trailer) of `rows`."""
    n = len(columns[0].values[rows])
    present = [np.ones(n, dtype=np.bool_) if c.null is None else ~c.null[rows] for c in columns]
    row_len = np.full(n, 2 + 4 * len(columns), dtype=np.int64)
    for column, ok in zip(columns, present, strict=True):
        row_len += ok * column.width()
    starts = np.zeros(n, dtype=np.int64)
    np.cumsum(row_len[:-1], out=starts[1:])
    buf = np.empty(int(row_len.sum()), dtype=np.uint8)
    count = np.frombuffer(len(columns).to_bytes(2, "big"), dtype=np.uint8)
    _scatter(buf, starts, np.broadcast_to(count, (n, 2)))
    pos = starts + 2
    minus_one = np.frombuffer(b"\xff\xff\xff\xff", dtype=np.uint8)
    for column, ok in zip(columns, present, strict=True):
        width = column.width()
        length = np.frombuffer(width.to_bytes(4, "big"), dtype=np.uint8)
        lengths = np.where(ok[:, None], length[None, :], minus_one[None, :]).astype(np.uint8)
        _scatter(buf, pos, lengths)
        pos += 4
        _scatter(buf, pos[ok], column.payload(rows)[ok])
        pos += ok * width
    return buf.tobytes()


def iter_copy_binary(columns: Sequence[Column], *, chunk_rows: int = 100_000) -> Iterator[bytes]:
    """The whole binary COPY stream (signature, rows, trailer) in chunks of bounded size."""
    n = len(columns[0].values)
    if any(len(c.values) != n or (c.null is not None and len(c.null) != n) for c in columns):
        raise ValueError("all columns must have the same length")
    yield SIGNATURE
    for first in range(0, n, chunk_rows):
        yield encode_rows(columns, slice(first, min(first + chunk_rows, n)))
    yield TRAILER
