"""Work a just-started report API would otherwise do during its first requests, done before
its port opens (when an instance starts as primary, or a backup takes over).

Measured on the benchmark's provider-scale database, the first request to a just-opened port
took ~230 ms, and the 50 clients' requests arriving meanwhile queued behind it: FastAPI builds
the state of every route on the first request that reaches a router (~65 ms), the first thread
hop imports anyio's backend, the first report waits for the database connections to open and
for the data version and reference to be read (`lrm.api.routes.current_reference`), and it
builds what is kept for every later report: the provisioned limits as arrays (~28 ms at 200
tenants × 30 items) and the zone's UTC offsets of the year (~24 ms a year). At
500 requests/s, with most reports not built yet, the server had no spare time to catch up, and
every answer of the first ~1.3 s came ~170 ms late. Doing all this before the port opens costs
the same time once, while no client waits."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime

import anyio.to_thread
from starlette.types import ASGIApp, Message, Scope

from lrm.api.deps import ApiContext
from lrm.api.routes import build_on_loop, current_reference
from lrm.domain.calendar import utc_offsets
from lrm.observability import get_logger
from lrm.reporting import ReportRequest

# A database that does not answer must not keep the port closed: requests then report it.
WARM_UP_TIMEOUT_S = 5.0
# A report path: the request (without a token: a 401, no database work) goes through the
# middleware, the router holding every report route, and the error handlers.
_WARM_UP_PATH = "/api/v1/reports/tenant"
_NOBODY = "lrm-warm-up-not-a-token"


async def warm_up(app: ASGIApp, context: ApiContext) -> None:
    """Open the database connections, read the data version and its reference, build one
    report (the first tenant's month up to the last complete date), and pass one request
    through `app`. Failures are logged, not raised: the port opens anyway and requests
    meet (and report) the same problem."""
    log = get_logger(instance_id=context.instance_id)
    began = time.monotonic()
    limit_s = warm_up_limit_s(context)
    task = asyncio.create_task(_warm_up(app, context), name="report-api-warm-up")
    # Not `wait_for`: it waits for the cancelled work to end, and a query being cancelled on
    # a database that does not answer can take seconds more. The port opens at the limit;
    # work still under way is abandoned (its outcome is retrieved, not awaited).
    done, _ = await asyncio.wait({task}, timeout=limit_s)
    if not done:
        task.cancel()
        task.add_done_callback(_retrieve)
        log.warning("report.warm_up_failed", error=f"not done within {limit_s:.1f} s",
                    note="the port opens anyway; the first requests do this work")
        return
    exc = task.exception()
    if exc is not None:  # any failure: the requests do this work themselves
        log.warning("report.warm_up_failed", error=str(exc) or exc.__class__.__name__,
                    note="the port opens anyway; the first requests do this work")
        return
    log.info("report.warmed_up", elapsed_ms=round((time.monotonic() - began) * 1000))


def warm_up_limit_s(context: ApiContext) -> float:
    """How long the warm-up may keep the port closed. It runs while the instance has just
    taken the lease and renews nothing (`lrm.ha.instance`): it must end well before the
    renew deadline — half the time between a renewal's due moment and that deadline."""
    ha = context.settings.ha
    return min(WARM_UP_TIMEOUT_S, (ha.renew_deadline_s - ha.renew_interval_s) / 2)


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


async def _warm_up(app: ASGIApp, context: ApiContext) -> None:
    await _request_in_process(app, _WARM_UP_PATH)
    if context.reads is not None:
        await context.reads.open_idle()
    # Also opens a pooled connection (for token checks).
    _, reference = await current_reference(context)
    # The token check's query, made once (compiled, planned) with a token no one has: the
    # first clients' tokens are checked while their requests wait.
    await anyio.to_thread.run_sync(context.principal, _NOBODY)
    last = reference.last_complete_date
    if last is None or not reference.tenants:
        return
    zone = context.settings.lrm.zone
    # The offsets of this year and the last (billing asks for recent months); the report
    # below needs those of its own year.
    utc_offsets(zone, _epoch(date(last.year - 1, 1, 1)), _epoch(last))
    request = ReportRequest(kind="tenant", start=last.replace(day=1), end=last,
                            tenants=(min(reference.tenants),))
    await build_on_loop(context, (request, False))


def _epoch(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


async def _request_in_process(app: ASGIApp, path: str) -> None:
    """GET `path` through `app` with no network, discarding the answer."""
    scope: Scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1", "method": "GET", "scheme": "http", "path": path,
        "raw_path": path.encode(), "root_path": "", "query_string": b"", "headers": [],
        "client": ("127.0.0.1", 0), "server": ("127.0.0.1", 0), "state": {}}

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        return None

    await app(scope, receive, send)
