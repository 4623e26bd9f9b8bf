"""The report app served on the report port while this instance is primary (SPEC §7)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import FastAPI

from lrm import __version__
from lrm.api.cache import ReportCache
from lrm.api.deps import ApiContext, install_error_handlers, keep_fresh
from lrm.api.repeated_reports import RepeatedReports
from lrm.api.routes import router
from lrm.api.warm_up import warm_up
from lrm.domain.items import build_catalogue
from lrm.settings import Settings
from lrm.store.event_loop_reads import EventLoopReads
from lrm.web import mount_web

DESCRIPTION = """Licensed seat and port usage per tenant, for billing.

Every endpoint but `/api/v1/health` needs `Authorization: Bearer <token>` (create one with
`lrm token create`). A tenant token sees only its tenants; the system report, uploads and
changes to provisioned counts need a provider token. Reports are JSON by default; `format=csv`
or `Accept: text/csv` returns the same rows as CSV."""

# Queries in flight at once from the event loop (each about a millisecond of the server's time).
EVENT_LOOP_CONNECTIONS = 4


def create_report_app(settings: Settings, engine: sa.Engine, *, mode: Callable[[], str],
                      application_name: str = "lrm") -> FastAPI:
    context = ApiContext(
        settings=settings, engine=engine, instance_id=settings.lrm.instance_id,
        reports=ReportCache(engine),
        catalogue=build_catalogue([s.model_dump() for s in settings.sellable_items]),
        reads=EventLoopReads(engine.url.render_as_string(hide_password=False),
                             size=EVENT_LOOP_CONNECTIONS, application_name=application_name))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # uvicorn opens the port once this startup part is done.
        await warm_up(app, context)
        context.expect_requests()
        refresher = asyncio.create_task(keep_fresh(context.refresh, context.active),
                                        name="report-api-refresh")
        try:
            yield
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(refresher, 1)
            if context.reads is not None:
                with contextlib.suppress(Exception, TimeoutError):
                    await asyncio.wait_for(context.reads.close(), 1)

    app = FastAPI(title="lrm report API", version=__version__, description=DESCRIPTION,
                  openapi_url="/api/v1/openapi.json", docs_url="/api/v1/docs", redoc_url=None,
                  lifespan=lifespan)
    app.state.context = context
    install_error_handlers(app)
    app.add_middleware(RepeatedReports, context=context)

    @app.get("/api/v1/health", summary="Liveness of the primary's report API", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok", "instance_id": settings.lrm.instance_id, "mode": mode()}

    app.include_router(router)
    mount_web(app)  # the web page (SPEC §8) at `/`, after every API route
    return app
