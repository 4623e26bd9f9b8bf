"""What the report API keeps in memory goes stale only briefly: a write made by another process
is served within a second, a revoked token stops working within `TOKEN_CACHE_S`; and the
in-memory pieces behave (one reference load per data version, idle tokens forgotten). Real
server, real database."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import date

import httpx
import pytest
import sqlalchemy as sa

from lrm.api.cache import ReportCache
from lrm.api.deps import TOKEN_CACHE_S, ApiContext, keep_fresh
from lrm.domain.items import build_catalogue
from lrm.domain.report_rows import ReportReference
from lrm.settings import load_settings
from lrm.store import tokens
from lrm.store.db import create_engine
from lrm.store.embedded import EmbeddedPostgres
from lrm.store.schema import job_run, usage_daily
from tests.integration.api_server import Api, running_api
from tests.own_loop import run_in_own_loop


@pytest.fixture
def api(pg_server: EmbeddedPostgres, lrm_template: str) -> Iterator[Api]:
    with running_api(pg_server, lrm_template) as server:
        yield server


def _peak(api: Api, token: str) -> object:
    response = httpx.get(api.url + "/api/v1/reports/tenant", timeout=10,
                         headers={"Authorization": f"Bearer {token}"},
                         params={"tenant": 101, "from": "2026-11-02", "to": "2026-11-02"})
    assert response.status_code == 200, response.text
    return response.json()["rows"][0]["peak_value"]


def _until(condition: object, limit_s: float) -> float:
    """Seconds until `condition()` holds (fails after `limit_s`)."""
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - started < limit_s, f"not within {limit_s} s"
        time.sleep(0.05)
    return time.monotonic() - started


def test_a_job_committed_by_another_process_is_served_within_a_second(api: Api) -> None:
    assert _peak(api, api.provider) == 5
    assert _peak(api, api.provider) == 5  # now from the cache
    with api.engine.begin() as c:  # what the other instance's job commit does
        c.execute(sa.update(usage_daily).where(
            usage_daily.c.level == "tenant", usage_daily.c.subject_id == 101,
            usage_daily.c.business_date == date(2026, 11, 2)).values(peak_value=42))
        c.execute(sa.insert(job_run).values(
            business_date=date(2026, 11, 2), instance_id="lrm-b", epoch=2, trigger="manual",
            status="succeeded"))
    _until(lambda: _peak(api, api.provider) == 42, limit_s=1.5)


@pytest.mark.parametrize("path", ["/api/v1/tenants", "/api/v1/reports/tenant"])
def test_a_revoked_token_stops_working_within_the_token_cache_time(api: Api, path: str) -> None:
    """Also for a report request repeated all along (answered before FastAPI parses it)."""
    with api.engine.begin() as c:
        token_id, secret = tokens.create_token(c, "provider", [], "revoked in a test")
    for _ in range(3):
        assert _peak(api, secret) == 5
    with api.engine.begin() as c:
        assert tokens.revoke_token(c, str(token_id)) == 1

    def refused() -> bool:
        return httpx.get(api.url + path, timeout=10, params={
            "tenant": 101, "from": "2026-11-02", "to": "2026-11-02"},
            headers={"Authorization": f"Bearer {secret}"}).status_code == 401

    _until(refused, limit_s=TOKEN_CACHE_S + 1)


def test_refresh_checks_used_tokens_again_and_forgets_idle_ones(lrm_db_url: str) -> None:
    engine = create_engine(lrm_db_url)
    try:
        with engine.begin() as c:
            _, used = tokens.create_token(c, "provider", [])
            _, idle = tokens.create_token(c, "tenant", [101])
        ctx = ApiContext(settings=load_settings(None, environ={}), engine=engine,
                         catalogue=build_catalogue(), instance_id="lrm-a",
                         reports=ReportCache(engine))
        assert ctx.principal(used) is not None and ctx.principal(idle) is not None
        for remembered in ctx._tokens.values():  # both checks are now half a lifetime old
            remembered.checked_at -= TOKEN_CACHE_S / 2
        assert ctx.remembered_principal(used) is not None  # a request used it meanwhile
        ctx.refresh()
        assert ctx.remembered_principal(idle) is None
        assert time.monotonic() - ctx._tokens[used].checked_at < 1  # checked again
    finally:
        engine.dispose()


def test_one_reference_load_per_data_version(lrm_engine: sa.Engine) -> None:
    cache = ReportCache(lrm_engine)
    loads: list[int] = []
    reference = ReportReference(item_names={}, tenants={}, groups={}, provisioned={},
                                entitlements=[], succeeded_dates=frozenset())

    def load() -> ReportReference:
        loads.append(1)
        time.sleep(0.2)  # long enough for every thread to ask while it loads
        return reference

    version = cache.version()
    threads = [threading.Thread(target=cache.reference, args=(version, load))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1
    assert cache.reference(version, load) is reference and len(loads) == 1
    assert cache.reference((*version, "newer"), load) is reference and len(loads) == 2


def test_connections_plan_every_query_for_its_parameters(lrm_engine: sa.Engine) -> None:
    # A generic plan read a whole month of every tenant through the date index for a report
    # of one tenant (16x slower); see create_engine.
    with lrm_engine.connect() as c:
        assert c.execute(sa.text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"


def test_a_version_read_before_this_process_wrote_is_not_kept(lrm_engine: sa.Engine) -> None:
    cache = ReportCache(lrm_engine)
    with lrm_engine.connect() as blocker:
        blocker.execute(sa.text("LOCK TABLE job_run IN ACCESS EXCLUSIVE MODE"))
        read = threading.Thread(target=cache.refresh_version)
        read.start()  # waits for the lock: a read begun before the write below
        time.sleep(0.2)
        cache.invalidate()  # this process wrote
        blocker.rollback()
        read.join()
    assert cache.remembered("anything") is None
    assert cache._version is None  # the old read was not kept: the next request reads again


def test_keep_fresh_goes_on_after_a_failure_and_rests_while_idle() -> None:
    calls: list[int] = []
    active = [True]

    def refresh() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the database went away")

    async def run() -> int:
        task = asyncio.create_task(keep_fresh(refresh, lambda: active[0], period_s=0.01))
        await asyncio.sleep(0.3)
        active[0] = False
        await asyncio.sleep(0.1)  # one refresh may still be under way
        while_idle = len(calls)
        await asyncio.sleep(0.3)
        task.cancel()
        assert len(calls) == while_idle
        return while_idle

    assert run_in_own_loop(run()) >= 3
