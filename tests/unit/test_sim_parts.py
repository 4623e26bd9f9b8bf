"""Pure building blocks of the simulators: binary COPY encoding, GVP series, the timeline."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from lrm.sim.gvpdata import GvpData
from lrm.sim.pgcopy import PG_EPOCH, SIGNATURE, TRAILER, Column, iter_copy_binary
from lrm.sim.timeline import ConfigChange, ConfigTimeline, iso_utc, parse_iso_utc


def _decode(stream: bytes, kinds: list[str]) -> list[tuple[object, ...]]:
    """A straightforward reader of the binary COPY format (the oracle)."""
    assert stream.startswith(SIGNATURE)
    assert stream.endswith(TRAILER)
    pos, rows = len(SIGNATURE), []
    while pos < len(stream) - len(TRAILER):
        (count,) = struct.unpack_from(">h", stream, pos)
        pos += 2
        row: list[object] = []
        for kind in kinds[:count]:
            (length,) = struct.unpack_from(">i", stream, pos)
            pos += 4
            if length == -1:
                row.append(None)
                continue
            raw = stream[pos:pos + length]
            pos += length
            if kind == "bytes":
                row.append(raw)
            elif kind == "timestamp":
                row.append(struct.unpack(">q", raw)[0] // 1_000_000 + PG_EPOCH)
            else:
                row.append(int.from_bytes(raw, "big", signed=True))
        rows.append(tuple(row))
    return rows


def test_binary_copy_encoding_round_trips_with_nulls() -> None:
    """Vectorised encoding gives exactly the rows, NULLs and byte order PostgreSQL expects."""
    rng = np.random.default_rng(0)
    n = 1000
    ids = np.arange(1, n + 1, dtype=np.int64)
    small = rng.integers(-2**31, 2**31 - 1, size=n).astype(np.int32)
    null = rng.random(n) < 0.3
    ts = rng.integers(1_700_000_000, 1_800_000_000, size=n)
    text = np.array([f"{i:036d}".encode() for i in range(n)], dtype="S36")
    columns = [Column("int8", ids), Column("int4", small, null), Column("bytes", text),
               Column("timestamp", ts, ~null), Column("int2", (ids % 7).astype(np.int16))]
    stream = b"".join(iter_copy_binary(columns, chunk_rows=97))
    decoded = _decode(stream, ["int8", "int4", "bytes", "timestamp", "int2"])
    expected = [(int(ids[i]), None if null[i] else int(small[i]), bytes(text[i]),
                 int(ts[i]) if null[i] else None, int(ids[i] % 7)) for i in range(n)]
    assert decoded == expected


def test_binary_copy_refuses_ragged_columns() -> None:
    """Columns of different lengths are a programming error, caught before encoding."""
    with pytest.raises(ValueError, match="same length"):
        list(iter_copy_binary([Column("int4", np.zeros(2, np.int32)),
                               Column("int4", np.zeros(3, np.int32))]))


def _gvp() -> GvpData:
    counts = np.zeros((3, 2, 24), dtype=np.int32)     # 2 tenants, 2 hours of 5-minute bins
    counts[0, 0] = np.arange(24)
    counts[0, 1] = 100 - np.arange(24)
    return GvpData(start_ts=1_800_000_000 - 1_800_000_000 % 3600, tenant_ids=(101, 102),
                   counts=counts)


def test_gvp_series_sums_tenants_and_takes_bucket_maxima() -> None:
    """System = per-bin sum; a coarser bucket is the max of its bins; outside data is 0."""
    gvp = _gvp()
    start = gvp.start_ts
    assert gvp.series("RM", None, start, start + 600) == [(start, 100), (start + 300, 100)]
    assert gvp.series("RM", [101], start, start + 3600, 1800) == [(start, 5),
                                                                   (start + 1800, 11)]
    assert gvp.series("RM", [102, 999], start, start + 3600, 3600) == [(start, 100)]
    assert gvp.series("RM", [999], start, start + 600) == [(start, 0), (start + 300, 0)]
    before = gvp.series("RM", None, start - 600, start + 300)
    assert before == [(start - 600, 0), (start - 300, 0), (start, 100)]
    after = gvp.series("ASR", None, gvp.end_ts - 300, gvp.end_ts + 300)
    assert after == [(gvp.end_ts - 300, 0), (gvp.end_ts, 0)]


def test_timeline_replays_changes_in_time_order() -> None:
    """The document at an instant has every change up to and including that instant."""
    empty = {k: [] for k in ("tenants", "switches", "dns", "places", "persons",
                             "agent-groups", "place-groups")}
    initial = {**empty, "tenants": [{"DBID": 101, "name": "Acme", "state": 1}]}
    changes = [
        ConfigChange(at=200, key="tenants", op="upsert",
                     obj={"DBID": 101, "name": "Acme", "state": 2}, what="disabled"),
        ConfigChange(at=100, key="tenants", op="upsert",
                     obj={"DBID": 102, "name": "Globex", "state": 1}, what="created"),
        ConfigChange(at=300, key="tenants", op="delete", obj={"DBID": 102}, what="deleted"),
    ]
    timeline = ConfigTimeline(initial, changes)
    assert timeline.document_at(99)["tenants"] == initial["tenants"]
    assert [t["DBID"] for t in timeline.document_at(100)["tenants"]] == [101, 102]
    assert timeline.document_at(250)["tenants"][0]["state"] == 2
    assert [t["DBID"] for t in timeline.final()["tenants"]] == [101]
    restored = [ConfigChange.from_json(c) for c in timeline.changes_json()]
    assert restored == timeline.changes


def test_iso_instants_round_trip() -> None:
    """`Z`, offsets and naive (UTC) ISO 8601 instants all parse to the same epoch seconds."""
    assert iso_utc(1_795_000_000) == "2026-11-18T11:06:40Z"
    for text in ("2026-11-18T11:06:40Z", "2026-11-18T12:06:40+01:00", "2026-11-18T11:06:40",
                 "2026-11-18T11:06:40.000Z"):
        assert parse_iso_utc(text) == 1_795_000_000
    with pytest.raises(ValueError):
        parse_iso_utc("yesterday")
