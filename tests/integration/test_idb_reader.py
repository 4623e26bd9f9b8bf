"""The IDB reader's two paths — PostgreSQL binary COPY and portable SQLAlchemy Core — read the
same rows from a real IDB, and unreachable or wrong databases give errors naming the source."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from functools import partial
from importlib import resources
from pathlib import Path

import numpy as np
import psycopg
import pytest

from lrm.domain.calendar import business_day
from lrm.domain.errors import SourceError
from lrm.settings import load_settings
from lrm.sim.model import SimParams
from lrm.sim.run import run_simulation
from lrm.sources.idb import IdbReader, PortableReader, PostgresCopyReader, guid_hashes
from lrm.store.db import libpq_url
from lrm.store.embedded import EmbeddedPostgres

TODAY = date(2026, 11, 20)


def test_copy_and_portable_paths_agree(pg_server: EmbeddedPostgres, tmp_path: Path) -> None:
    """Both readers return the same rows (sorted by GUID hash), the same open GUIDs and GUID
    keys, and the same rows when asked by GUID; the PostgreSQL reader's packed read and its
    per-row COPY (taken when the server refuses a packed read as too large) agree too, and an
    empty window is an empty read."""
    run_simulation(SimParams(tenants=2, agents_per_tenant=6, days=2, seed=9, bad_rows=1),
                   tmp_path, today=TODAY, pg_admin_url=pg_server.url(),
                   db_prefix=f"idb_{uuid.uuid4().hex[:6]}_", gateway_port=0, gvp_ports=(0, 0))
    icon = load_settings(tmp_path / "lrm.toml", environ={}).icon[1]
    day = business_day(TODAY - timedelta(days=1), "UTC")
    fast = PostgresCopyReader(icon.name, icon.url, 60).read(day.start_ts, day.end_ts,
                                                            day.end_ts + 86_400)
    portable = PortableReader(icon.name, icon.url).read(day.start_ts, day.end_ts,
                                                        day.end_ts + 86_400)
    assert len(fast.rows) > 20

    def ordered(rows: object) -> dict[str, list[int]]:
        order = np.lexsort((rows.guid_lo, rows.guid_hi))  # type: ignore[attr-defined]
        return {name: getattr(rows, name)[order].tolist() for name in (
            "guid_hi", "guid_lo", "agent", "login", "place", "dn", "created", "terminated",
            "provider_tag")}

    per_row = PostgresCopyReader(icon.name, icon.url, 60, packed=False).read(
        day.start_ts, day.end_ts, day.end_ts + 86_400)
    assert ordered(fast.rows) == ordered(portable.rows) == ordered(per_row.rows)
    assert sorted(fast.open_guids) == sorted(portable.open_guids)
    for read in (fast, portable):
        keys = dict(zip(read.open_guids, zip(*(k.tolist() for k in read.open_keys),
                                             strict=True), strict=True))
        assert keys == dict(zip(portable.open_guids, zip(*(k.tolist() for k in guid_hashes(
            portable.open_guids)), strict=True), strict=True))
    nothing = PostgresCopyReader(icon.name, icon.url, 60).read(0, 1, 2**31 - 1)
    assert len(nothing.rows) == 0 and nothing.open_guids == []
    guids = fast.open_guids[:3]
    assert ordered(PostgresCopyReader(icon.name, icon.url, 60).read_guids(guids)) == ordered(
        PortableReader(icon.name, icon.url).read_guids(guids))


# (GUID, CREATED_TS, TERMINATED_TS, read for the window [10_000, 20_000) with future after
# 100_000?)
_WINDOW_CASES = [
    ("ended-long-before", 1_000, 2_000, False),
    ("ended-at-the-start", 5_000, 10_000, True),     # empty overlap, harmless to read
    ("across-the-start", 5_000, 15_000, True),
    ("across-the-window", 5_000, 30_000, True),
    ("open-since-before", 5_000, None, True),
    ("inside", 12_000, 13_000, True),
    ("open-inside", 12_000, None, True),
    ("zero-length-inside", 12_000, 12_000, True),
    ("at-the-end", 20_000, 25_000, False),
    ("after", 25_000, 26_000, False),
    ("open-after", 50_000, None, False),
    ("end-before-start-inside", 15_000, 14_000, True),
    ("end-before-start-earlier", 5_000, 4_000, False),  # set aside in its own day's run
    ("end-before-start-across", 12_000, 9_000, True),
    ("far-future", 200_000, None, True),
]


@pytest.mark.parametrize("reader", [partial(PostgresCopyReader, read_timeout_s=60),
                                    PortableReader], ids=["copy", "portable"])
def test_the_window_reads_what_the_day_needs(reader: Callable[[str, str], IdbReader],
                                             empty_db_url: str) -> None:
    """Rows overlapping the window, open rows created before its end, rows created in it that
    end before they start, and rows in the far future; not the history before the window
    (through the IDB's indexes: see SESSION_WINDOW)."""
    with psycopg.connect(libpq_url(empty_db_url), autocommit=True) as connection:
        connection.execute(resources.files("lrm.sim").joinpath(
            "sql", "idb_schema.sql").read_text(encoding="utf-8"))
        connection.execute(resources.files("lrm.sim").joinpath(
            "sql", "idb_indexes.sql").read_text(encoding="utf-8"))
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO g_login_session (loginsessionid, agentid, state, created, "
                "created_ts, terminated_ts, providertag) "
                "VALUES (%s, 1, 0, now(), %s, %s, 1)",
                [(guid, created, terminated) for guid, created, terminated, _ in _WINDOW_CASES])
    read = reader("icon-w", empty_db_url).read(10_000, 20_000, 100_000)
    by_key = {key: guid for guid, key in zip(
        (c[0] for c in _WINDOW_CASES),
        zip(*(k.tolist() for k in guid_hashes([c[0] for c in _WINDOW_CASES])), strict=True),
        strict=True)}
    got = sorted(by_key[key] for key in zip(read.rows.guid_hi.tolist(),
                                            read.rows.guid_lo.tolist(), strict=True))
    assert got == sorted(guid for guid, *_, wanted in _WINDOW_CASES if wanted)
    assert sorted(read.open_guids) == ["open-inside", "open-since-before"]


@pytest.mark.parametrize("reader", [partial(PostgresCopyReader, read_timeout_s=60),
                                    PortableReader], ids=["copy", "portable"])
def test_errors_name_the_source(reader: Callable[[str, str], IdbReader],
                                empty_db_url: str) -> None:
    """A refused connection and a database without G_LOGIN_SESSION are SourceErrors naming the
    IDB."""
    with pytest.raises(SourceError, match=r"^icon-x: .*(refused|connect)"):
        reader("icon-x", "postgresql://postgres@127.0.0.1:1/none").read(0, 1, 2)
    with pytest.raises(SourceError, match=r"icon-y: .*g_login_session.*ICON database"):
        reader("icon-y", empty_db_url).read(0, 1, 2)


def test_a_silent_idb_is_abandoned_after_read_timeout_s(empty_db_url: str) -> None:
    """An IDB that stops sending (here: a query that sleeps, as a server behind a dead switch
    looks to the client) fails the read with a message naming read_timeout_s, after about that
    long, instead of holding the job for as long as TCP keeps the connection."""
    with psycopg.connect(libpq_url(empty_db_url), autocommit=True) as connection:
        connection.execute(
            "CREATE TABLE idb_rows (loginsessionid text, agentid int, loginid int, placeid int, "
            "primarydeviceid int, created_ts bigint, terminated_ts bigint, providertag int)")
        connection.execute("CREATE VIEW g_login_session AS SELECT idb_rows.* FROM idb_rows, "
                           "pg_sleep(20) UNION ALL SELECT 'x', 1, 1, 1, 1, 0, 1, 1")
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"^icon-z: no data from the IDB for 1 s "
                                          r"\(read_timeout_s\)"):
        PostgresCopyReader("icon-z", empty_db_url, read_timeout_s=1).read(0, 10, 20)
    assert time.monotonic() - started < 5
