"""The two ways the report API builds a report that is not cached — on its event loop (small
reports, `EventLoopReads`) and in a thread (`lrm.reporting.build_report`, as the CLI) — give
the same body; an event-loop connection that broke is replaced, not reused."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import orjson
import pytest
import sqlalchemy as sa

from lrm.api.cache import ReportCache
from lrm.api.deps import ApiContext
from lrm.api.routes import LOOP_BUILD_MAX_SUBJECT_DAYS, _build, build_on_loop, report_request
from lrm.domain.errors import DatabaseError
from lrm.domain.items import build_catalogue
from lrm.domain.report_rows import ReportReference
from lrm.reporting import ReportRequest
from lrm.settings import load_settings
from lrm.store import report_queries as q
from lrm.store.embedded import free_tcp_port
from lrm.store.event_loop_reads import EventLoopReads
from tests.integration.api_server import count_reference_loads, load_hand_made
from tests.own_loop import run_in_own_loop

REQUESTS = [
    report_request("tenant", "2026-11-01", "2026-11-30", "day", "monday", None, tenants=(101, 102)),
    report_request("tenant", "2026-11-01", "2026-11-30", "week", "sunday", [1], tenants=(101,)),
    report_request("tenant", "2026-10-01", "2026-12-31", "month", "monday", None, tenants=(102,)),
    report_request("system", "2026-11-03", "2026-11-12", "day", "monday", None),
    report_request("agent-group", "2026-11-01", "2026-11-30", "week", "monday", None, group=7001),
    report_request("place-group", "2026-11-01", "2026-11-30", "month", "monday", None, group=8001),
]


@pytest.fixture
def ctx(lrm_db_url: str, lrm_engine: sa.Engine) -> Iterator[ApiContext]:
    load_hand_made(lrm_engine)
    settings = load_settings(None, environ={"LRM_LRM__DATABASE_URL": lrm_db_url,
                                            "LRM_LRM__REPORT_TIMEZONE": "Europe/Berlin"})
    context = ApiContext(settings=settings, engine=lrm_engine, catalogue=build_catalogue(),
                         instance_id="lrm-a", reports=ReportCache(lrm_engine),
                         reads=EventLoopReads(lrm_db_url, size=2, application_name="lrm-test"))
    _remember_reference(context)
    yield context


def _remember_reference(context: ApiContext) -> None:
    """What a first request does in a thread: read the data version and its reference."""
    def load() -> ReportReference:
        with context.engine.connect() as connection:
            return q.load_reference(connection)

    context.reports.reference(context.reports.version(), load)


def _without_time(body: bytes) -> dict[str, object]:
    document = orjson.loads(body)
    del document["generated_at"]
    return document


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: f"{r.kind}-{r.granularity}")
@pytest.mark.parametrize("wants_csv", [False, True], ids=["json", "csv"])
def test_the_event_loop_and_a_thread_build_the_same_report(
        ctx: ApiContext, request_: ReportRequest, wants_csv: bool) -> None:
    key = (request_, wants_csv)

    async def on_loop() -> tuple[bytes, str, dict[str, str]] | None:
        try:
            return await build_on_loop(ctx, key)
        finally:
            assert ctx.reads is not None
            await ctx.reads.close()

    built_on_loop = run_in_own_loop(on_loop())
    assert built_on_loop is not None
    ctx.reports.invalidate()  # the thread must build it again, not find it cached
    built_in_thread = _build(ctx, key)
    assert built_on_loop[1:] == built_in_thread[1:]  # media type, headers
    if wants_csv:
        assert built_on_loop[0] == built_in_thread[0]
    else:
        assert _without_time(built_on_loop[0]) == _without_time(built_in_thread[0])


def test_large_and_per_minute_reports_go_to_a_thread(ctx: ApiContext) -> None:
    year = report_request("tenant", "2026-01-01", "2026-12-31", "day", "monday", None,
                    tenants=(101,))
    assert (year.end - year.start).days + 1 > LOOP_BUILD_MAX_SUBJECT_DAYS
    detailed = report_request("tenant", "2026-11-02", "2026-11-02", "detailed", "monday", None,
                        tenants=(101,))
    for request_ in (year, detailed):
        assert run_in_own_loop(build_on_loop(ctx, (request_, False))) is None


def test_a_dead_event_loop_connection_is_replaced_without_an_error(
        ctx: ApiContext, lrm_engine: sa.Engine) -> None:
    reads = ctx.reads
    assert reads is not None
    key = (REQUESTS[0], False)

    async def scenario() -> None:
        first = await build_on_loop(ctx, key)
        assert first is not None
        with lrm_engine.connect() as c:  # the server ends the kept connection (a restart)
            ended = c.execute(sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'lrm-test'")).scalar_one()
        assert ended == 1
        ctx.reports.invalidate()
        _remember_reference(ctx)
        again = await build_on_loop(ctx, key)  # on a new connection, no error
        assert again is not None and _without_time(again[0]) == _without_time(first[0])
        await reads.close()

    run_in_own_loop(scenario())


def test_an_unreachable_database_is_a_database_error(ctx: ApiContext) -> None:
    port = free_tcp_port()  # nothing listens there
    ctx.reads = EventLoopReads(f"postgresql://lrm@127.0.0.1:{port}/lrm", size=1,
                               application_name="lrm-test")
    with pytest.raises(DatabaseError, match="the LRM database is not available"):
        run_in_own_loop(build_on_loop(ctx, (REQUESTS[0], False)))


def test_requests_finding_no_reference_wait_for_one_read_and_build_on_the_loop(
        ctx: ApiContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """A just-started server: the data version and its reference are not in memory. Twelve
    requests at once read them once (in a thread) and are all built on the event loop."""
    ctx.reports.invalidate()
    assert ctx.reports.remembered_reference() is None
    loads = count_reference_loads(monkeypatch)

    async def at_once() -> list[tuple[bytes, str, dict[str, str]] | None]:
        try:
            return await asyncio.gather(*(build_on_loop(ctx, (request_, wants_csv))
                                          for request_ in REQUESTS for wants_csv in (False, True)))
        finally:
            assert ctx.reads is not None
            await ctx.reads.close()

    built = run_in_own_loop(at_once())
    assert all(body is not None for body in built)
    assert loads == [1]


@pytest.mark.parametrize("change", ["this process writes", "another process commits"])
def test_a_request_after_a_change_does_not_join_an_older_read(
        ctx: ApiContext, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    """A read of the reference is in flight when the data changes: this process writes
    (`invalidate`), or another process commits and this one sees the new data version (its
    background refresh). Requests after that read again, and see the change."""
    ctx.reports.invalidate()
    real_load = q.load_reference
    loads: list[int] = []
    first_load_started, change_done = threading.Event(), threading.Event()

    def slow_first_load(connection: sa.Connection) -> ReportReference:
        loads.append(1)
        if len(loads) == 1:  # the read begun before the change: still reading when it lands
            first_load_started.set()
            assert change_done.wait(10)
        return real_load(connection)

    monkeypatch.setattr(q, "load_reference", slow_first_load)

    async def scenario() -> None:
        try:
            before = asyncio.ensure_future(build_on_loop(ctx, (REQUESTS[0], False)))
            await asyncio.to_thread(first_load_started.wait, 10)
            with ctx.engine.begin() as c:
                c.execute(sa.text("UPDATE tenant SET name = 'Renamed', "
                                  "updated_at = clock_timestamp() WHERE id = 101"))
            if change == "this process writes":
                ctx.reports.invalidate()
            else:
                await asyncio.to_thread(ctx.reports.refresh_version)
            after = asyncio.ensure_future(build_on_loop(ctx, (REQUESTS[0], False)))
            await asyncio.sleep(0.05)  # `after` has asked for the reference by now
            change_done.set()
            built_after = await after
            assert built_after is not None and b"Renamed" in built_after[0]
            await before
        finally:
            change_done.set()
            assert ctx.reads is not None
            await ctx.reads.close()

    run_in_own_loop(scenario())
    assert len(loads) == 2
