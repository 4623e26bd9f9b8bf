"""PostgreSQL restarting under a running `lrm serve` primary in the middle of a job."""

from __future__ import annotations

import sqlalchemy as sa

from lrm.store import migrate
from lrm.store.db import create_engine, ensure_database
from lrm.store.embedded import EmbeddedPostgres
from tests.acceptance.conftest import Cluster, poll


def test_database_restart_during_a_job(cluster: Cluster,
                                       own_pg_server: EmbeddedPostgres) -> None:
    """No partial results from the interrupted run; a later run of the primary completes the
    date; every date ends with exactly one success."""
    ensure_database(own_pg_server.url(), "lrm")
    engine = create_engine(own_pg_server.url("lrm"))
    migrate.upgrade(engine)
    node = cluster.start("lrm-a", LRM_LRM__DATABASE_URL=own_pg_server.url("lrm"),
                         LRM_JOB__RETRY_FAILED_AFTER_S="1")

    def runs() -> list[sa.Row[tuple[int, object, str]]]:
        try:
            with engine.connect() as c:
                return list(c.execute(sa.text(
                    "SELECT id, business_date, status FROM job_run ORDER BY id")))
        except sa.exc.OperationalError:
            return []

    running = poll(lambda: next((r for r in runs() if r.status == "running"), None), 30,
                   "a running job")
    own_pg_server.restart()
    poll(lambda: any(r.id == running.id and r.status != "running" for r in runs()), 30,
         "the interrupted run to be recorded")
    interrupted = next(r for r in runs() if r.id == running.id)
    assert interrupted.status == "failed"
    poll(lambda: any(r.business_date == running.business_date and r.status == "succeeded"
                     for r in runs()), 60, "a later run to complete the date")
    poll(lambda: runs() and all(r.status != "running" for r in runs()), 60, "runs to end")
    with engine.connect() as c:
        successes = c.execute(sa.text(
            "SELECT business_date, count(*) FROM job_run WHERE status = 'succeeded' "
            "GROUP BY 1")).all()
        writers = c.execute(sa.text(
            "SELECT DISTINCT u.run_id FROM usage_daily u WHERE u.business_date = :d"),
            {"d": running.business_date}).scalars().all()
    assert all(count == 1 for _, count in successes)
    assert running.id not in writers and len(writers) == 1
    assert node.process.poll() is None
    engine.dispose()
