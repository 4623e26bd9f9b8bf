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


def open_config_source(section: ConfigSourceSection) -> ConfigSource:
    if section.kind == "http":
        assert section.url is not None
        return HttpConfigSource(section.url, section.timeout_s)
    assert section.path is not None
    return FileConfigSource(section.path)


class HttpConfigSource:
    """The configuration gateway; one keep-alive HTTP client for all the documents it reads.

    Lists are large (hundreds of thousands of persons) and rarely change between two samples,
    so each list is kept with its `ETag` and asked for again with `If-None-Match`: a gateway
    that supports it answers `304 Not Modified` and the kept list is returned — the same list
    object, which the caller can recognise as unchanged without comparing it. A gateway that
    sends no ETag is read in full every time."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._client = httpx.Client(timeout=timeout_s)
        self._kept: dict[str, tuple[str, list[Any]]] = {}  # key: (ETag, validated list)

    def close(self) -> None:
        self._client.close()

    def fetch(self, as_of: datetime | None = None) -> Document:
        params = {} if as_of is None else {
            "as_of": as_of.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        document: Document = {}
        try:
            for key in DOCUMENT_KEYS:
                document[key] = self._list(key, params)
        except httpx.HTTPError as exc:
            raise SourceError(f"configuration gateway {self.url}: {exc.__class__.__name__}: "
                              f"{exc}", source=SOURCE) from exc
        except ValueError as exc:
            raise SourceError(f"configuration gateway {self.url} sent invalid JSON: {exc}",
                              source=SOURCE) from exc
        return document

    def _list(self, key: str, params: dict[str, str]) -> list[Any]:
        kept = self._kept.get(key)
        headers = {"If-None-Match": kept[0]} if kept is not None else {}
        response = self._client.get(f"{self.url.rstrip('/')}/{key}", params=params,
                                    headers=headers)
        if response.status_code == 304 and kept is not None:
            return kept[1]
        if response.status_code != 200:
            raise SourceError(f"{response.request.url} answered {response.status_code}",
                              source=SOURCE)
        objects = response.json()
        problems = list_problems(key, objects)
        if problems:
            raise SourceError(f"{self.url}: malformed configuration: {_shown(problems)}",
                              source=SOURCE)
        etag = response.headers.get("ETag")
        if etag is not None:
            self._kept[key] = (etag, objects)
        else:
            self._kept.pop(key, None)
        return objects  # type: ignore[no-any-return]


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
