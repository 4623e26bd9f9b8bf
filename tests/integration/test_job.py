"""The nightly job end to end: real PostgreSQL IDBs (an HA pair with an outage), the real
configuration gateway and GVP pair over HTTP, results compared with the brute-force oracle."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from lrm.domain.bundles import Bundle, BundleSet
from lrm.domain.calendar import business_day
from lrm.domain.items import build_catalogue
from lrm.domain.sessions import SessionTable
from lrm.job.runner import NightlyJob
from lrm.settings import Settings, load_settings
from lrm.sim.model import SimParams, generate
from lrm.sim.run import run_simulation
from lrm.sim.servers import SimulatorServers
from lrm.store import catalog, config_samples, job_runs
from lrm.store.embedded import EmbeddedPostgres
from lrm.store.schema import usage_daily
from tests.oracle import oracle_count

TODAY = date(2026, 11, 20)
PARAMS = SimParams(tenants=2, agents_per_tenant=8, days=2, seed=7, timezone="Europe/Berlin")


@dataclass
class Sim:
    folder: Path
    servers: SimulatorServers
    params: SimParams


@pytest.fixture(scope="module")
def sim(pg_server: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    """A small simulated contact centre, served for the whole module."""
    folder = tmp_path_factory.mktemp("sim")
    prefix = f"idb_{uuid.uuid4().hex[:6]}_"
    run_simulation(PARAMS, folder, today=TODAY, pg_admin_url=pg_server.url(), db_prefix=prefix,
                   gateway_port=0, gvp_ports=(0, 0))
    with SimulatorServers(folder) as servers:
        yield Sim(folder, servers, PARAMS)


def settings_for(sim: Sim, lrm_db_url: str, **env: str) -> Settings:
    environ = {"LRM_LRM__DATABASE_URL": lrm_db_url, **env}
    return load_settings(sim.folder / "lrm.toml", environ=environ)


def run(settings: Settings, engine: sa.Engine, *days: date) -> list[str]:
    job = NightlyJob(settings, engine, under_lease=False)
    outcomes = job.run_dates(list(days), trigger="manual", epoch=0, cancel=threading.Event())
    return [o.status for o in outcomes]


def daily(engine: sa.Engine, level: str, day: date) -> dict[tuple[int, int], tuple[int, object]]:
    with engine.connect() as c:
        rows = c.execute(sa.select(usage_daily).where(usage_daily.c.level == level,
                                                      usage_daily.c.business_date == day))
        return {(r.subject_id, r.item_id): (r.peak_value, r.peak_time) for r in rows}


def first_day() -> date:
    return TODAY - timedelta(days=PARAMS.days)


BUNDLES = BundleSet(
    id=10000, name="Hosted bundles", description="", issue_date=date(2026, 1, 1),
    valid_from=date(2026, 1, 1), valid_to=date(2026, 12, 31), bundles=(
        Bundle(10001, "Voice without chat", "", include=(2,), exclude=(5,)),
        Bundle(10002, "Any multimedia", "", include=(5, 6), exclude=()),
    ))


def test_job_results_equal_the_oracle(sim: Sim, lrm_db_url: str,
                                      lrm_engine: sa.Engine) -> None:
    """Every stored daily value and peak time — tenants, system, agent and place groups, seat
    items, bundles and enabled agents — equals a per-second brute force over the *true*
    sessions (so HA de-duplication and the outage repair are checked too), with excluded time
    and a DST zone."""
    settings = settings_for(sim, lrm_db_url, LRM_LRM__EXCLUDED_TIME='["12:00-12:30"]')
    with lrm_engine.begin() as c:
        catalog.store_bundle_set(c, BUNDLES, "<lrm_bundle_set/>")
    day_date = first_day() + timedelta(days=1)
    assert run(settings, lrm_engine, day_date) == ["succeeded"]

    dataset = generate(sim.params, today=TODAY)
    truth = dataset.sessions
    sessions = SessionTable.from_columns(
        created=truth.created_ts, terminated=truth.terminated_ts, person=truth.agent,
        place=truth.place, dn=truth.dn, provider_tag=truth.provider_tag)
    day = business_day(day_date, settings.lrm.zone)
    with lrm_engine.connect() as c:
        samples = config_samples.samples_between(
            c, datetime.fromtimestamp(day.start_ts - 30 * 86400, UTC),
            datetime.fromtimestamp(day.end_ts, UTC))
    oracle = oracle_count(day, sessions, [(int(t.timestamp()), d) for t, d in samples],
                          build_catalogue(), BUNDLES, ["12:00-12:30"],
                          int(datetime.now(UTC).timestamp()))

    def at(minute: int) -> datetime | None:
        return datetime.fromtimestamp(day.start_ts + 60 * minute, UTC) if minute >= 0 else None

    compared = 0
    for level in ("tenant", "system", "agent_group", "place_group"):
        stored = daily(lrm_engine, level, day_date)
        for (lvl, subject, item), (value, minute) in oracle.daily.items():
            if lvl == level:
                assert stored[(subject, item)] == (value, at(minute)), (level, subject, item)
                compared += 1
        for (lvl, subject), (value, minute) in oracle.enabled.items():
            if lvl == level:
                assert stored[(subject, 100)] == (value, at(minute)), (level, subject, 100)
    assert compared > 60
    assert any(item == 10001 and value > 0 for (_, _, item), (value, _) in oracle.daily.items())


def test_run_record_names_sources_and_counts(sim: Sim, lrm_db_url: str,
                                             lrm_engine: sa.Engine) -> None:
    """A run records instance, timings, rows read, duplicates removed and per-source outcome,
    and takes GVP values from the primary Reporting Server."""
    settings = settings_for(sim, lrm_db_url)
    assert run(settings, lrm_engine, first_day()) == ["succeeded"]
    with lrm_engine.connect() as c:
        record = job_runs.recent_runs(c, 1)[0]
    assert record.status == "succeeded"
    assert record.instance_id == "lrm-a"
    assert record.sessions_read > 0
    assert record.sessions_deduplicated > 0
    assert record.source_outcome["icon-1a"]["status"] == "ok"
    assert record.source_outcome["gvp"]["servers"] == [sim.servers.urls.gvp_primary]
    assert {"read", "count", "write"} <= set(record.timings)
    gvp = daily(lrm_engine, "system", first_day())
    assert gvp[(0, 200)][0] > 0


def test_one_idb_down_counts_from_its_partner(sim: Sim, lrm_db_url: str,
                                              lrm_engine: sa.Engine,
                                              empty_db_url: str) -> None:
    """With copy B unreachable the job succeeds, records the degraded source, and the outage
    copy's missing ends do not matter: the values equal a run with both copies."""
    day_date = first_day() + timedelta(days=1)
    settings = settings_for(sim, lrm_db_url)
    run(settings, lrm_engine, day_date)
    both = daily(lrm_engine, "tenant", day_date)
    broken = settings_for(sim, lrm_db_url,
                          LRM_ICON__1__URL="postgresql://postgres@127.0.0.1:1/nothing")
    assert run(broken, lrm_engine, day_date) == ["succeeded"]
    with lrm_engine.connect() as c:
        record = job_runs.recent_runs(c, 1)[0]
    assert record.source_outcome["icon-1b"]["status"] == "degraded"
    assert "Connection refused" in record.source_outcome["icon-1b"]["error"] or \
        "connect" in record.source_outcome["icon-1b"]["error"]
    assert daily(lrm_engine, "tenant", day_date) == both


