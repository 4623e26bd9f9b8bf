"""A small restartable HTTP listener for the simulators (standard library only).

Each simulator is an *app*: a `respond(request) -> Response` object with no socket code, so its
behaviour can be exercised directly. `HttpService` serves an app on 127.0.0.1 from a background
thread (one thread per connection, HTTP/1.0: every response closes its connection, so a closed
listener really refuses the next request), and can close its listening socket and reopen it on
the same port (the GVP "refuse" failure switch).
"""

from __future__ import annotations

import socket
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Request:
    method: str
    target: str                      # path and query as sent
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]          # lower-case names
    body: bytes = b""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class App(Protocol):
    def respond(self, request: Request) -> Response: ...


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that gave up (timeout, reset) is normal for the failure switches.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, OSError)):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Handler(BaseHTTPRequestHandler):
    server_version = "lrm-sim"
    timeout = 30

    def _serve(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(method=self.command, target=self.path, path=split.path,
                          query=parse_qs(split.query, keep_blank_values=True),
                          headers={k.lower(): v for k, v in self.headers.items()}, body=body)
        app: App = self.server.app  # type: ignore[attr-defined]
        response = app.respond(request)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Connection", "close")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve  # noqa: N815 - http.server names

    def log_message(self, format: str, *args: object) -> None:
        return


class HttpService:
    """Serves `app` on `host:port` (0: the kernel picks a free port, kept across restarts)."""

    def __init__(self, app: App, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def listening(self) -> bool:
        return self._server is not None

    def url(self, path: str = "") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def start(self) -> HttpService:
        """Open the listening socket and serve (no-op when already listening)."""
        with self._lock:
            if self._server is not None:
                return self
            try:
                server = _Server((self.host, self.port), self.app)
            except OSError as exc:
                raise OSError(f"cannot listen on {self.host}:{self.port}: {exc.strerror}") from exc
            self.port = int(server.server_address[1])
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                      name=f"lrm-sim-http-{self.port}", daemon=True)
            thread.start()
            self._server, self._thread = server, thread
            return self

    def close(self) -> None:
        """Stop accepting and close the listening socket: new connections are refused at the
        TCP level. Requests already being handled finish on their own threads."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)


def port_is_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(timeout)
        return probe.connect_ex((host, port)) == 0
