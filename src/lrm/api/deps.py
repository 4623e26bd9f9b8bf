"""What every request handler needs: the database and the caller. Errors lrm understands are
turned into HTTP statuses in one place (`install_error_handlers`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from threading import Lock
from typing import Annotated, Any

import anyio
import anyio.to_thread
import sqlalchemy as sa
from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from lrm.api.cache import VERSION_TTL_S, ReportCache
from lrm.api.single_flight import SingleFlight
from lrm.domain.errors import DatabaseError, InputError, LrmError
from lrm.domain.items import Catalogue
from lrm.domain.report_rows import ReportReference
from lrm.settings import Settings
from lrm.store.event_loop_reads import EventLoopReads
from lrm.store.tokens import Principal, authenticate

# A token check costs a database round trip; successful checks are remembered briefly (a
# revoked token stops working within this many seconds).
TOKEN_CACHE_S = 5.0
log = logging.getLogger(__name__)
REPORT_BUILD_THREADS = 4


class HttpError(Exception):
    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None,
                 problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.problems = problems or [message]


def unauthorized(message: str) -> HttpError:
    return HttpError(401, message, headers={"WWW-Authenticate": 'Bearer realm="lrm"'})


def forbidden(message: str) -> HttpError:
    return HttpError(403, message)


@dataclass
class ApiContext:
    settings: Settings
    engine: sa.Engine
    catalogue: Catalogue
    instance_id: str
    reports: ReportCache
    # Connections for the reports built on the event loop (None: every report in a thread).
    reads: EventLoopReads | None = None
    # Reports not in the cache are built in at most this many threads: building is mostly
    # Python, so more threads than that only take turns at the GIL (and at the DB pool).
    report_builds: anyio.CapacityLimiter = field(
        default_factory=lambda: anyio.CapacityLimiter(REPORT_BUILD_THREADS))
    # The read of the data version and its reference that requests finding them missing
    # wait for together (`lrm.api.routes.current_reference`), and the checks of tokens not
    # remembered (`caller`).
    reference_reads: SingleFlight[None, tuple[tuple[Any, ...], ReportReference]] = field(
        default_factory=SingleFlight)
    token_checks: SingleFlight[str, Principal | None] = field(default_factory=SingleFlight)
    _tokens: dict[str, _Remembered] = field(default_factory=dict)
    _lock: Lock = field(default_factory=Lock)
    _last_request: float = float("-inf")

    def principal(self, token: str) -> Principal | None:
        """The token's principal (None: unknown or revoked); may query the database."""
        cached = self.remembered_principal(token)
        if cached is not None:
            return cached
        now = time.monotonic()
        with self.engine.connect() as connection:
            principal = authenticate(connection, token)
        self._remember(token, principal, now)
        return principal

    def remembered_principal(self, token: str) -> Principal | None:
        """The token's principal if a check succeeded within `TOKEN_CACHE_S` (no I/O)."""
        with self._lock:
            self._last_request = time.monotonic()
            remembered = self._tokens.get(token)
            if remembered is None or time.monotonic() - remembered.checked_at >= TOKEN_CACHE_S:
                return None
            remembered.used = True
            return remembered.principal

    def active(self) -> bool:
        """A request came within `TOKEN_CACHE_S` (or the port opened: `expect_requests`)."""
        return time.monotonic() - self._last_request < TOKEN_CACHE_S

    def expect_requests(self) -> None:
        """Count as active from now on: the report port is about to open, and the clients that
        waited for it come at once. Their requests then find the data version the warm-up
        read still fresh (`keep_fresh`), and need not wait for it to be read again."""
        with self._lock:
            self._last_request = time.monotonic()

    def refresh(self) -> None:
        """Re-read what requests keep in memory before it expires (see `keep_fresh`): the data
        version, and the tokens used since their last check (a revoked one is forgotten; one
        not used since is forgotten too, and checked again by its next request)."""
        self.reports.refresh_version()
        now = time.monotonic()
        with self._lock:
            due = [token for token, remembered in self._tokens.items()
                   if now - remembered.checked_at >= TOKEN_CACHE_S / 2]
            used = {token for token in due if self._tokens[token].used}
            for token in due:
                if token not in used:
                    del self._tokens[token]
        if used:  # kept meanwhile: requests go on using them while they are checked again
            with self.engine.connect() as connection:
                for token in used:
                    self._remember(token, authenticate(connection, token), now)

    def _remember(self, token: str, principal: Principal | None, checked_at: float) -> None:
        with self._lock:
            if principal is None:
                self._tokens.pop(token, None)
            else:
                self._tokens[token] = _Remembered(principal, checked_at)


