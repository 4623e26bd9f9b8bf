"""HTTP GETs over the standard library's `http.client`, one connection per thread and origin,
kept open for the next request while the server allows it.

Why not httpx: a nightly job asks the Reporting Server for a report per component and tenant
(603 a day with 200 tenants), and httpx spent about 1.0 ms of CPU on each (URL and header
models, auth flow, transport layers) against 0.3 ms here, on a machine whose cores the job
shares with PostgreSQL. What httpx gave that a client needs is kept: the `*_proxy` /
`no_proxy` environment variables (an `http://` proxy; `https://` servers through it by
`CONNECT`), certificate checks against the system's trust store (`SSL_CERT_FILE` and
`SSL_CERT_DIR` apply), a timeout on connecting and on every read, and a retry on a fresh
connection when a kept connection turns out to have been closed by the server. A connection
idle for more than a few seconds is not reused (as httpx's pool): one that a firewall dropped
silently would cost a whole timeout before the retry. Not supported: `https://` to an IPv6
address through a proxy on Python 3.11 (its `CONNECT` line lacks the brackets)."""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass

from lrm import __version__

USER_AGENT = f"lrm/{__version__}"
# A kept connection the server closed in the meantime fails like this before any answer.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
          ConnectionAbortedError)
_KEEP_IDLE_S = 5.0  # httpx's keep-alive expiry
# Characters a path may carry as they are (RFC 3986 pchar and "/"; "%" keeps escapes as given).
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_Kept = dict[tuple[str, str, int], tuple[http.client.HTTPConnection, float]]


class TransportError(Exception):
    """The request got no HTTP answer: the connection was refused, reset or timed out, or the
    server did not speak HTTP. Worth another attempt or another server."""


class ProxySettingError(ValueError):
    """A `*_proxy` environment variable this client cannot use."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def text(self, limit: int = 200) -> str:
        return self.body[:limit].decode("utf-8", "replace").strip()


@dataclass(frozen=True)
class _Route:
    """How to reach an origin: directly, or through an HTTP proxy (a tunnel for https)."""

    scheme: str
    host: str
    port: int
    proxy: urllib.parse.SplitResult | None

    @property
    def forwarded(self) -> bool:
        """The proxy forwards each request (no tunnel): the request line names the URL."""
        return self.proxy is not None and self.scheme == "http"

    def connect_to(self) -> tuple[str, int]:
        if self.proxy is None:
            return self.host, self.port
        assert self.proxy.hostname is not None
        return self.proxy.hostname, self.proxy.port or 80

    def proxy_headers(self) -> dict[str, str]:
        if self.proxy is None or self.proxy.username is None:
            return {}
        return {"Proxy-Authorization": basic_credentials(
            urllib.parse.unquote(self.proxy.username),
            urllib.parse.unquote(self.proxy.password or ""))}


def basic_credentials(username: str, password: str) -> str:
    """An `Authorization: Basic` value (RFC 7617, UTF-8)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


