"""Create simulated ICON databases (IDBs) in a PostgreSQL server and bulk-load their rows.

One database per IDB copy (`{prefix}site1_a`, `{prefix}site1_b`, …). Rows go in with one binary
`COPY … FROM STDIN` per database (psycopg 3, vectorised encoding in `lrm.sim.pgcopy`); the indexes
are built after the load. An existing database of the same name is replaced.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

import psycopg
from sqlalchemy.engine import make_url

from lrm.domain.errors import DatabaseError
from lrm.sim.copies import DssRow, IdbCopy
from lrm.sim.pgcopy import Column, iter_copy_binary
from lrm.sim.sessions import NULL, OPEN
from lrm.store.db import drop_database, ensure_database, libpq_url

COPY_COLUMNS = ("id", "loginsessionid", "agentid", "loginid", "placeid", "state",
                "primarydeviceid", "created", "terminated", "created_ts", "terminated_ts",
                "providertag", "gsys_domain", "gsys_seq", "gsys_useq")


def _sql(name: str) -> str:
    return resources.files("lrm.sim").joinpath("sql", name).read_text(encoding="utf-8")


def database_url(admin_url: str, database: str) -> str:
    """The URL of `database` on the server of `admin_url` (same user, host, port, options)."""
    return make_url(admin_url).set(database=database).render_as_string(hide_password=False)


@dataclass(frozen=True)
class LoadedIdb:
    """One IDB as created: its lrm name (`icon-1a`), database name, URL, HA pair, row count."""

    name: str
    database: str
    url: str
    ha_pair: str | None
    rows: int
    seconds: float


def icon_name(idb: IdbCopy) -> str:
    return f"icon-{idb.pair + 1}{idb.copy}"


def session_columns(idb: IdbCopy) -> list[Column]:
    """The G_LOGIN_SESSION columns of `idb` in COPY_COLUMNS order."""
    r = idb.rows
    open_ = r.terminated_ts == OPEN
    return [
        Column("int8", r.id),
        Column("bytes", r.guid),
        Column("int4", r.agent, r.agent == NULL),
        Column("int4", r.login, r.login == NULL),
        Column("int4", r.place, r.place == NULL),
        Column("int4", r.state),
        Column("int4", r.dn, r.dn == NULL),
        Column("timestamp", r.created_ts),
        Column("timestamp", r.terminated_ts, open_),
        Column("int4", r.created_ts),
        Column("int4", r.terminated_ts, open_),
        Column("int4", r.provider_tag),
        Column("int4", r.gsys_domain),
        Column("int8", r.gsys_seq),
        Column("int8", r.gsys_useq, r.gsys_useq == NULL),
    ]


def _naive_utc(ts: int | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)


def _dss_params(row: DssRow) -> tuple[object, ...]:
    return (row.dss_id, row.icon_dbid, row.ds_dbid, row.ds_dbid, row.ds_type,
            _naive_utc(row.dsconn_stime), _naive_utc(row.dsconn_stime), row.dsconn_stime, 1,
            _naive_utc(row.dsconn_etime))


def load_idb(admin_url: str, database: str, idb: IdbCopy) -> LoadedIdb:
    """(Re)create `database` on the server of `admin_url` and load `idb` into it."""
    started = time.perf_counter()
    url = database_url(admin_url, database)
    drop_database(admin_url, database)
    ensure_database(admin_url, database)
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=10) as conn:
            conn.execute("SET synchronous_commit = off")
            conn.execute(_sql("idb_schema.sql"))
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO G_DSS_GLS_PROVIDER (DSS_ID, ICON_DBID, DS_DBID, DS_DBID_PRIM,"
                    " DS_TYPE, ICON_STIME, DSCONN_STIME, DSCONN_SDSTS, DSCONN_TYPE, DSCONN_ETIME)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [_dss_params(row) for row in idb.dss])
                with cur.copy(f"COPY G_LOGIN_SESSION ({', '.join(COPY_COLUMNS)})"
                              " FROM STDIN (FORMAT BINARY)") as copy:
                    for chunk in iter_copy_binary(session_columns(idb)):
                        copy.write(chunk)
            conn.execute(_sql("idb_indexes.sql"))
    except psycopg.Error as exc:
        raise DatabaseError(f"could not load IDB {database!r}: {exc.__class__.__name__}: "
                            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                            ) from exc
    return LoadedIdb(name=icon_name(idb), database=database, url=url,
                     ha_pair=idb.ha_pair if idb.copy else None, rows=len(idb.rows),
                     seconds=time.perf_counter() - started)


def idb_database_name(prefix: str, idb: IdbCopy) -> str:
    return f"{prefix}{idb.suffix}"


def copy_out(url: str, *, table: str = "g_login_session") -> bytes:
    """`COPY (SELECT * FROM table ORDER BY 1) TO STDOUT`: the table's content as text, for
    comparisons (tests, reproducibility checks)."""
    if table not in ("g_login_session", "g_dss_gls_provider"):
        raise ValueError(f"unknown IDB table {table!r}")
    chunks: list[bytes] = []
    with psycopg.connect(libpq_url(url)) as conn, conn.cursor() as cur, cur.copy(
            f"COPY (SELECT * FROM {table} ORDER BY 1) TO STDOUT") as copy:
        chunks.extend(bytes(block) for block in copy)
    return b"".join(chunks)


def count_rows(url: str) -> int:
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute("SELECT count(*) FROM g_login_session").fetchone()
    return int(row[0]) if row else 0

