"""The IDB reader's two paths — PostgreSQL binary COPY and portable SQLAlchemy Core — read the
same rows from a real IDB, and unreachable or wrong databases give errors naming the source."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from functools import partial
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
