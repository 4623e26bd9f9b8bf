"""Configuration sources (SPEC §4.2): the configuration gateway over HTTP, or one JSON file.

Both return the same document: a dict with the keys of `DOCUMENT_KEYS`, each a list of objects
with Configuration Server attribute names (DBID, tenantDBID, …)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

from lrm.domain.errors import SourceError
from lrm.settings import ConfigSourceSection

SOURCE = "config"
DOCUMENT_KEYS = ("tenants", "switches", "dns", "places", "persons", "agent-groups",
                 "place-groups")
Document = dict[str, list[dict[str, Any]]]


class ConfigSource(Protocol):
    def fetch(self, as_of: datetime | None = None) -> Document:
        """The configuration now, or at `as_of` where the source can tell (the simulator's
        gateway can; a real one answers with the current state)."""
        ...

    def fetch_if_changed(self, as_of: datetime | None = None) -> Document | None:
        """`fetch`, or None when the source can tell that nothing changed since the last
        fetch."""
        ...

    def forget(self) -> None:
        """Forget what was fetched before (the next fetch reads everything)."""
        ...

    def close(self) -> None: ...


def open_config_source(section: ConfigSourceSection, *,
                       keep_lists: bool = True) -> ConfigSource:
    """The configured source; `keep_lists`: see `HttpConfigSource`."""
    if section.kind == "http":
        assert section.url is not None
        return HttpConfigSource(section.url, section.timeout_s, keep_lists=keep_lists)
    assert section.path is not None
    return FileConfigSource(section.path)


class HttpConfigSource:
    """The configuration gateway; one keep-alive HTTP client for all the documents it reads.

    Lists are large (hundreds of thousands of persons) and rarely change between two samples,
    so each list's `ETag` is remembered and the list asked for again with `If-None-Match`; a
    gateway that supports it answers `304 Not Modified`. A gateway that sends no ETag is read
    in full every time.
    - `keep_lists=True` (a back-fill, many marks in a row): the lists are kept too, and `fetch`
      returns a kept list for a 304 — the same list object, which the caller recognises as
      unchanged without comparing it. Costs the memory of the document.
    - `keep_lists=False` (the 10-minute sampler): only the ETags are kept; `fetch_if_changed`
      says when nothing changed at all, else reads the whole document."""

    def __init__(self, url: str, timeout_s: float = 10.0, *, keep_lists: bool = True) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.keep_lists = keep_lists
        self._client = httpx.Client(timeout=timeout_s)
        self._kept: dict[str, tuple[str, list[Any] | None]] = {}  # key: (ETag, list or None)

    def close(self) -> None:
        self._client.close()

    def forget(self) -> None:
        """Drop every remembered ETag and list (the next fetch reads everything)."""
        self._kept.clear()

    def fetch(self, as_of: datetime | None = None) -> Document:
        document = self._fetch(as_of, conditional=self.keep_lists)
        assert document is not None
        return document

    def fetch_if_changed(self, as_of: datetime | None = None) -> Document | None:
        """None when every list is unchanged since the last fetch (each answered 304), else
        the whole document."""
        return self._fetch(as_of, conditional=True)

    def _fetch(self, as_of: datetime | None, *, conditional: bool) -> Document | None:
        params = {} if as_of is None else {
            "as_of": as_of.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        try:
            lists = {key: self._read(key, params, conditional=conditional)
                     for key in DOCUMENT_KEYS}
            if all(value is None for value in lists.values()):
                return None
            document: Document = {}
            for key, value in lists.items():
                # A list confirmed with 304 but not kept: read it after all.
                document[key] = value if value is not None else self._read_whole(key, params)
        except SourceError:
            # Some lists were read, others not: their ETags must not say "seen" next time.
            self.forget()
            raise
        return document

    def _read_whole(self, key: str, params: dict[str, str]) -> list[Any]:
        whole = self._read(key, params, conditional=False)
        if whole is None:
            raise SourceError(f"configuration gateway {self.url}: {key} answered 304 to a "
                              "request without If-None-Match", source=SOURCE)
        return whole

    def _read(self, key: str, params: dict[str, str], *,
              conditional: bool) -> list[Any] | None:
        try:
            return self._list(key, params, conditional=conditional)
        except httpx.HTTPError as exc:
            raise SourceError(f"configuration gateway {self.url}: {exc.__class__.__name__}: "
                              f"{exc}", source=SOURCE) from exc
        except ValueError as exc:
            raise SourceError(f"configuration gateway {self.url} sent invalid JSON: {exc}",
                              source=SOURCE) from exc

    def _list(self, key: str, params: dict[str, str], *,
              conditional: bool) -> list[Any] | None:
        """The list, the kept list on a 304, or None on a 304 when the list is not kept."""
        kept = self._kept.get(key)
        headers = {"If-None-Match": kept[0]} if conditional and kept is not None else {}
        response = self._client.get(f"{self.url.rstrip('/')}/{key}", params=params,
                                    headers=headers)
        if response.status_code == 304 and kept is not None:
            return kept[1]
        if response.status_code != 200:
            raise SourceError(f"{response.request.url} answered {response.status_code}",
                              source=SOURCE)
        objects: list[Any] = response.json()
        problems = list_problems(key, objects)
        if problems:
            raise SourceError(f"{self.url}: malformed configuration: {_shown(problems)}",
                              source=SOURCE)
        etag = response.headers.get("ETag")
        if etag is not None:
            self._kept[key] = (etag, objects if self.keep_lists else None)
        else:
            self._kept.pop(key, None)
        return objects


@dataclass(frozen=True)
class FileConfigSource:
    path: Path

    def fetch(self, as_of: datetime | None = None) -> Document:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SourceError(f"cannot read {self.path}: {exc.strerror}", source=SOURCE) from exc
        except ValueError as exc:
            raise SourceError(f"{self.path} is not valid JSON: {exc}", source=SOURCE) from exc
        if not isinstance(raw, dict):
            raise SourceError(f"{self.path}: expected a JSON object with the keys "
                              f"{', '.join(DOCUMENT_KEYS)}", source=SOURCE)
        return validate_document({k: raw.get(k, []) for k in DOCUMENT_KEYS},
                                 origin=str(self.path))

    def fetch_if_changed(self, as_of: datetime | None = None) -> Document | None:
        return self.fetch(as_of)  # a file is small and cheap to read again

    def forget(self) -> None:
        """Nothing is remembered."""

    def close(self) -> None:
        """Nothing to close."""


def validate_document(document: dict[str, Any], *, origin: str) -> Document:
    """Check the shape we rely on (lists of objects with integer DBIDs), listing every problem."""
    problems = [p for key in DOCUMENT_KEYS for p in list_problems(key, document.get(key))]
    if problems:
        raise SourceError(f"{origin}: malformed configuration: {_shown(problems)}",
                          source=SOURCE)
    return {k: document[k] for k in DOCUMENT_KEYS}


def list_problems(key: str, objects: object) -> list[str]:
    """What is wrong with one list of the document (nothing: an empty list)."""
    if not isinstance(objects, list):
        return [f"{key}: expected a list"]
    return [f"{key}[{index}]: expected an object with an integer DBID"
            for index, obj in enumerate(objects)
            if not isinstance(obj, dict) or not isinstance(obj.get("DBID"), int)]


def _shown(problems: list[str]) -> str:
    return "; ".join(problems[:10]) + (f"; … {len(problems) - 10} more"
                                       if len(problems) > 10 else "")
