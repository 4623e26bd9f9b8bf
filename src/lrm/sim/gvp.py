"""A simulated GVP Reporting Server pair (SPEC §4.3): primary and backup on 127.0.0.1.

`GET /ems-rs/operations/peaks/RM|ASR|TTS?granularity=FIVE_MINUTES&from=…&to=…[&tenant-id=…]`
returns the XML peak report; `from` is snapped back and `to` forward to bin boundaries and both
are echoed in `<normalized-params>`. Without `tenant-id` the values are the system's (per-bin
sum over tenants); with several, the per-bin sum over those. Granularities FIVE_MINUTES,
THIRTY_MINUTES, HOUR and DAY (UTC days) are served; a coarser bin's count is the maximum of its
5-minute peaks. Bad parameters get 400 with a plain-text message; with a username configured,
a missing or wrong `Authorization: Basic` header gets 401 with `WWW-Authenticate`.

Failure switches per server (`GvpPair.set_mode`, or over HTTP on the gateway's control endpoint):
`refuse` closes the listening socket (connection refused) and `ok` reopens it on the same port;
`unavailable` answers 503; `slow` delays every response by `delay_s` seconds.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from lrm.sim.gvpdata import GRANULARITIES, GVP_KINDS, GvpData
from lrm.sim.httpserver import HttpService, Request, Response

BASE_PATH = "/ems-rs"
PEAKS_PATH = f"{BASE_PATH}/operations/peaks/"
MODES = ("ok", "refuse", "unavailable", "slow")
TARGETS = ("primary", "backup")
MAX_BUCKETS = 200_000
DEFAULT_SLOW_S = 5.0
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


# Every report of a day repeats the same few hundred bin starts, and strftime was most of the
# simulator's CPU: on a 2-core benchmark machine it competes with the job it serves.
@functools.lru_cache(maxsize=1 << 16)
def gvp_time(ts: int) -> str:
    """`2026-11-24T10:05:00.000Z`"""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _parse_instant(name: str, text: str) -> int:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{name}={text!r} is not an ISO 8601 instant "
                         "(e.g. 2026-11-24T00:00:00.000Z)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() // 1)


def peak_report_xml(request_uri: str, from_ts: int, to_ts: int, granularity: str,
                    peaks: list[tuple[int, int]]) -> bytes:
    lines = [
        "<peak-report>",
        "  <manifest>",
        f"    <request-uri>{escape(request_uri)}</request-uri>",
        f'    <normalized-params from="{gvp_time(from_ts)}" to="{gvp_time(to_ts)}" '
        f'granularity="{granularity}"/>',
        '    <meta timezone_offset="0" version="8.1.7"/>',
        "  </manifest>",
        f'  <peaks granularity="{granularity}">',
        *(f'    <peak time="{gvp_time(t)}" count="{c}"/>' for t, c in peaks),
        "  </peaks>",
        "</peak-report>",
        "",
    ]
    return "\n".join(lines).encode()


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _text(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status, (message + "\n").encode(), "text/plain; charset=utf-8",
                    headers or {})


class GvpReportingServer:
    """One Reporting Server app (no sockets), with its failure mode."""

    def __init__(self, data: GvpData, *, name: str, username: str | None = None,
                 password: str | None = None, clock: Clock = utc_now) -> None:
        self.data = data
        self.name = name
        self.username = username
        self.password = password or ""
        self.clock = clock
        self.mode = "ok"
        self.delay_s = DEFAULT_SLOW_S
        self._wake = threading.Event()
        self.requests = 0

    def set_mode(self, mode: str, *, delay_s: float | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)} (got {mode!r})")
        if delay_s is not None:
            if not 0 <= delay_s <= 3600:
                raise ValueError("delay_s must be between 0 and 3600")
            self.delay_s = delay_s
        self.mode = mode
        # Wake requests sleeping in slow mode: they finish according to the new mode.
        self._wake.set()
        self._wake = threading.Event()

    def wake_all(self) -> None:
        self._wake.set()

    def respond(self, request: Request) -> Response:
        self.requests += 1
        if self.mode == "slow":
            self._wake.wait(self.delay_s)
        if self.mode == "unavailable":
            return _text(503, f"{self.name}: service unavailable (simulated)")
        if not self._authorised(request.headers.get("authorization", "")):
            return _text(401, "authentication required",
                         {"WWW-Authenticate": 'Basic realm="ems-rs"'})
        try:
            return self._route(request)
        except _HttpError as exc:
            return _text(exc.status, str(exc))

    def _route(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            raise _HttpError(405, f"{request.method} is not allowed")
        kind = request.path.removeprefix(PEAKS_PATH)
        if not request.path.startswith(PEAKS_PATH) or kind not in GVP_KINDS:
            raise _HttpError(404, f"no such report: {request.path} (known: "
                                  f"{', '.join(PEAKS_PATH + k for k in GVP_KINDS)})")
        try:
            return self._peaks(kind, request)
        except ValueError as exc:
            raise _HttpError(400, str(exc)) from None

    def _authorised(self, header: str) -> bool:
        if self.username is None:
            return True
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        return bool(sep) and hmac.compare_digest(user.encode(), self.username.encode()) and \
            hmac.compare_digest(password.encode(), self.password.encode())

    def _peaks(self, kind: str, request: Request) -> Response:
        query = request.query
        unknown = sorted(set(query) - {"granularity", "from", "to", "tenant-id"})
        if {"app-id", "dn"} & set(unknown):
            raise ValueError("app-id and dn filters are not simulated (use tenant-id)")
        if unknown:
            raise ValueError(f"unknown parameter(s): {', '.join(unknown)}")
        for name in ("granularity", "from", "to"):
            if len(query.get(name, [])) > 1:
                raise ValueError(f"{name} may be given once")
        granularity = query.get("granularity", [""])[0]
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity is required, one of {', '.join(GRANULARITIES)} "
                             f"(got {granularity!r})")
        if "from" not in query:
            raise ValueError("from is required (ISO 8601, e.g. 2026-11-24T00:00:00.000Z)")
        step = GRANULARITIES[granularity]
        from_ts = _parse_instant("from", query["from"][0])
        to_ts = (_parse_instant("to", query["to"][0]) if "to" in query
                 else int(self.clock().timestamp()))
        if to_ts < from_ts:
            raise ValueError("to must not be before from")
        from_ts -= from_ts % step
        to_ts += -to_ts % step
        if (to_ts - from_ts) // step > MAX_BUCKETS:
            raise ValueError(f"the range holds more than {MAX_BUCKETS} bins")
        tenants: list[int] | None = None
        if "tenant-id" in query:
            try:
                tenants = [int(t) for t in query["tenant-id"]]
            except ValueError:
                raise ValueError("tenant-id must be an integer DBID") from None
        peaks = self.data.series(kind, tenants, from_ts, to_ts, step)
        return Response(200, peak_report_xml(request.target, from_ts, to_ts, granularity, peaks),
                        "application/xml")


class GvpPair:
    """Primary and backup Reporting Servers over the same data (the control handle)."""

    def __init__(self, data: GvpData, *, ports: tuple[int, int] = (0, 0),
                 username: str | None = None, password: str | None = None,
                 clock: Clock = utc_now, host: str = "127.0.0.1") -> None:
        self.apps = {target: GvpReportingServer(data, name=target, username=username,
                                                password=password, clock=clock)
                     for target in TARGETS}
        self.services = {target: HttpService(self.apps[target], host=host, port=port)
                         for target, port in zip(TARGETS, ports, strict=True)}
        self._lock = threading.Lock()

    @property
    def primary_url(self) -> str:
        return self.services["primary"].url(BASE_PATH)

    @property
    def backup_url(self) -> str:
        return self.services["backup"].url(BASE_PATH)

    @property
    def ports(self) -> tuple[int, int]:
        return self.services["primary"].port, self.services["backup"].port

    def start(self) -> GvpPair:
        for target in TARGETS:
            if self.apps[target].mode != "refuse":
                self.services[target].start()
        return self

    def stop(self) -> None:
        for target in TARGETS:
            self.apps[target].wake_all()
            self.services[target].close()

    def set_mode(self, target: str, mode: str, *, delay_s: float | None = None) -> None:
        """Set the failure mode of `primary`, `backup` or `both`:
        ok | refuse | unavailable | slow (with `delay_s`)."""
        targets = TARGETS if target == "both" else (target,)
        if any(t not in TARGETS for t in targets):
            raise ValueError(f"target must be primary, backup or both (got {target!r})")
        with self._lock:
            for t in targets:
                self.apps[t].set_mode(mode, delay_s=delay_s)
                if mode == "refuse":
                    self.services[t].close()
                else:
                    self.services[t].start()

    def modes(self) -> dict[str, dict[str, Any]]:
        return {t: {"mode": self.apps[t].mode, "delay_s": self.apps[t].delay_s,
                    "url": self.services[t].url(BASE_PATH),
                    "listening": self.services[t].listening,
                    "requests": self.apps[t].requests}
                for t in TARGETS}

    def __enter__(self) -> GvpPair:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