@dataclass
class _Remembered:
    principal: Principal
    checked_at: float
    used: bool = False


async def keep_fresh(refresh: Callable[[], None], active: Callable[[], bool],
                     period_s: float = VERSION_TTL_S / 2) -> None:
    """While the report app serves requests, run `refresh` (`ApiContext.refresh`) every
    `period_s`, so that no request waits for the reads it does. (When requests did them, every
    request arriving during the version re-read went to the thread pool: under load that
    stalled 1 % of the answers ~300 ms once a second.) Nothing is read while no requests come.
    A failure is logged once and the loop goes on: the values expire, and requests read them
    themselves, reporting the database error."""
    failing = False
    while True:
        if active():
            try:
                # abandon_on_cancel: a thread stuck on an unreachable database must not hold
                # up closing the report port (demotion, shutdown).
                await anyio.to_thread.run_sync(refresh, abandon_on_cancel=True)
                failing = False
            except Exception as exc:  # any failure: requests take over
                if not failing:
                    log.warning("report API: refreshing the data version and tokens failed "
                                "(requests will read them): %s", exc)
                failing = True
        await asyncio.sleep(period_s)


# The dependencies are coroutines: a request whose answer is in memory (a remembered token, a
# cached report) is served on the event loop without a hop to the thread pool; only database
# work goes there.
async def context(request: Request) -> ApiContext:
    return api_context(request)


def api_context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.context
    return ctx


def bearer_token(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value (None: not one)."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def caller(request: Request) -> Principal:
    token = bearer_token(request.headers.get("authorization", ""))
    if token is None:
        raise unauthorized("an API token is required: send 'Authorization: Bearer <token>' "
                           "(create one with `lrm token create`)")
    ctx = api_context(request)
    principal = ctx.remembered_principal(token)
    if principal is None:  # checked once for the requests that bring it at the same moment
        principal = await ctx.token_checks.run(token, None, lambda: (
            run_in_threadpool(ctx.principal, token)))
    if principal is None:
        raise unauthorized("the API token is unknown or revoked")
    return principal


async def provider(principal: Annotated[Principal, Depends(caller)]) -> Principal:
    if not principal.is_provider:
        raise forbidden("this needs a provider token")
    return principal


Ctx = Annotated[ApiContext, Depends(context)]
Caller = Annotated[Principal, Depends(caller)]
Provider = Annotated[Principal, Depends(provider)]


def _body(status: int, message: str, problems: list[str]) -> dict[str, Any]:
    return {"error": message, "status": status, "problems": problems}


def install_error_handlers(app: FastAPI) -> None:
    """Every error becomes a JSON body `{error, status, problems}`; bad input is a 422 naming
    the parameter; a database problem is a 503; nothing user-caused is ever a 500."""

    @app.exception_handler(HttpError)
    async def http_error(request: Request, exc: HttpError) -> JSONResponse:
        return JSONResponse(_body(exc.status, exc.message, exc.problems), status_code=exc.status,
                            headers=exc.headers)

    @app.exception_handler(InputError)
    async def input_error(request: Request, exc: InputError) -> JSONResponse:
        return JSONResponse(_body(422, str(exc), exc.problems), status_code=422)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors():
            location = [str(part) for part in error.get("loc", ()) if part not in ("query",)]
            name = ".".join(location) or "request"
            problems.append(f"{name}: {error.get('msg', 'invalid')}")
        return JSONResponse(_body(422, "invalid request: " + "; ".join(problems), problems),
                            status_code=422)

    @app.exception_handler(DatabaseError)
    async def database_error(request: Request, exc: DatabaseError) -> JSONResponse:
        return JSONResponse(_body(503, str(exc), [str(exc)]), status_code=503,
                            headers={"Retry-After": "5"})

    @app.exception_handler(sa.exc.SQLAlchemyError)
    async def driver_error(request: Request, exc: sa.exc.SQLAlchemyError) -> JSONResponse:
        message = "the LRM database is not available: " + (
            str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0]
        return JSONResponse(_body(503, message, [message]), status_code=503,
                            headers={"Retry-After": "5"})

    @app.exception_handler(LrmError)
    async def lrm_error(request: Request, exc: LrmError) -> JSONResponse:
        return JSONResponse(_body(422, str(exc), [str(exc)]), status_code=422)