class KeepAliveGetter:
    """GET requests from any number of threads; each thread keeps one connection per origin.
    `headers` are sent with every request (e.g. Authorization). Close it when done: it closes
    every connection any thread opened."""

    def __init__(self, *, timeout_s: float, headers: dict[str, str] | None = None) -> None:
        self.timeout_s = timeout_s
        self.headers = {"User-Agent": USER_AGENT, "Accept": "*/*", **(headers or {})}
        # http_proxy, https_proxy, all_proxy, no_proxy (either case; lower-case wins).
        self._proxies = urllib.request.getproxies_environment()
        self._routes: dict[tuple[str, str, int], _Route] = {}
        self._tls: ssl.SSLContext | None = None
        self._local = threading.local()
        self._open_connections: set[http.client.HTTPConnection] = set()
        self._lock = threading.Lock()
        self._closed = False

    def get(self, url: str, query: list[tuple[str, str]] | None = None) -> Answer:
        """GET `url` (plus `query`) and read the whole answer, whatever its status. Raises
        TransportError when no answer came."""
        if self._closed:
            raise RuntimeError("KeepAliveGetter used after close()")
        parts = urllib.parse.urlsplit(url)
        route = self._route(parts)
        path = (urllib.parse.quote(parts.path or "/", safe=_PATH_SAFE)
                + ("?" + urllib.parse.urlencode(query) if query else ""))
        target, headers = path, self.headers
        if route.forwarded:
            target = f"{route.scheme}://{parts.netloc.rpartition('@')[2]}{path}"
            headers = {**headers, **route.proxy_headers()}
        key = (route.scheme, route.host, route.port)
        kept = self._kept()
        connection, last_used = kept.pop(key, (None, 0.0))
        if connection is not None and time.monotonic() - last_used > _KEEP_IDLE_S:
            self._close(connection)
            connection = None
        reused = connection is not None
        while True:
            if connection is None:
                connection = self._open(route)
            try:
                connection.request("GET", target, headers=headers)
                response = connection.getresponse()
                body = response.read()
            except _STALE as exc:
                self._close(connection)
                connection = None
                if reused:  # closed while kept: a GET is safe to send again, once
                    reused = False
                    continue
                raise TransportError(_describe(exc)) from exc
            except (OSError, http.client.HTTPException) as exc:
                self._close(connection)
                raise TransportError(_describe(exc, self.timeout_s)) from exc
            if response.will_close:
                self._close(connection)
            else:
                kept[key] = (connection, time.monotonic())
            return Answer(response.status, body)

    def close(self) -> None:
        """Close every connection; the getter cannot be used afterwards."""
        with self._lock:
            self._closed = True
            still_open, self._open_connections = self._open_connections, set()
        for connection in still_open:
            connection.close()

    def __enter__(self) -> KeepAliveGetter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _kept(self) -> _Kept:
        kept: _Kept | None = getattr(self._local, "kept", None)
        if kept is None:
            kept = self._local.kept = {}
        return kept

    def _route(self, parts: urllib.parse.SplitResult) -> _Route:
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http:// or https:// URL: {parts.geturl()}")
        port = parts.port or (443 if scheme == "https" else 80)
        key = (scheme, parts.hostname, port)
        route = self._routes.get(key)
        if route is None:
            route = self._routes[key] = _Route(scheme, parts.hostname, port,
                                               self._proxy_for(scheme, parts.hostname, port))
        return route

    def _proxy_for(self, scheme: str, host: str, port: int) -> urllib.parse.SplitResult | None:
        proxy = self._proxies.get(scheme) or self._proxies.get("all")
        if not proxy or _bypassed(host, port, self._proxies.get("no", "")):
            return None
        parsed = urllib.parse.urlsplit(proxy if "://" in proxy else "http://" + proxy)
        if parsed.scheme.lower() != "http" or not parsed.hostname:
            raise ProxySettingError(
                f"the proxy set for {scheme}:// URLs, {proxy!r}, is not an http:// proxy: only "
                "those are supported (set no_proxy to reach the server directly)")
        try:
            _ = parsed.port
        except ValueError as exc:
            raise ProxySettingError(f"the proxy set for {scheme}:// URLs, {proxy!r}: "
                                    f"{exc}") from exc
        return parsed

    def _open(self, route: _Route) -> http.client.HTTPConnection:
        host, port = route.connect_to()
        connection: http.client.HTTPConnection
        if route.scheme == "https":
            connection = http.client.HTTPSConnection(host, port, timeout=self.timeout_s,
                                                     context=self._tls_context())
            if route.proxy is not None:
                connection.set_tunnel(route.host, route.port, headers=route.proxy_headers())
        else:
            connection = http.client.HTTPConnection(host, port, timeout=self.timeout_s)
        with self._lock:
            if self._closed:
                raise RuntimeError("KeepAliveGetter used after close()")
            self._open_connections.add(connection)
        return connection

    def _close(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        with self._lock:
            self._open_connections.discard(connection)

    def _tls_context(self) -> ssl.SSLContext:
        # One context for every connection: building one loads the trust store (tens of ms).
        with self._lock:
            if self._tls is None:
                self._tls = ssl.create_default_context()
            return self._tls


def _bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Whether `no_proxy` (comma-separated: `*`, host names, domain suffixes with or without a
    leading dot, each with an optional `:port`) names this host."""
    host = host.lower()
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        name, _, only_port = entry.partition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry == "*" or (name and (not only_port or only_port == str(port)) and (
                host == name.lstrip(".") or host.endswith("." + name.lstrip(".")))):
            return True
    return False


def _describe(exc: BaseException, timeout_s: float | None = None) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)) and timeout_s is not None:
        return f"timed out after {timeout_s:g} s"
    text = str(exc)
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__
