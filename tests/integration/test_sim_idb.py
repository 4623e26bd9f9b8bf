"""Simulated IDBs in a real PostgreSQL server: HA copies, outage, open and bad rows, and
byte-for-byte reproducibility."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lrm.sim import SimManifest, SimParams, run_simulation
from lrm.sim.idb import copy_out
from lrm.sim.timeline import parse_iso_utc
from lrm.store.db import drop_database, libpq_url
from lrm.store.embedded import EmbeddedPostgres, free_tcp_ports

BAD_ROWS = 2
TIMEZONE = "Europe/Berlin"
COLUMNS = ("id", "loginsessionid", "agentid", "loginid", "placeid", "state", "primarydeviceid",
           "created", "terminated", "created_ts", "terminated_ts", "providertag", "gsys_domain",
           "gsys_seq", "gsys_useq")


@pytest.fixture(scope="module")
def sim(pg_server: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory,
        ) -> Iterator[SimManifest]:
    prefix = f"idb_{uuid.uuid4().hex[:8]}_"
    manifest = run_simulation(
        SimParams(tenants=3, agents_per_tenant=20, days=3, seed=1, bad_rows=BAD_ROWS,
                  timezone=TIMEZONE),
        tmp_path_factory.mktemp("sim"), today=date(2026, 11, 25), pg_admin_url=pg_server.url(),
        db_prefix=prefix, gateway_port=0, gvp_ports=(0, 0))
    yield manifest
    for idb in manifest.idbs:
        drop_database(pg_server.url(), idb.database)


def _rows(url: str) -> dict[str, dict[str, Any]]:
    with psycopg.connect(libpq_url(url)) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(COLUMNS)} FROM g_login_session")
        return {row[1]: dict(zip(COLUMNS, row, strict=True)) for row in cur.fetchall()}


def _query(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(url)) as conn:
        return conn.execute(sql).fetchall()   # type: ignore[arg-type]


def _pair(sim: SimManifest) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    a, b = sim.idbs
    assert (a.name, b.name) == ("icon-1a", "icon-1b")
    assert a.ha_pair == b.ha_pair == "site-1"
    return _rows(a.url), _rows(b.url)


def _bad_guids(sim: SimManifest, *kinds: str) -> set[str]:
    return {g for idb in sim.idbs for kind in kinds for g in idb.bad_guids[kind]}


def test_copies_agree_exactly_outside_the_outage_window(sim: SimManifest) -> None:
    """Every session not touched by the outage has identical columns in both IDBs except the
    local ID and GSYS_DOMAIN (compared by LOGINSESSIONID)."""
    rows_a, rows_b = _pair(sim)
    (outage,) = sim.outages
    start, end = outage["start_ts"], outage["end_ts"]
    conflicting = _bad_guids(sim, "conflicting_agent")
    compared = 0
    for guid, a in rows_a.items():
        touched = start <= a["created_ts"] < end or (
            a["terminated_ts"] is not None and start <= a["terminated_ts"] < end)
        if touched:
            continue
        b = rows_b[guid]
        assert a["id"] != b["id"]
        assert a["gsys_domain"] != b["gsys_domain"]
        same = {k: v for k, v in a.items() if k not in ("id", "gsys_domain")}
        other = {k: v for k, v in b.items() if k not in ("id", "gsys_domain")}
        if guid in conflicting:
            assert same.pop("agentid") != other.pop("agentid")
        assert same == other
        compared += 1
    assert compared > 0.9 * len(rows_a)
    assert set(rows_b) <= set(rows_a)


def test_outage_rows_are_missing_or_lack_their_end_in_copy_b_only(sim: SimManifest) -> None:
    """Sessions started in the window are absent from copy B; sessions ended in it are in B
    open (NULL end, STATE 0); copy A has all of them complete."""
    rows_a, rows_b = _pair(sim)
    (outage,) = sim.outages
    assert outage["idb"] == "icon-1b"
    start, end = outage["start_ts"], outage["end_ts"]
    missing = [g for g, a in rows_a.items() if start <= a["created_ts"] < end]
    open_in_b = [g for g, a in rows_a.items() if g not in missing
                 and a["terminated_ts"] is not None and start <= a["terminated_ts"] < end]
    assert missing
    assert open_in_b
    assert not set(missing) & set(rows_b)
    for guid in open_in_b:
        assert rows_a[guid]["state"] == 1
        assert rows_a[guid]["terminated"] is not None
        b = rows_b[guid]
        assert (b["terminated"], b["terminated_ts"], b["state"]) == (None, None, 0)
    b_info = sim.idbs[1]
    assert (b_info.missing_by_outage, b_info.end_lost_by_outage) == (len(missing),
                                                                     len(open_in_b))
    assert len(rows_b) == len(rows_a) - len(missing)


def test_open_sessions_have_null_ends_and_state_0(sim: SimManifest) -> None:
    """An open session has TERMINATED and TERMINATED_TS NULL and STATE 0; a finished one has
    both ends and STATE 1; CREATED/TERMINATED match their epoch columns."""
    for idb in sim.idbs:
        ((inconsistent, open_count, total),) = _query(idb.url, """
            SELECT count(*) FILTER (WHERE (terminated IS NULL) <> (terminated_ts IS NULL)
                                       OR (terminated_ts IS NULL AND state <> 0)
                                       OR (terminated_ts IS NOT NULL AND state <> 1)
                                       OR created <> to_timestamp(created_ts) AT TIME ZONE 'UTC'
                                       OR terminated <> to_timestamp(terminated_ts)
                                                        AT TIME ZONE 'UTC'),
                   count(*) FILTER (WHERE terminated_ts IS NULL),
                   count(*)
            FROM g_login_session""")
        assert inconsistent == 0
        assert open_count == idb.open > 0
        assert total == idb.rows
    assert sim.counts["sessions"]["open"] > 0


def test_every_reference_exists_except_the_deliberate_bad_rows(sim: SimManifest) -> None:
    """Every row's person, place and DN exist in config.json, except exactly `bad_rows`
    unknown-person, unknown-place and unknown-DN rows per IDB."""
    config = json.loads((sim.out_dir / "config.json").read_text())
    known = {key: {o["DBID"] for o in config[key]} for key in ("persons", "places", "dns")}
    for idb in sim.idbs:
        rows = _rows(idb.url)
        unknown_person = {g for g, r in rows.items() if r["agentid"] not in known["persons"]}
        unknown_place = {g for g, r in rows.items()
                         if r["placeid"] is not None and r["placeid"] not in known["places"]}
        unknown_dn = {g for g, r in rows.items() if r["primarydeviceid"] not in (None, 0)
                      and r["primarydeviceid"] not in known["dns"]}
        assert unknown_person == set(idb.bad_guids["unknown_person"])
        assert unknown_place == set(idb.bad_guids["unknown_place"])
        assert unknown_dn == set(idb.bad_guids["unknown_dn"])
        assert len(unknown_person) == len(unknown_place) == len(unknown_dn) == BAD_ROWS


def test_time_and_agent_bad_rows_are_exactly_as_many_as_asked(sim: SimManifest) -> None:
    """Each IDB has `bad_rows` rows ending before they start and with CREATED_TS years ahead,
    and the pair shares `bad_rows` GUIDs whose AGENTID differs between the copies."""
    year_after_end = parse_iso_utc(sim.period["end_utc"]) + 365 * 86_400
    for idb in sim.idbs:
        ((backwards, future),) = _query(idb.url, f"""
            SELECT count(*) FILTER (WHERE terminated_ts < created_ts),
                   count(*) FILTER (WHERE created_ts > {year_after_end})
            FROM g_login_session""")
        assert (backwards, future) == (BAD_ROWS, BAD_ROWS)
        assert idb.bad_rows == {"end_before_start": BAD_ROWS, "future_created": BAD_ROWS,
                                "unknown_place": BAD_ROWS, "unknown_dn": BAD_ROWS,
                                "unknown_person": BAD_ROWS, "conflicting_agent": BAD_ROWS}
    rows_a, rows_b = _pair(sim)
    differing = {g for g, a in rows_a.items() if g in rows_b
                 and a["agentid"] != rows_b[g]["agentid"]}
    assert differing == set(sim.idbs[0].bad_guids["conflicting_agent"])
    assert len(differing) == BAD_ROWS


def test_zero_length_and_night_shift_sessions_exist(sim: SimManifest) -> None:
    """The IDBs hold zero-length sessions and night-shift sessions across local midnight that
    start in the local evening."""
    local = f"AT TIME ZONE 'UTC' AT TIME ZONE '{TIMEZONE}'"
    ((zero, across, evening),) = _query(sim.idbs[0].url, f"""
        SELECT count(*) FILTER (WHERE created_ts = terminated_ts),
               count(*) FILTER (WHERE (created {local})::date < (terminated {local})::date),
               count(*) FILTER (WHERE (created {local})::date < (terminated {local})::date
                                  AND extract(hour FROM created {local}) >= 20)
        FROM g_login_session""")
    assert zero > 0
    assert across > 0
    assert evening > 0
    assert sim.counts["sessions"]["zero_length"] > 0
    assert sim.counts["sessions"]["across_local_midnight"] > 0


def test_idb_schema_matches_the_spec_subset(sim: SimManifest) -> None:
    """G_LOGIN_SESSION has exactly the SPEC §4.1 columns (lower-case, unquoted), with the
    research §5.1 indexes and a G_DSS_GLS_PROVIDER row per data-source connection."""
    url = sim.idbs[1].url
    columns = [r[0] for r in _query(url, """
        SELECT column_name FROM information_schema.columns
        WHERE table_name = 'g_login_session' ORDER BY ordinal_position""")]
    assert tuple(columns) == COLUMNS
    indexes = {r[0] for r in _query(url, "SELECT indexname FROM pg_indexes "
                                         "WHERE tablename = 'g_login_session'")}
    assert {"i_g_login_session_cts", "i_g_login_session_tts",
            "i_g_login_session_lsid"} <= indexes
    dss = _query(url, "SELECT dss_id, dsconn_etime IS NULL FROM g_dss_gls_provider ORDER BY 1")
    assert dss == [(201, False), (202, False), (203, True), (204, True)]
    domains = {r[0] for r in _query(url, "SELECT DISTINCT gsys_domain FROM g_login_session")}
    assert domains <= {201, 202, 203, 204}
    ((next_id,),) = _query(url, "SELECT nextval(pg_get_serial_sequence('g_login_session', "
                                "'id')) > max(id) FROM g_login_session")
    assert next_id


def _fingerprint(manifest: SimManifest) -> dict[str, str]:
    digests = {idb.database.split("_", 2)[-1]: hashlib.sha256(copy_out(idb.url)).hexdigest()
               for idb in manifest.idbs}
    for name in manifest.files:
        digests[name] = hashlib.sha256((manifest.out_dir / name).read_bytes()).hexdigest()
    return digests


def test_same_seed_reproduces_every_byte_and_another_seed_differs(
        pg_server: EmbeddedPostgres, tmp_path: Path) -> None:
    """Two runs with one seed give identical IDB contents (COPY out) and identical files;
    another seed gives different ones."""
    prefix = f"idb_{uuid.uuid4().hex[:8]}_"
    ports = tuple(free_tcp_ports(3))

    def run(seed: int, out: str) -> SimManifest:
        return run_simulation(
            SimParams(tenants=2, agents_per_tenant=8, days=2, seed=seed, bad_rows=1),
            tmp_path / out, today=date(2026, 11, 25), pg_admin_url=pg_server.url(),
            db_prefix=prefix, gateway_port=ports[0], gvp_ports=(ports[1], ports[2]))

    try:
        first = _fingerprint(run(7, "one"))
        second = _fingerprint(run(7, "two"))
        third = _fingerprint(run(8, "three"))
    finally:
        for suffix in ("site1_a", "site1_b"):
            drop_database(pg_server.url(), prefix + suffix)
    assert first == second
    assert len(first) == 2 + 8
    for key in ("site1_a", "site1_b", "config.json", "config_changes.json", "gvp_counts.npy",
                "manifest.json"):
        assert first[key] != third[key], key
