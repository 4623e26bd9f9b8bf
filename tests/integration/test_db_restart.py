"""PostgreSQL (the LRM DB) restarting in the middle of a job: no partial results, and a later
run completes the date."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

from lrm.job.runner import DateOutcome, NightlyJob
from lrm.settings import load_settings
from lrm.sim.model import SimParams
from lrm.sim.run import run_simulation
from lrm.sim.servers import SimulatorServers
from lrm.store import migrate
from lrm.store.db import create_engine, ensure_database
from lrm.store.embedded import EmbeddedPostgres

TODAY = date(2026, 11, 20)


def test_restart_during_a_job_leaves_no_partial_results(
        own_pg_server: EmbeddedPostgres, pg_server: EmbeddedPostgres, tmp_path: Path) -> None:
    """The run that loses its database fails without writing anything; the next run of the
    date succeeds and is the only success."""
    ensure_database(own_pg_server.url(), "lrm")
    engine = create_engine(own_pg_server.url("lrm"))
    migrate.upgrade(engine)
    run_simulation(SimParams(tenants=2, agents_per_tenant=6, days=1, seed=5), tmp_path,
                   today=TODAY, pg_admin_url=pg_server.url(),
                   db_prefix=f"idb_{uuid.uuid4().hex[:6]}_", gateway_port=0, gvp_ports=(0, 0))
    day = TODAY - timedelta(days=1)
    settings = load_settings(tmp_path / "lrm.toml",
                             environ={"LRM_LRM__DATABASE_URL": own_pg_server.url("lrm")})
    outcomes: list[DateOutcome] = []
    with SimulatorServers(tmp_path):
        job = NightlyJob(settings, engine, under_lease=False)
        worker = threading.Thread(target=lambda: outcomes.extend(job.run_dates(
            [day], trigger="manual", epoch=0, cancel=threading.Event())))
        worker.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with engine.connect() as c:
                if c.execute(sa.text("SELECT count(*) FROM job_run WHERE status = 'running'")
                             ).scalar():
                    break
            time.sleep(0.02)
        own_pg_server.restart()
        worker.join(timeout=60)
        assert [o.status for o in outcomes] == ["failed"]
        with engine.connect() as c:
            assert c.execute(sa.text("SELECT count(*) FROM usage_daily")).scalar() == 0
            assert c.execute(sa.text("SELECT count(*) FROM usage_minute")).scalar() == 0
        again = job.run_dates([day], trigger="manual", epoch=0, cancel=threading.Event())
        assert [o.status for o in again] == ["succeeded"]
    with engine.connect() as c:
        statuses = [r.status for r in c.execute(sa.text(
            "SELECT status FROM job_run WHERE business_date = :d ORDER BY id"), {"d": day})]
        assert statuses.count("succeeded") == 1
        assert c.execute(sa.text("SELECT count(*) FROM usage_daily")).scalar() > 0
    engine.dispose()
