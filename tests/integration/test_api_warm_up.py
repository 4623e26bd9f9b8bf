"""The report API's warm-up before its port opens (`lrm.api.warm_up`): afterwards the first
requests find the database connections open, the data version and its reference read, and the
first tenant's latest month built; a database that is down, or holds no data yet, does not keep
the port closed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import date

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from structlog.testing import capture_logs

import lrm.api.deps
import lrm.api.warm_up
from lrm.api.app import EVENT_LOOP_CONNECTIONS, create_report_app
from lrm.api.deps import ApiContext
from lrm.api.warm_up import warm_up, warm_up_limit_s
from lrm.reporting import ReportRequest
from lrm.settings import load_settings
from lrm.store import tokens
from lrm.store.db import create_engine
from lrm.store.embedded import free_tcp_port
from tests.integration.api_server import count_reference_loads, load_hand_made
from tests.own_loop import run_in_own_loop

APPLICATION = "lrm-warm-up-test"
# The hand-made data's last complete date is 2026-11-12; its first tenant is 101.
WARM_REPORT = ReportRequest(kind="tenant", start=date(2026, 11, 1), end=date(2026, 11, 12),
                            tenants=(101,))


def _app(database_url: str, engine: sa.Engine, **environ: str) -> FastAPI:
    settings = load_settings(None, environ={"LRM_LRM__DATABASE_URL": database_url, **environ})
    return create_report_app(settings, engine, mode=lambda: "primary",
                             application_name=APPLICATION)


@pytest.fixture
def app(lrm_db_url: str, lrm_engine: sa.Engine) -> Iterator[FastAPI]:
    load_hand_made(lrm_engine)
    yield _app(lrm_db_url, lrm_engine)


def _context(app: FastAPI) -> ApiContext:
    context: ApiContext = app.state.context
    return context


def _event_loop_connections(engine: sa.Engine) -> int:
    with engine.connect() as c:
        return int(c.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"),
            {"name": APPLICATION}).scalar_one())


def test_after_the_warm_up_the_first_report_reads_only_its_values(
        app: FastAPI, lrm_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    context = _context(app)
    with lrm_engine.begin() as c:
        _, token = tokens.create_token(c, "provider", [], "warm-up test")
    loads = count_reference_loads(monkeypatch)
    checked: list[str] = []
    real_authenticate = lrm.api.deps.authenticate

    def authenticate(connection: sa.Connection, token: str) -> object:
        checked.append(token)
        return real_authenticate(connection, token)

    monkeypatch.setattr(lrm.api.deps, "authenticate", authenticate)

    async def scenario() -> tuple[int, int, int, bool, int]:
        await warm_up(app, context)
        assert len(checked) == 1  # the token check's query, made once with no one's token
        connections = _event_loop_connections(lrm_engine)
        warm_report_cached = context.reports.remembered((WARM_REPORT, False)) is not None
        loads_by_warm_up = len(loads)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://lrm") as client:
            answer = await client.get("/api/v1/reports/tenant", params={
                "tenant": 102, "from": "2026-11-01", "to": "2026-11-30"},
                headers={"Authorization": f"Bearer {token}"})
        assert context.reads is not None
        await context.reads.close()
        return connections, loads_by_warm_up, len(loads), warm_report_cached, answer.status_code

    connections, loads_by_warm_up, loads_in_all, warm_report_cached, status = (
        run_in_own_loop(scenario()))
    assert connections == EVENT_LOOP_CONNECTIONS
    assert loads_by_warm_up == 1
    assert warm_report_cached
    assert status == 200
    assert loads_in_all == 1  # the request found the reference in memory


def test_the_port_opens_counting_as_active(app: FastAPI) -> None:
    """Its first clients find the data version the warm-up read kept fresh (`keep_fresh`)."""
    context = _context(app)
    assert not context.active()

    async def scenario() -> bool:
        async with app.router.lifespan_context(app):
            return context.active()

    assert run_in_own_loop(scenario())


def test_an_lrm_db_without_data_is_warmed_up_without_a_report(
        lrm_db_url: str, lrm_engine: sa.Engine) -> None:
    app = _app(lrm_db_url, lrm_engine)
    context = _context(app)

    async def scenario() -> None:
        await warm_up(app, context)
        assert context.reads is not None
        await context.reads.close()

    with capture_logs() as logs:
        run_in_own_loop(scenario())
    assert context.reports.remembered_reference() is not None
    assert [entry["event"] for entry in logs] == ["report.warmed_up"]


def test_a_database_that_is_down_is_logged_and_does_not_stop_the_warm_up_from_ending() -> None:
    url = f"postgresql+psycopg://lrm@127.0.0.1:{free_tcp_port()}/lrm"  # nothing listens
    engine = create_engine(url)
    app = _app(url, engine)
    try:
        with capture_logs() as logs:
            run_in_own_loop(warm_up(app, _context(app)))
    finally:
        engine.dispose()
    [failure] = logs
    assert failure["event"] == "report.warm_up_failed"
    assert failure["log_level"] == "warning"
    assert "the LRM database is not available" in failure["error"]


def test_a_warm_up_that_does_not_end_is_given_up_well_before_the_renew_deadline(
        lrm_db_url: str, lrm_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The warm-up runs while the instance has just taken the lease and renews nothing: a
    database that hangs must not hold it up to the renew deadline."""
    app = _app(lrm_db_url, lrm_engine, LRM_HA__RENEW_INTERVAL_S="1",
               LRM_HA__RENEW_DEADLINE_S="2", LRM_HA__LEASE_TTL_S="3")
    context = _context(app)
    assert warm_up_limit_s(context) == 0.5
    assert warm_up_limit_s(_context(_app(lrm_db_url, lrm_engine))) == 2.0  # the defaults

    async def hangs(*_: object) -> None:
        await asyncio.sleep(30)

    monkeypatch.setattr(lrm.api.warm_up, "current_reference", hangs)

    async def scenario() -> float:
        began = time.monotonic()
        await warm_up(app, context)
        ended = time.monotonic() - began
        assert context.reads is not None
        await context.reads.close()
        return ended

    with capture_logs() as logs:
        took = run_in_own_loop(scenario())
    assert 0.5 <= took < 1.0
    [failure] = logs
    assert failure["event"] == "report.warm_up_failed"
    assert failure["error"] == "not done within 0.5 s"
