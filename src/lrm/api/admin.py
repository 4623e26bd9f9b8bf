"""The admin port (always open): /healthz, /status, /metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from lrm.observability import Metrics


def create_admin_app(status: Callable[[], dict[str, Any]], metrics: Metrics) -> Starlette:
    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def status_view(request: Request) -> Response:
        return JSONResponse(status())

    async def metrics_view(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[
        Route("/healthz", healthz),
        Route("/status", status_view),
        Route("/metrics", metrics_view),
    ])
