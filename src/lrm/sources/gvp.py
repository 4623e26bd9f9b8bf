"""GVP Reporting Server client (SPEC §4.3): XML peak reports over HTTP, basic auth, primary then
backup on connection error, timeout or 5xx, with bounded retries; 401/403 is a configuration
error (no failover: the backup would refuse the same credentials)."""

from __future__ import annotations

import functools
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import numpy.typing as npt

from lrm.domain.errors import SourceError
from lrm.settings import GvpSection
from lrm.sources.http_get import (
    KeepAliveGetter,
    ProxySettingError,
    TransportError,
    basic_credentials,
)

Component = Literal["RM", "ASR", "TTS"]
SOURCE = "gvp"
_BACKOFF_S = (0.2, 0.5, 1.0, 2.0)


class GvpAuthError(SourceError):
    """The Reporting Server refused our credentials: fix [gvp] username/password."""

    exit_code = 2


class _ServerError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


@dataclass(frozen=True)
class PeakSeries:
    """Five-minute bins: start instants (epoch seconds) and peak counts."""

    bin_start: npt.NDArray[np.int64]
    count: npt.NDArray[np.int64]
    server: str


@dataclass
class GvpClient:
    settings: GvpSection
    sleep: Callable[[float], None] = time.sleep
    _client: KeepAliveGetter | None = field(default=None, init=False, repr=False)

    def __enter__(self) -> GvpClient:
        headers = {}
        if self.settings.username is not None:
            headers["Authorization"] = basic_credentials(self.settings.username,
                                                         self.settings.password or "")
        self._client = KeepAliveGetter(timeout_s=self.settings.timeout_s, headers=headers)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def path_for(self, component: Component) -> str:
        return {"RM": self.settings.rm_path, "ASR": self.settings.asr_path,
                "TTS": self.settings.tts_path}[component]

    def peaks(self, component: Component, start: datetime, end: datetime,
              tenant_id: int | None) -> PeakSeries:
        """The FIVE_MINUTES peaks of `component` between `start` and `end` for one tenant
        (or the whole system when `tenant_id` is None)."""
        params: list[tuple[str, str]] = [
            ("granularity", "FIVE_MINUTES"), ("from", _iso(start)), ("to", _iso(end))]
        if tenant_id is not None:
            params.append(("tenant-id", str(tenant_id)))
        servers = [self.settings.primary_url]
        if self.settings.backup_url:
            servers.append(self.settings.backup_url)
        failures: list[str] = []
        for base in servers:
            url = base.rstrip("/") + self.path_for(component)
            for attempt in range(self.settings.retries + 1):
                try:
                    body = self._get(url, params)
                    return parse_peak_report(body, server=base)
                except ProxySettingError as exc:
                    raise SourceError(str(exc), source=SOURCE) from exc
                except (_ServerError, TransportError) as exc:
                    failures.append(f"{base}: {_name(exc)}")
                    if attempt < self.settings.retries:
                        self.sleep(_BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)])
        what = f"{component} peaks" + (f" for tenant {tenant_id}" if tenant_id else " (system)")
        raise SourceError(f"no Reporting Server answered {what}: " + "; ".join(failures),
                          source=SOURCE)

    def _get(self, url: str, params: list[tuple[str, str]]) -> bytes:
        assert self._client is not None, "use GvpClient as a context manager"
        answer = self._client.get(url, params)
        if answer.status in (401, 403):
            raise GvpAuthError(
                f"{url} answered {answer.status}: the Reporting Server refused the "
                "credentials; check [gvp] username and password/password_file", source=SOURCE)
        if answer.status >= 500:
            raise _ServerError(answer.status)
        if answer.status != 200:
            raise SourceError(f"{url} answered {answer.status}: {answer.text()}", source=SOURCE)
        return answer.body


def parse_peak_report(body: bytes, *, server: str) -> PeakSeries:
    """Parse `<peak-report><peaks><peak time=… count=…/>…` into arrays."""
    plain = _plain_peak_report(body, server)
    return plain if plain is not None else _peak_report_tree(body, server)


