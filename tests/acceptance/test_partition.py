"""A primary cut off from the LRM DB closes its report port before its lease can expire."""

from __future__ import annotations

import signal
import time
from datetime import date, timedelta

import psycopg
import pytest
import sqlalchemy as sa

from lrm.store import coordination as co
from lrm.store.db import libpq_url
from lrm.store.embedded import EmbeddedPostgres
from tests.acceptance.conftest import RENEW_DEADLINE_S, TTL_S, Cluster, poll
from tests.acceptance.tcp_proxy import TcpProxy


def test_primary_cut_off_from_the_database_closes_its_report_port(
        cluster: Cluster, pg_server: EmbeddedPostgres) -> None:
    """Behind a TCP proxy that black-holes the database, the primary steps down within
    renew_deadline_s (its renew call hangs; the watchdog does not wait for it) and the peer
    takes over after the lease expires."""
    proxy = TcpProxy(pg_server.port).start()
    try:
        database = cluster.database_url.replace(f":{pg_server.port}/", f":{proxy.port}/")
        first = cluster.start("lrm-a", LRM_LRM__DATABASE_URL=database)
        poll(first.serves_reports, 20, "the proxied instance to become primary")
        second = cluster.start("lrm-b")
        poll(lambda: second.mode() == "backup", 10, "the peer in backup mode")
        proxy.cut()
        cut = time.monotonic()
        poll(first.report_port_refuses, RENEW_DEADLINE_S + 3, "the report port to close")
        took = time.monotonic() - cut
        assert took <= RENEW_DEADLINE_S + 0.6, took
        poll(lambda: first.mode() == "backup", 2, "the cut-off instance in backup mode")
        poll(second.serves_reports, TTL_S + 5, "the peer to take over")
        proxy.heal()
        time.sleep(1.0)  # the healed instance must stay backup while the peer holds the lease
        assert first.mode() == "backup" and first.report_port_refuses()
    finally:
        proxy.stop()


def test_exit_on_lease_loss_exits_non_zero(cluster: Cluster, pg_server: EmbeddedPostgres) -> None:
    """With ha.exit_on_lease_loss the cut-off primary exits with code 1 (for a supervisor to
    restart it) after closing its report port."""
    proxy = TcpProxy(pg_server.port).start()
    try:
        database = cluster.database_url.replace(f":{pg_server.port}/", f":{proxy.port}/")
        node = cluster.start("lrm-a", LRM_LRM__DATABASE_URL=database,
                             LRM_HA__EXIT_ON_LEASE_LOSS="true")
        poll(node.serves_reports, 20, "the instance to become primary")
        proxy.cut()
        assert node.process.wait(timeout=RENEW_DEADLINE_S + 15) == 1
        assert "lease.lost" in node.log()
    finally:
        proxy.stop()


def test_new_primary_ends_the_sessions_its_predecessor_left_open(cluster: Cluster) -> None:
    """A primary cut off or frozen while writing a date leaves a session holding that date's
    rows (behind a black-holing switch TCP never ends it): the next primary ends its
    predecessor's sessions and completes the date. The half-written transaction is opened here,
    in lrm-a's name, before lrm-a starts (when a cut or a freeze falls is otherwise luck); lrm-a's
    own catch-up then waits on it, as lrm-b's would without the fix."""
    orphan = psycopg.connect(libpq_url(cluster.database_url),
                             application_name=co.serving_application_name("lrm-a"))
    try:
        for offset in range(-3, 2):  # every date the catch-up may run, in any time zone
            orphan.execute("INSERT INTO usage_daily (level, subject_id, item_id, business_date, "
                           "peak_value, run_id) VALUES ('system', 0, 1, %s, 0, 0)",
                           (date.today() + timedelta(days=offset),))
        first = cluster.start("lrm-a")
        poll(lambda: any(r.status == "running" for r in cluster.runs()), 30, "lrm-a's job")
        poll(lambda: _waiting_on_a_lock(cluster, "lrm-a"), 30, "lrm-a's job to wait on the rows")
        second = cluster.start("lrm-b")
        poll(lambda: second.mode() == "backup", 10, "lrm-b in backup mode")
        first.send(signal.SIGKILL)
        poll(lambda: [r.status for r in cluster.runs()].count("succeeded") == 2, 60,
             "lrm-b to complete the catch-up")
        assert "lease.predecessor_sessions_ended" in second.log()
        with pytest.raises(psycopg.OperationalError):
            orphan.execute("SELECT 1")
    finally:
        orphan.close()


def _waiting_on_a_lock(cluster: Cluster, instance_id: str) -> bool:
    with cluster.engine.connect() as c:
        return bool(c.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name "
            "AND wait_event_type = 'Lock'"),
            {"name": co.serving_application_name(instance_id)}).scalar_one())
