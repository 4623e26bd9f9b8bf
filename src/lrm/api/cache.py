"""Rendered reports, kept until the data behind them changes.

Report data changes when a job run commits, a provisioned count, bundle set or entitlement is
written, or configuration names change — rarely, against many reads (a billing run asks for the
same months again and again). A cached body is served only while the *data version* it was
built under is still current. The version is one cheap query, re-read in the background every
half `VERSION_TTL_S` while the API serves (`lrm.api.deps.keep_fresh`), asked by a request only
when it is older than `VERSION_TTL_S`, and forgotten at once when this process writes; so a
write made elsewhere (a manual `lrm job run`) is visible within that second."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from threading import Lock
from typing import Any

import sqlalchemy as sa

from lrm.domain.report_rows import ReportReference

VERSION_TTL_S = 1.0
MAX_ENTRIES = 4096

_VERSION_SQL = sa.text("""
SELECT (SELECT max(id) FROM job_run),
       (SELECT max(finished_at) FROM job_run),
       (SELECT count(*) FROM job_run WHERE status = 'running'),
       (SELECT max(updated_at) FROM provisioned_count),
       (SELECT count(*) FROM provisioned_count),
       (SELECT max(uploaded_at) FROM bundle_set),
       (SELECT count(*) FROM bundle_set),
       (SELECT max(uploaded_at) FROM entitlement),
       (SELECT max(updated_at) FROM tenant),
       (SELECT max(updated_at) FROM config_group)
""")


class ReportCache:
    def __init__(self, engine: sa.Engine, *, enabled: bool = True) -> None:
        self.engine = engine
        self.enabled = enabled
        self._entries: OrderedDict[Hashable, tuple[tuple[Any, ...], Any]] = OrderedDict()
        self._version: tuple[Any, ...] | None = None
        self._version_at = 0.0
        self._reference: tuple[tuple[Any, ...], ReportReference] | None = None
        # Bumped by invalidate(): what a read begun before it found is not kept after it.
        self._generation = 0
        self._lock = Lock()
        self._reference_lock = Lock()

    @property
    def generation(self) -> int:
        """How many times this process invalidated the cache (a write of its own)."""
        with self._lock:
            return self._generation

    def version(self) -> tuple[Any, ...]:
        """The current data version (asked at most once per `VERSION_TTL_S`)."""
        with self._lock:
            version = self._recent_version()
        if version is not None:
            return version
        return self.refresh_version()

    def refresh_version(self) -> tuple[Any, ...]:
        """Read the data version now."""
        with self._lock:
            generation = self._generation
        now = time.monotonic()
        with self.engine.connect() as connection:
            version = tuple(connection.execute(_VERSION_SQL).one())
        with self._lock:
            if generation == self._generation and now >= self._version_at:
                self._version, self._version_at = version, now
        return version

    def current_tag(self) -> tuple[Any, ...] | None:
        """(data version, generation) if the version was checked within `VERSION_TTL_S`; what
        a body built now is built under (no I/O: None when the version is not recent)."""
        with self._lock:
            version = self._recent_version()
            return None if version is None else (version, self._generation)

    def remembered(self, key: Hashable) -> Any | None:
        """The body of `key` if it is cached and the data version was checked within
        `VERSION_TTL_S` (no I/O: None when either is not so)."""
        with self._lock:
            version = self._recent_version()
            return None if version is None else self._entry(key, version)

    def get(self, key: Hashable, version: tuple[Any, ...]) -> Any | None:
        """The body of `key` if it was built from the data as of `version`."""
        with self._lock:
            return self._entry(key, version)

    def _recent_version(self) -> tuple[Any, ...] | None:
        if self._version is not None and time.monotonic() - self._version_at < VERSION_TTL_S:
            return self._version
        return None

    def _entry(self, key: Hashable, version: tuple[Any, ...]) -> Any | None:
        if not self.enabled:
            return None
        entry = self._entries.get(key)
        if entry is None or entry[0] != version:
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def remembered_reference(self) -> tuple[tuple[Any, ...], ReportReference] | None:
        """The current data version and its reference, if both are in memory (no I/O)."""
        with self._lock:
            version = self._recent_version()
            if version is None or self._reference is None or self._reference[0] != version:
                return None
            return self._reference

    def reference(self, version: tuple[Any, ...],
                  load: Callable[[], ReportReference]) -> ReportReference:
        """Names, limits and run dates as of `version`: loaded once per data version, so that
        building a report that is not cached costs one query (its values)."""
        if not self.enabled:
            return load()
        # One load at a time: when a new version arrives, many requests miss together; they
        # wait for the first one's load instead of each reading the same tables.
        with self._reference_lock:
            with self._lock:
                current, generation = self._reference, self._generation
            if current is not None and current[0] == version:
                return current[1]
            reference = load()
            with self._lock:
                if generation == self._generation:
                    self._reference = (version, reference)
            return reference

    def put(self, key: Hashable, value: Any, version: tuple[Any, ...]) -> None:
        """Keep `value`, built from the data as of `version` (read *before* building it: data
        that changed during the build must not be tagged with the newer version)."""
        if not self.enabled:
            return
        with self._lock:
            self._entries[key] = (version, value)
            self._entries.move_to_end(key)
            while len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)

    def invalidate(self) -> None:
        """This process changed report data: forget the version and every body."""
        with self._lock:
            self._entries.clear()
            self._version = None
            self._reference = None
            self._generation += 1
