"""The GVP client and its HTTP transport over real sockets: the simulated Reporting Server pair
(auth, failure switches), a keep-alive server that closes kept connections, a forwarding
proxy."""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme

from lrm.domain.errors import SourceError
from lrm.settings import GvpSection
from lrm.sim.gvp import GvpPair
from lrm.sim.model import SimDataset
from lrm.sources import http_get
from lrm.sources.gvp import GvpAuthError, GvpClient
from lrm.sources.http_get import KeepAliveGetter, ProxySettingError, TransportError
from tests.integration.gvp_credentials import GVP_PASSWORD, GVP_USER

START, END = datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC)


def settings_for(gvp_pair: GvpPair, **changes: object) -> GvpSection:
    values: dict[str, object] = {"primary_url": gvp_pair.primary_url,
                                 "backup_url": gvp_pair.backup_url, "username": GVP_USER,
                                 "password": GVP_PASSWORD, "timeout_s": 2, "retries": 1, **changes}
    return GvpSection.model_validate(values)


def no_sleep(_seconds: float) -> None:
    """Retries without the back-off's pauses."""


def test_peaks_of_a_tenant_and_of_the_system(gvp_pair: GvpPair, gvp_dataset: SimDataset) -> None:
    tenant = gvp_dataset.gvp.tenant_ids[0]
    with GvpClient(settings_for(gvp_pair)) as client:
        system = client.peaks("RM", START, END, None)
        one = client.peaks("RM", START, END, tenant)
    assert system.server == one.server == gvp_pair.primary_url
    assert system.bin_start.size == one.bin_start.size == 288
    assert int(system.bin_start[0]) == int(START.timestamp())
    assert (system.count >= one.count).all() and system.count.max() > 0


def test_a_refusing_or_failing_primary_fails_over_to_the_backup(gvp_pair: GvpPair) -> None:
    for mode in ("refuse", "unavailable"):
        gvp_pair.set_mode("primary", mode)
        with GvpClient(settings_for(gvp_pair), sleep=no_sleep) as client:
            assert client.peaks("ASR", START, END, None).server == gvp_pair.backup_url
    gvp_pair.set_mode("primary", "slow", delay_s=10)
    with GvpClient(settings_for(gvp_pair, timeout_s=1.5, retries=0)) as client:
        assert client.peaks("TTS", START, END, None).server == gvp_pair.backup_url


def test_both_down_names_every_attempt(gvp_pair: GvpPair) -> None:
    gvp_pair.set_mode("primary", "refuse")
    gvp_pair.set_mode("backup", "unavailable")
    with GvpClient(settings_for(gvp_pair), sleep=no_sleep) as client, \
            pytest.raises(SourceError) as failure:
        client.peaks("RM", START, END, None)
    message = str(failure.value)
    assert message.startswith("gvp: no Reporting Server answered RM peaks (system): ")
    assert message.count(gvp_pair.primary_url) == 2 and "ConnectionRefusedError" in message
    assert message.count(f"{gvp_pair.backup_url}: HTTP 503") == 2


def test_wrong_credentials_are_a_configuration_error_without_failover(gvp_pair: GvpPair) -> None:
    with GvpClient(settings_for(gvp_pair, password="wrong")) as client, \
            pytest.raises(GvpAuthError, match="answered 401: the Reporting Server refused"):
        client.peaks("RM", START, END, None)
    assert gvp_pair.apps["backup"].requests == 0


def test_a_request_it_does_not_understand_names_the_answer(gvp_pair: GvpPair) -> None:
    with GvpClient(settings_for(gvp_pair, rm_path="/operations/peaks/XYZ")) as client, \
            pytest.raises(SourceError, match="answered 404: no such report"):
        client.peaks("RM", START, END, None)


class _KeepAliveHandler(BaseHTTPRequestHandler):
    """HTTP/1.1, connections kept; each connection answers `per_connection` requests and is
    then closed by the server without a word, as an idle timeout would."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        server: _KeepAliveServer = self.server  # type: ignore[assignment]
        with server.lock:
            server.requests.append((self.client_address[1], self.path,
                                    self.headers.get("Proxy-Authorization")))
            served = sum(1 for port, *_ in server.requests if port == self.client_address[1])
        body = self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        if served >= server.per_connection:
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        """Quiet."""


class _KeepAliveServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, per_connection: int, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _KeepAliveHandler)
        self.per_connection = per_connection
        self.requests: list[tuple[int, str, str | None]] = []
        self.lock = threading.Lock()
        self.scheme = "http" if tls is None else "https"
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}"


@contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[None]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_connections_are_kept_and_a_closed_one_is_replaced() -> None:
    """Requests share a connection while the server keeps it; when the server has closed it,
    the next request goes out once more on a new connection, unnoticed by the caller."""
    server = _KeepAliveServer(per_connection=3)
    with serving(server), KeepAliveGetter(timeout_s=2) as getter:
        answers = [getter.get(server.url + "/r", [("n", str(n))]) for n in range(7)]
    assert [a.body for a in answers] == [f"/r?n={n}".encode() for n in range(7)]
    connections = [port for port, *_ in server.requests]
    assert [connections.count(p) for p in dict.fromkeys(connections)] == [3, 3, 1]


def test_idle_connections_are_not_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kept connection idle for longer than the keep-alive expiry is replaced (one that a
    firewall dropped silently would otherwise cost a whole timeout)."""
    monkeypatch.setattr(http_get, "_KEEP_IDLE_S", 0.0)
    server = _KeepAliveServer(per_connection=100)
    with serving(server), KeepAliveGetter(timeout_s=2) as getter:
        for n in range(3):
            getter.get(server.url + "/r", [("n", str(n))])
    assert len({port for port, *_ in server.requests}) == 3


