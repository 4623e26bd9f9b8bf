"""The primary/backup pair, for real: `lrm serve` subprocesses, SIGKILL, SIGSTOP/SIGCONT,
graceful switchover (SPEC §1–§2)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date

import httpx
import sqlalchemy as sa

from lrm.ha.instance import request_switchover
from lrm.store.coordination import read_job_lock
from tests.acceptance.conftest import (
    RENEW_INTERVAL_S,
    TTL_S,
    Cluster,
    Node,
    poll,
)


def pair(cluster: Cluster) -> tuple[Node, Node]:
    a, b = cluster.start("lrm-a"), cluster.start("lrm-b")
    primary = poll(cluster.primary, 20, "exactly one primary")
    backup = b if primary is a else a
    poll(lambda: backup.mode() == "backup", 10, "the other instance in backup mode")
    return primary, backup


def jobs_settled(cluster: Cluster) -> bool:
    """Some run recorded, none running, and the job lock free. A catch-up of several dates
    holds the lock from one date to the next, when for a moment no run is marked running."""
    runs = cluster.runs()
    if not runs or any(r.status == "running" for r in runs):
        return False
    with cluster.engine.connect() as c:
        lock = read_job_lock(c)
    return lock is None or lock.holder is None


def test_one_primary_and_the_backup_refuses_connections(cluster: Cluster) -> None:
    """Exactly one primary; the backup's report port refuses TCP connections, its admin port
    answers; only the primary runs jobs; metrics and /status tell who is who."""
    primary, backup = pair(cluster)
    assert primary.serves_reports()
    assert backup.report_port_refuses()
    health = httpx.get(f"http://127.0.0.1:{backup.admin_port}/healthz", timeout=2)
    assert health.status_code == 200
    status = backup.status()
    assert status is not None
    assert status["lease_holder"] == primary.instance_id
    assert {"instance_id", "mode", "epoch", "lease_holder", "lease_expires_in_s", "last_job",
            "version"} <= set(status)
    metrics = httpx.get(f"http://127.0.0.1:{primary.admin_port}/metrics", timeout=2).text
    assert "lrm_is_primary 1.0" in metrics
    assert "lrm_lease_epoch 1.0" in metrics
    poll(lambda: jobs_settled(cluster), 60, "the primary's catch-up runs")
    runs = cluster.runs()
    assert {r.instance_id for r in runs} == {primary.instance_id}
    assert {r.status for r in runs} == {"succeeded"}
    health_doc = httpx.get(f"http://127.0.0.1:{primary.report_port}/api/v1/health").json()
    assert health_doc == {"status": "ok", "instance_id": primary.instance_id, "mode": "primary"}
    shown = subprocess.run(
        [sys.executable, "-m", "lrm", "ha", "status", "--format", "json", "--config",
         str(cluster.folder / "lrm.toml")], env={**os.environ, **cluster.env},
        capture_output=True, text=True, timeout=60, check=True)
    lease = json.loads(shown.stdout)
    assert (lease["holder"], lease["epoch"]) == (primary.instance_id, 1)
    assert 0 < lease["expires_in_s"] <= TTL_S


def test_sigkill_primary_backup_serves_within_ttl_plus_interval(cluster: Cluster) -> None:
    """After SIGKILL of the primary the backup serves reports within lease_ttl_s +
    renew_interval_s, under a higher epoch."""
    primary, backup = pair(cluster)
    old_epoch = primary.status()["epoch"]  # type: ignore[index]
    primary.send(signal.SIGKILL)
    killed = time.monotonic()
    poll(backup.serves_reports, TTL_S + RENEW_INTERVAL_S + 5, "the backup's report port")
    took = time.monotonic() - killed
    assert took <= TTL_S + RENEW_INTERVAL_S + 0.5, took
    status = backup.status()
    assert status is not None
    assert status["mode"] == "primary" and status["epoch"] > old_epoch


def test_sigkill_during_a_job_completes_the_date_exactly_once(cluster: Cluster) -> None:
    """A primary killed in the middle of a job: the new primary recovers the job lock after the
    heartbeat lapses and completes the date once; the dead run is recorded as abandoned; the
    results equal a run with no fault."""
    first = cluster.start("lrm-a")
    running = poll(lambda: next((r for r in cluster.runs() if r.status == "running"), None),
                   30, "a running job")
    first.send(signal.SIGKILL)
    interrupted: date = running.business_date
    second = cluster.start("lrm-b")
    poll(lambda: any(r.business_date == interrupted and r.status == "succeeded"
                     for r in cluster.runs()), 60, f"{interrupted} to succeed")
    poll(lambda: jobs_settled(cluster), 60, "the catch-up to finish")
    runs = [r for r in cluster.runs() if r.business_date == interrupted]
    assert [r.status for r in runs if r.status == "succeeded"] == ["succeeded"]
    dead = next(r for r in runs if r.id == running.id)
    assert dead.status == "failed" and "abandoned" in (dead.error or "")
    assert second.mode() == "primary"

    with cluster.engine.connect() as c:
        before = c.execute(sa.text(
            "SELECT level, subject_id, item_id, peak_value, peak_time FROM usage_daily "
            "WHERE business_date = :d ORDER BY 1, 2, 3"), {"d": interrupted}).all()
    from lrm.job.runner import NightlyJob
    from lrm.settings import load_settings

    settings = load_settings(cluster.folder / "lrm.toml", environ=cluster.env)
    second.send(signal.SIGTERM)
    second.process.wait(timeout=15)
    import threading
    outcomes = NightlyJob(settings, cluster.engine, under_lease=False).run_dates(
        [interrupted], trigger="manual", epoch=0, cancel=threading.Event())
    assert [o.status for o in outcomes] == ["succeeded"]
    with cluster.engine.connect() as c:
        after = c.execute(sa.text(
            "SELECT level, subject_id, item_id, peak_value, peak_time FROM usage_daily "
            "WHERE business_date = :d ORDER BY 1, 2, 3"), {"d": interrupted}).all()
    assert before == after and len(before) > 20


def test_stopped_primary_steps_down_and_its_commit_is_fenced(cluster: Cluster) -> None:
    """SIGSTOP the primary in the middle of a job past the TTL; the backup takes over; after
    SIGCONT the old primary steps down and its job cannot commit: one result per date."""
    first = cluster.start("lrm-a")
    running = poll(lambda: next((r for r in cluster.runs() if r.status == "running"), None),
                   30, "a running job")
    first.send(signal.SIGSTOP)
    second = cluster.start("lrm-b")
    poll(second.serves_reports, TTL_S + 10, "the backup to take over")
    poll(lambda: any(r.business_date == running.business_date and r.status == "succeeded"
                     and r.instance_id == "lrm-b" for r in cluster.runs()), 60,
         "the new primary to complete the date")
    first.send(signal.SIGCONT)
    poll(lambda: first.mode() == "backup", 10, "the old primary to step down")
    assert first.report_port_refuses()
    poll(lambda: jobs_settled(cluster), 60, "every run to end")
    stale = next(r for r in cluster.runs() if r.id == running.id)
    assert stale.status in ("fenced", "failed"), stale
    with cluster.engine.connect() as c:
        writers = set(c.execute(sa.text(
            "SELECT DISTINCT j.instance_id FROM usage_daily u JOIN job_run j ON j.id = u.run_id "
            "WHERE u.business_date = :d"), {"d": running.business_date}).scalars())
    assert writers == {"lrm-b"}
    succeeded = [r for r in cluster.runs()
                 if r.business_date == running.business_date and r.status == "succeeded"]
    assert len(succeeded) == 1
    assert "lease.lost" in first.log()


def test_graceful_switchover_peer_serves_within_two_seconds(cluster: Cluster) -> None:
    """`lrm ha switchover` (and SIGTERM) hand over at once: the peer serves within 2 s."""
    primary, backup = pair(cluster)
    asked = time.monotonic()
    request_switchover(cluster.engine)
    poll(backup.serves_reports, 5, "the peer's report port")
    assert time.monotonic() - asked <= 2.0
    poll(primary.report_port_refuses, 2, "the old primary's report port to close")
    assert primary.mode() == "backup"

    stopped = time.monotonic()
    backup.send(signal.SIGTERM)
    poll(primary.serves_reports, 5, "the first instance to serve again")
    assert time.monotonic() - stopped <= 2.0
    assert backup.process.wait(timeout=10) == 0


def test_backup_runs_no_job_at_the_scheduled_time(cluster: Cluster) -> None:
    """At nightly_job_time the primary runs the job (trigger "schedule") and the backup does
    not, although both have the same configuration."""
    from datetime import UTC, datetime, timedelta

    at = (datetime.now(UTC) + timedelta(seconds=75)).replace(second=0, microsecond=0)
    env = {"LRM_JOB__NIGHTLY_JOB_TIME": at.strftime("%H:%M"), "LRM_JOB__CATCH_UP_DAYS": "0",
           "LRM_JOB__RECOMPUTE_DAYS": "0"}
    cluster.env.update(env)
    primary, backup = pair(cluster)
    announced = f'"at": "{at.isoformat()}"'
    poll(lambda: any("job.next_run" in line and announced in line
                     for line in primary.log().splitlines()), 10,
         f"the primary to announce its run at {at:%H:%M}")
    wait_s = (at - datetime.now(UTC)).total_seconds()
    poll(lambda: any(r.trigger == "schedule" for r in cluster.runs()), wait_s + 20,
         f"the scheduled run at {at:%H:%M}")
    poll(lambda: jobs_settled(cluster), 30, "the scheduled run to finish")
    runs = cluster.runs()
    assert {(r.instance_id, r.trigger) for r in runs} == {(primary.instance_id, "schedule")}
    assert [r.business_date for r in runs] == [at.date() - timedelta(days=1)]
    assert backup.mode() == "backup"
