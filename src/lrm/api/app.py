"""The report app served on the report port while this instance is primary (SPEC §7)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from lrm import __version__


def create_report_app(*, instance_id: str, mode: Callable[[], str]) -> FastAPI:
    app = FastAPI(title="lrm report API", version=__version__,
                  openapi_url="/api/v1/openapi.json", docs_url="/api/v1/docs", redoc_url=None)

    @app.get("/api/v1/health", summary="Liveness of the primary's report API")
    def health() -> dict[str, str]:
        return {"status": "ok", "instance_id": instance_id, "mode": mode()}

    return app