def test_paths_are_percent_encoded_and_a_closed_getter_refuses() -> None:
    server = _KeepAliveServer(per_connection=100)
    with serving(server):
        getter = KeepAliveGetter(timeout_s=2)
        assert getter.get(server.url + "/ems rs/peaks/é", [("a", "b c")]).body == (
            b"/ems%20rs/peaks/%C3%A9?a=b+c")
        getter.close()
        with pytest.raises(RuntimeError, match="after close"):
            getter.get(server.url + "/r")


def test_no_answer_is_a_transport_error_naming_why() -> None:
    server = _KeepAliveServer(per_connection=1)
    url = server.url
    server.server_close()  # nobody listens on the port any more
    with KeepAliveGetter(timeout_s=2) as getter, \
            pytest.raises(TransportError, match=r"^ConnectionRefusedError: "):
        getter.get(url + "/x")


class _ForwardingProxy(BaseHTTPRequestHandler):
    """An HTTP proxy: takes `GET http://host:port/path` and forwards it."""

    def do_GET(self) -> None:
        proxy: _Proxy = self.server  # type: ignore[assignment]
        proxy.seen.append((self.path, self.headers.get("Proxy-Authorization")))
        url = urllib.parse.urlsplit(self.path)
        target = http.client.HTTPConnection(url.netloc, timeout=5)
        target.request("GET", f"{url.path}?{url.query}" if url.query else url.path)
        answer = target.getresponse()
        body = answer.read()
        target.close()
        self.send_response(answer.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_CONNECT(self) -> None:
        """A tunnel (for https): the bytes are relayed both ways until either side closes."""
        proxy: _Proxy = self.server  # type: ignore[assignment]
        proxy.seen.append((self.path, self.headers.get("Proxy-Authorization")))
        host, _, port = self.path.rpartition(":")
        upstream = socket.create_connection((host, int(port)), timeout=5)
        self.send_response(200, "Connection established")
        self.end_headers()
        ends = [self.connection, upstream]
        try:
            while True:
                readable, _, _ = select.select(ends, [], [], 5)
                if not readable:
                    return
                for end in readable:
                    data = end.recv(65536)
                    if not data:
                        return
                    (upstream if end is self.connection else self.connection).sendall(data)
        finally:
            upstream.close()
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        """Quiet."""


class _Proxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ForwardingProxy)
        self.seen: list[tuple[str, str | None]] = []


def _without_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def test_http_proxy_from_the_environment_and_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    server, proxy = _KeepAliveServer(per_connection=100), _Proxy()
    _without_proxy_settings(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", f"http://ops:se%40cret@127.0.0.1:{proxy.server_address[1]}")
    with serving(server), serving(proxy):
        with KeepAliveGetter(timeout_s=2) as getter:
            assert getter.get(server.url + "/via", [("a", "1")]).body == b"/via?a=1"
        assert proxy.seen == [(server.url + "/via?a=1", "Basic b3BzOnNlQGNyZXQ=")]
        monkeypatch.setenv("no_proxy", "example.org, 127.0.0.1")
        with KeepAliveGetter(timeout_s=2) as getter:
            assert getter.get(server.url + "/direct").body == b"/direct"
        assert len(proxy.seen) == 1


def test_a_proxy_it_cannot_use_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                                gvp_pair: GvpPair) -> None:
    _without_proxy_settings(monkeypatch)
    monkeypatch.setenv("all_proxy", "socks5://127.0.0.1:1080")
    with KeepAliveGetter(timeout_s=2) as getter, \
            pytest.raises(ProxySettingError, match="is not an http:// proxy"):
        getter.get("http://127.0.0.1:1/x")
    with GvpClient(settings_for(gvp_pair)) as client, \
            pytest.raises(SourceError, match=r"socks5://127\.0\.0\.1:1080"):
        client.peaks("RM", START, END, None)


def test_https_checks_the_certificate_and_tunnels_through_a_proxy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An https server's certificate is checked against the trust store (`SSL_CERT_FILE`
    names one), connections are kept over TLS, and an http proxy tunnels https with CONNECT."""
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_tls)
    server, proxy = _KeepAliveServer(per_connection=100, tls=server_tls), _Proxy()
    _without_proxy_settings(monkeypatch)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with serving(server), serving(proxy):
        with KeepAliveGetter(timeout_s=2) as getter, \
                pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
            getter.get(server.url + "/untrusted")
        ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
        with KeepAliveGetter(timeout_s=2) as getter:
            assert [getter.get(server.url + "/s", [("n", str(n))]).body
                    for n in range(3)] == [b"/s?n=0", b"/s?n=1", b"/s?n=2"]
        assert len({port for port, *_ in server.requests}) == 1
        monkeypatch.setenv("https_proxy", f"http://ops:pw@127.0.0.1:{proxy.server_address[1]}")
        with KeepAliveGetter(timeout_s=2) as getter:
            assert getter.get(server.url + "/tunnelled").body == b"/tunnelled"
    assert proxy.seen == [(f"127.0.0.1:{server.server_address[1]}", "Basic b3BzOnB3")]