# The bins as a Reporting Server writes them: nothing between `<peaks …>` and `</peaks>` but
# `<peak time="…" count="…"/>` elements, attributes in that order, in double quotes, no
# entities. A day's report has 288 of them, and building them as a tree was a third of the
# client's time (0.77 ms a report; a day asks for 603).
_PEAKS_OPEN = re.compile(rb"<peaks(?:[ \t\r\n][^<>]*)?>")
_PEAK = rb'<peak time="([0-9A-Za-z:.+\-]*)" count="([0-9]+)"[ \t\r\n]*/>'
_PLAIN_BINS = re.compile(rb"(?:[ \t\r\n]*" + _PEAK + rb")*[ \t\r\n]*")  # XML's white space
_BIN = re.compile(_PEAK)
_XML_DECLARATION = re.compile(rb"<\?xml[^<>]*\?>")


def _plain_peak_report(body: bytes, server: str) -> PeakSeries | None:
    """The report, read without a tree when its bins are written plainly: the document
    around them (the root, the manifest, the empty `<peaks>`) is still parsed and checked.
    None when anything is otherwise, for `_peak_report_tree` to read or refuse."""
    span = _plain_bins(body)
    if span is None:
        return None
    start, end = span
    try:
        root = ET.fromstring(body[:start] + body[end:])  # noqa: S314 - as below
    except ET.ParseError:
        return None
    peaks = root.find("peaks")
    if (root.tag != "peak-report" or peaks is None or len(peaks) or peaks.text
            or sum(1 for _ in root.iter("peaks")) != 1):
        return None  # the cut was not the report's one <peaks>
    bins = _BIN.findall(body, start, end)
    try:
        starts = [_epoch_of(t.decode()) for t, _ in bins]
    except ValueError:
        return None  # a time that is not one: the tree's error names the <peak>
    return PeakSeries(np.array(starts, dtype=np.int64),
                      np.array([int(c) for _, c in bins], dtype=np.int64), server)


def _plain_bins(body: bytes) -> tuple[int, int] | None:
    """Where the plainly written bins of the first `<peaks>` lie, in a document that holds no
    markup but elements (and an XML declaration): no comment, CDATA, DOCTYPE or instruction
    that a `<peaks>` could hide in."""
    declared = _XML_DECLARATION.match(body)
    after = declared.end() if declared else 0
    if body.find(b"<!", after) >= 0 or body.find(b"<?", after) >= 0:
        return None
    opened = _PEAKS_OPEN.search(body)
    if opened is None or body[opened.end() - 2:opened.end()] == b"/>":
        return None
    closed = body.find(b"</peaks>", opened.end())
    if closed < 0 or _PLAIN_BINS.fullmatch(body, opened.end(), closed) is None:
        return None
    return opened.end(), closed


def _peak_report_tree(body: bytes, server: str) -> PeakSeries:
    try:
        root = ET.fromstring(body)  # noqa: S314 - the Reporting Server is a configured, trusted peer
    except ET.ParseError as exc:
        raise SourceError(f"{server} sent malformed XML: {exc}", source=SOURCE) from exc
    peaks = root.find("peaks")
    if root.tag != "peak-report" or peaks is None:
        raise SourceError(f"{server} sent XML without <peak-report><peaks>", source=SOURCE)
    starts: list[int] = []
    counts: list[int] = []
    for peak in peaks.findall("peak"):
        try:
            starts.append(_epoch_of(peak.attrib["time"]))
            counts.append(int(peak.attrib["count"]))
        except (KeyError, ValueError) as exc:
            raise SourceError(f"{server} sent a malformed <peak> {peak.attrib}: {exc}",
                              source=SOURCE) from exc
    return PeakSeries(np.array(starts, dtype=np.int64), np.array(counts, dtype=np.int64), server)


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@functools.lru_cache(maxsize=8192)
def _epoch_of(text: str) -> int:
    """A bin's start in epoch seconds. Cached: a day's hundreds of requests (a component and a
    tenant each) name the same 288 bins, and parsing them was a fifth of the client's time."""
    return int(_parse_time(text).timestamp())


def _parse_time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _name(exc: BaseException) -> str:
    if isinstance(exc, (_ServerError, TransportError)):
        return str(exc)
    return f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
