"""What every request handler needs: the database and the caller. Errors lrm understands are
turned into HTTP statuses in one place (`install_error_handlers`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from threading import Lock
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from lrm.api.cache import ReportCache
from lrm.domain.errors import DatabaseError, InputError, LrmError
from lrm.domain.items import Catalogue
from lrm.settings import Settings
from lrm.store.tokens import Principal, authenticate

# A token check costs a database round trip; successful checks are remembered briefly (a
# revoked token stops working within this many seconds).
TOKEN_CACHE_S = 5.0


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
    _tokens: dict[str, tuple[float, Principal]] = field(default_factory=dict)
    _lock: Lock = field(default_factory=Lock)

    def principal(self, token: str) -> Principal | None:
        """The token's principal (None: unknown or revoked); may query the database."""
        cached = self.remembered_principal(token)
        if cached is not None:
            return cached
        now = time.monotonic()
        with self.engine.connect() as connection:
            principal = authenticate(connection, token)
        with self._lock:
            if principal is None:
                self._tokens.pop(token, None)
            else:
                self._tokens[token] = (now, principal)
        return principal

    def remembered_principal(self, token: str) -> Principal | None:
        """The token's principal if a check succeeded within `TOKEN_CACHE_S` (no I/O)."""
        with self._lock:
            cached = self._tokens.get(token)
        if cached is not None and time.monotonic() - cached[0] < TOKEN_CACHE_S:
            return cached[1]
        return None


# The dependencies are coroutines: a request whose answer is in memory (a remembered token, a
# cached report) is served on the event loop without a hop to the thread pool; only database
# work goes there.
async def context(request: Request) -> ApiContext:
    return api_context(request)


def api_context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.context
    return ctx


async def caller(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("an API token is required: send 'Authorization: Bearer <token>' "
                           "(create one with `lrm token create`)")
    ctx = api_context(request)
    principal = ctx.remembered_principal(token.strip())
    if principal is None:
        principal = await run_in_threadpool(ctx.principal, token.strip())
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
