"""The simulated configuration gateway (SPEC §4.2) over HTTP.

`GET {base}/tenants`, `/persons`, `/places`, `/dns`, `/switches`, `/agent-groups`,
`/place-groups` return JSON arrays; `GET {base}/document` returns every key in one object (the
`kind = "file"` document); `GET {base}/changes` returns the change timeline. Each takes an optional
`as_of=<ISO 8601>` and answers with the configuration in force at that instant, else at the
injected clock's "now". The base path is `/cfg`. The lists carry an `ETag` (the list's version in
the timeline, and a token of this gateway process); a request whose `If-None-Match` names the
current one gets `304 Not Modified` without a body, as a caching HTTP gateway would answer.

The gateway also carries the simulators' control endpoint for the GVP pair:
`GET /_control/gvp` shows the failure switches; `POST /_control/gvp?target=primary|backup|both
&mode=ok|refuse|unavailable|slow[&delay_s=N]` sets them.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from lrm.sim.httpserver import HttpService, Request, Response
from lrm.sim.timeline import CONFIG_KEYS, ConfigTimeline, parse_iso_utc

Clock = Callable[[], datetime]
BASE_PATH = "/cfg"
CONTROL_PATH = "/_control/gvp"


def utc_now() -> datetime:
    return datetime.now(UTC)


class GvpControl(Protocol):
    def set_mode(self, target: str, mode: str, *, delay_s: float | None = None) -> None: ...

    def modes(self) -> dict[str, dict[str, Any]]: ...


def json_response(status: int, payload: object) -> Response:
    return Response(status, json.dumps(payload, separators=(",", ":")).encode())


def error(status: int, message: str) -> Response:
    return json_response(status, {"error": message, "status": status})


class ConfigGateway:
    """The gateway app (no sockets): answers requests from a `ConfigTimeline`."""

    def __init__(self, timeline: ConfigTimeline, *, clock: Clock = utc_now,
                 base_path: str = BASE_PATH, control: GvpControl | None = None) -> None:
        self.timeline = timeline
        self.clock = clock
        self.base_path = base_path.rstrip("/")
        self.control = control
        self._cache: dict[tuple[int, str], bytes] = {}
        self._lock = threading.Lock()
        # ETags name versions of this process's timeline: a restarted gateway (perhaps
        # serving another simulation) never confirms a client's old copy.
        self._etag_prefix = secrets.token_hex(4)

    def respond(self, request: Request) -> Response:
        if request.path == CONTROL_PATH:
            return self._control(request)
        name = (request.path[len(self.base_path):].strip("/")
                if request.path.startswith(self.base_path) else None)
        if name not in (*CONFIG_KEYS, "document", "changes", ""):
            return error(404, f"no such path: {request.path} (known: "
                              f"{', '.join(f'{self.base_path}/{k}' for k in CONFIG_KEYS)}, "
                              f"{self.base_path}/document, {self.base_path}/changes)")
        if request.method not in ("GET", "HEAD"):
            return error(405, f"{request.method} is not allowed on {request.path}")
        if name in ("", "changes"):
            return json_response(200, self.timeline.changes_json() if name else {
                "endpoints": [f"{self.base_path}/{k}" for k in
                              (*CONFIG_KEYS, "document", "changes")]})
        try:
            ts = self._instant(request.query.get("as_of"))
        except ValueError as exc:
            return error(400, str(exc))
        return self._list(request, name, self.timeline.applied_count(ts))

    def _list(self, request: Request, name: str, applied: int) -> Response:
        """A list (with its ETag, honouring If-None-Match) or the whole document."""
        if name == "document":
            return Response(200, self._body(applied, name))
        etag = f'"{self._etag_prefix}-{name}-{self.timeline.key_version(applied, name)}"'
        if etag in (t.strip() for t in request.headers.get("if-none-match", "").split(",")):
            return Response(304, b"", headers={"ETag": etag})
        return Response(200, self._body(applied, name), headers={"ETag": etag})

    def _instant(self, as_of: list[str] | None) -> int:
        """Epoch seconds of the `as_of` parameter, else of the clock's now."""
        if as_of is None:
            return int(self.clock().timestamp())
        if len(as_of) != 1:
            raise ValueError("as_of may be given once")
        try:
            return parse_iso_utc(as_of[0])
        except ValueError:
            raise ValueError(f"as_of={as_of[0]!r} is not an ISO 8601 instant "
                             "(e.g. 2026-11-24T15:00:00Z)") from None

    def _body(self, applied: int, name: str) -> bytes:
        key = (applied, name)
        with self._lock:
            cached = self._cache.get(key)
        if cached is None:
            document = self.timeline.document_after(applied)
            payload: object = document if name == "document" else document[name]
            cached = json.dumps(payload, separators=(",", ":")).encode()
            with self._lock:
                if len(self._cache) > 64:
                    self._cache.clear()
                self._cache[key] = cached
        return cached

    def _control(self, request: Request) -> Response:
        if self.control is None:
            return error(404, "no GVP pair is attached to this gateway")
        if request.method == "GET":
            return json_response(200, self.control.modes())
        if request.method != "POST":
            return error(405, f"{request.method} is not allowed on {CONTROL_PATH}")
        target = request.query.get("target", ["primary"])[0]
        mode = request.query.get("mode", [""])[0]
        delay = request.query.get("delay_s")
        try:
            delay_s = float(delay[0]) if delay else None
            self.control.set_mode(target, mode, delay_s=delay_s)
        except ValueError as exc:
            return error(400, str(exc))
        except OSError as exc:      # the port was taken while the server refused connections
            return error(503, f"cannot reopen the server: {exc}")
        return json_response(200, self.control.modes())


class ConfigGatewayServer:
    """The gateway on 127.0.0.1:`port` (0 picks a free port)."""

    def __init__(self, timeline: ConfigTimeline, *, port: int = 0, clock: Clock = utc_now,
                 control: GvpControl | None = None, host: str = "127.0.0.1") -> None:
        self.app = ConfigGateway(timeline, clock=clock, control=control)
        self.service = HttpService(self.app, host=host, port=port)

    @property
    def url(self) -> str:
        """The base URL for `[config_source] url` (ends in /cfg)."""
        return self.service.url(BASE_PATH)

    @property
    def control_url(self) -> str:
        return self.service.url(CONTROL_PATH)

    def start(self) -> ConfigGatewayServer:
        self.service.start()
        return self

    def stop(self) -> None:
        self.service.close()

    def __enter__(self) -> ConfigGatewayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