def test_whole_pair_down_fails_and_keeps_previous_results(sim: Sim, lrm_db_url: str,
                                                          lrm_engine: sa.Engine) -> None:
    """Both copies unreachable: the run fails naming both, and the date keeps its results."""
    settings = settings_for(sim, lrm_db_url)
    run(settings, lrm_engine, first_day())
    before = daily(lrm_engine, "tenant", first_day())
    down = settings_for(sim, lrm_db_url,
                        LRM_ICON__0__URL="postgresql://postgres@127.0.0.1:1/a",
                        LRM_ICON__1__URL="postgresql://postgres@127.0.0.1:1/b")
    assert run(down, lrm_engine, first_day()) == ["failed"]
    with lrm_engine.connect() as c:
        record = job_runs.recent_runs(c, 1)[0]
    assert record.status == "failed"
    assert record.error is not None
    assert "icon-1a" in record.error and "icon-1b" in record.error
    assert daily(lrm_engine, "tenant", first_day()) == before


def test_gvp_primary_refusing_fails_over_to_backup(sim: Sim, lrm_db_url: str,
                                                   lrm_engine: sa.Engine) -> None:
    """Connection refused on the primary Reporting Server: the backup answers."""
    sim.servers.gvp.set_mode("primary", "refuse")
    try:
        settings = settings_for(sim, lrm_db_url, LRM_GVP__RETRIES="0")
        assert run(settings, lrm_engine, first_day()) == ["succeeded"]
    finally:
        sim.servers.gvp.set_mode("primary", "ok")
    with lrm_engine.connect() as c:
        record = job_runs.recent_runs(c, 1)[0]
    assert record.source_outcome["gvp"]["servers"] == [sim.servers.urls.gvp_backup]


