"""The web page of SPEC §8, served on the report port at `/`.

The page is static: `static/index.html`, plain JavaScript modules and one style sheet, all
shipped inside this package (no CDN, no build step). Everything it shows comes from the report
API under `/api/v1` with the signed-in user's token, so there is no second data path and no
extra server-side permission logic: what a token may see is what the API returns for it."""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Match, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC = Path(__file__).parent / "static"
API_PREFIX = "/api"

# Nothing outside this server: scripts, styles, images and requests go to the page's origin
# only. Inline SVG and blob: downloads are the page's own.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate every time (the ETag makes that cheap): a new lrm version is seen at once.
    "Cache-Control": "no-cache",
}


class WebFiles(StaticFiles):
    """The package's static files, with the page's security and caching headers."""

    def file_response(self, full_path: str | os.PathLike[str], stat_result: os.stat_result,
                      scope: Scope, status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(HEADERS)
        return response


class WebMount(Mount):
    """A mount at `/` that never answers under `/api`: unknown API paths and wrong methods keep
    the API's own 404/405 answers instead of falling through to the static files."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = str(scope.get("path", ""))
        if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            return Match.NONE, {}
        return super().matches(scope)


def mount_web(app: Starlette) -> None:
    """Serve the page at `/` after every route already on `app` (call it last), so the API
    routes and the OpenAPI document are unchanged."""
    app.router.routes.append(WebMount("/", app=WebFiles(directory=STATIC, html=True),
                                      name="web"))
