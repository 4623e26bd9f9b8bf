"""The simulated configuration and its changes over time (pure).

A configuration *document* has the keys and object shapes of SPEC §4.2 (`tenants`, `switches`,
`dns`, `places`, `persons`, `agent-groups`, `place-groups`), each a list of objects sorted by
`DBID`. A *timeline* is an initial document plus a list of changes, each replacing (``upsert``)
or removing (``delete``) one object at one instant. The gateway answers `as_of` queries with
`ConfigTimeline.document_at`.
"""

from __future__ import annotations

import bisect
import copy
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

CONFIG_KEYS: tuple[str, ...] = (
    "tenants", "switches", "dns", "places", "persons", "agent-groups", "place-groups",
)

ConfigObject = dict[str, Any]
ConfigDocument = dict[str, list[ConfigObject]]


def iso_utc(ts: int) -> str:
    """`2026-11-24T15:00:00Z` for epoch seconds `ts`."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso_utc(text: str) -> int:
    """Epoch seconds of an ISO 8601 instant (`Z` or an offset; a naive value is taken as UTC).
    Raises ValueError on anything else."""
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() // 1)


@dataclass(frozen=True)
class ConfigChange:
    """One object replaced or removed at instant `at` (epoch seconds, UTC)."""

    at: int
    key: str
    op: Literal["upsert", "delete"]
    obj: ConfigObject
    what: str

    def to_json(self) -> dict[str, Any]:
        return {"at": iso_utc(self.at), "key": self.key, "op": self.op, "what": self.what,
                "object": self.obj}

    @staticmethod
    def from_json(data: dict[str, Any]) -> ConfigChange:
        op = data["op"]
        if op not in ("upsert", "delete"):
            raise ValueError(f"unknown change op {op!r}")
        if data["key"] not in CONFIG_KEYS:
            raise ValueError(f"unknown configuration key {data['key']!r}")
        return ConfigChange(at=parse_iso_utc(data["at"]), key=data["key"], op=op,
                            obj=data["object"], what=data.get("what", ""))


class ConfigTimeline:
    """An initial configuration document and the changes after it, in time order."""

    def __init__(self, initial: ConfigDocument, changes: list[ConfigChange]) -> None:
        missing = [k for k in CONFIG_KEYS if k not in initial]
        if missing:
            raise ValueError(f"configuration document lacks {', '.join(missing)}")
        self.initial: ConfigDocument = {k: initial[k] for k in CONFIG_KEYS}
        self.changes: list[ConfigChange] = sorted(changes, key=lambda c: c.at)
        self._instants = [c.at for c in self.changes]
        self._positions = {k: [i for i, c in enumerate(self.changes) if c.key == k]
                           for k in CONFIG_KEYS}
        self._cache: dict[int, ConfigDocument] = {}

    def applied_count(self, ts: int) -> int:
        """How many changes are in force at instant `ts` (a change at `ts` is in force)."""
        return bisect.bisect_right(self._instants, ts)

    def key_version(self, applied: int, key: str) -> int:
        """How many of the first `applied` changes touch `key`: the version of that list
        (equal versions, equal lists), known without building the document."""
        return bisect.bisect_left(self._positions[key], applied)

    def document_at(self, ts: int) -> ConfigDocument:
        """The configuration in force at instant `ts`. The result is shared: do not modify it."""
        return self.document_after(self.applied_count(ts))

    def document_after(self, applied: int) -> ConfigDocument:
        """The configuration after the first `applied` changes (cached)."""
        cached = self._cache.get(applied)
        if cached is not None:
            return cached
        by_key: dict[str, dict[int, ConfigObject]] = {
            key: {int(obj["DBID"]): obj for obj in objects}
            for key, objects in self.initial.items()
        }
        for change in self.changes[:applied]:
            dbid = int(change.obj["DBID"])
            if change.op == "upsert":
                by_key[change.key][dbid] = change.obj
            else:
                by_key[change.key].pop(dbid, None)
        document = {key: [objs[d] for d in sorted(objs)] for key, objs in by_key.items()}
        self._cache[applied] = document
        return document

    def final(self) -> ConfigDocument:
        """The configuration after every change."""
        return self.document_after(len(self.changes))

    def changes_json(self) -> list[dict[str, Any]]:
        return [c.to_json() for c in self.changes]


def clone_object(obj: ConfigObject, **updates: Any) -> ConfigObject:
    """A deep copy of `obj` with some attributes replaced (change events never share state)."""
    result = copy.deepcopy(obj)
    result.update(updates)
    return result