def test_gvp_wrong_password_is_a_configuration_error(sim: Sim, lrm_db_url: str,
                                                     lrm_engine: sa.Engine) -> None:
    """401 from the Reporting Server: no failover, the GVP part is marked failed with a clear
    message, and the seat results are still stored."""
    settings = settings_for(sim, lrm_db_url, LRM_GVP__PASSWORD="wrong")
    assert run(settings, lrm_engine, first_day()) == ["succeeded"]
    with lrm_engine.connect() as c:
        record = job_runs.recent_runs(c, 1)[0]
    assert record.source_outcome["gvp"]["status"] == "failed"
    assert "refused the credentials" in record.source_outcome["gvp"]["error"]
    values = daily(lrm_engine, "tenant", first_day())
    assert any(item == 1 for _, item in values)
    assert not any(item == 200 for _, item in values)


def test_bad_rows_are_counted_by_kind(pg_server: EmbeddedPostgres, tmp_path: Path,
                                      lrm_db_url: str, lrm_engine: sa.Engine) -> None:
    """Bad rows are never silently counted or dropped: the run record gives each kind."""
    params = SimParams(tenants=2, agents_per_tenant=6, days=1, seed=3, bad_rows=2)
    run_simulation(params, tmp_path, today=TODAY, pg_admin_url=pg_server.url(),
                   db_prefix=f"idb_{uuid.uuid4().hex[:6]}_", gateway_port=0, gvp_ports=(0, 0))
    with SimulatorServers(tmp_path):
        settings = load_settings(tmp_path / "lrm.toml",
                                 environ={"LRM_LRM__DATABASE_URL": lrm_db_url})
        day = TODAY - timedelta(days=1)
        assert run(settings, lrm_engine, day) == ["succeeded"]
    with lrm_engine.connect() as c:
        record = job_runs.recent_runs(c, 1)[0]
    assert record.sessions_set_aside.get("end_before_start") == 2
    assert record.sessions_set_aside.get("conflicting_copies") == 2
    assert record.source_outcome["counted_by_rule"].get("unknown_reference", 0) >= 2


def test_file_configuration_source(sim: Sim, lrm_db_url: str, lrm_engine: sa.Engine) -> None:
    """With `[config_source] kind = "file"` the job reads the JSON document and succeeds; a
    missing file fails the run naming the file."""
    settings = settings_for(sim, lrm_db_url, LRM_CONFIG_SOURCE__KIND="file",
                            LRM_CONFIG_SOURCE__PATH=str(sim.folder / "config.json"))
    assert run(settings, lrm_engine, first_day()) == ["succeeded"]
    assert daily(lrm_engine, "tenant", first_day())
    missing = settings_for(sim, lrm_db_url, LRM_CONFIG_SOURCE__KIND="file",
                           LRM_CONFIG_SOURCE__PATH=str(sim.folder / "absent.json"))
    assert run(missing, lrm_engine, first_day() + timedelta(days=1)) == ["failed"]
    with lrm_engine.connect() as c:
        record = job_runs.recent_runs(c, 1)[0]
    assert record.error is not None and "absent.json" in record.error


def test_sampler_keeps_no_document_and_stores_only_changes(sim: Sim, lrm_db_url: str,
                                                           lrm_engine: sa.Engine) -> None:
    """The 10-minute sampler keeps ETags and digests, not the document: an unchanged
    configuration costs 304s and no row; a document stored meanwhile by someone else (the
    other instance, after a switchover and back) is noticed and the gateway's is stored again."""
    from lrm.job.pipeline import Pipeline

    pipeline = Pipeline(settings_for(sim, lrm_db_url), lrm_engine)
    marks = [datetime(2026, 11, 25, 8, 10 * k, tzinfo=UTC) for k in range(4)]
    assert pipeline.sample_config(marks[0], fence=lambda _c: None)
    assert not pipeline.sample_config(marks[1], fence=lambda _c: None)
    base = pipeline._sampler.base
    assert base is not None and base.lists is None  # digests only between samples
    with lrm_engine.begin() as c:
        other = dict(config_samples.samples_between(c, marks[0], marks[1])[0][1])
        other["tenants"] = other["tenants"][:1]
        config_samples.store_sample(c, marks[2], other, "lrm-b")
    assert pipeline.sample_config(marks[3], fence=lambda _c: None)
    with lrm_engine.connect() as c:
        stored = [d for _, d in config_samples.samples_between(
            c, marks[0], marks[3] + timedelta(minutes=1))]
    assert len(stored) == 3 and stored[0] == stored[2] != stored[1] == other
