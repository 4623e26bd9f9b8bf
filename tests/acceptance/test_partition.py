"""A primary cut off from the LRM DB closes its report port before its lease can expire."""

from __future__ import annotations

import time

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
