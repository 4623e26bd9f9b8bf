"""The nightly job for one business date (SPEC §6):

  configuration samples → IDB reads (parallel, ICON HA rules) → de-duplication → count (pure
  core) → GVP peaks → one transaction: replace the date's rows + fences + run status → purge.

Nothing is written until the last step, which is atomic: a failed, cancelled or fenced run leaves
the previous results of the date exactly as they were."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa

from lrm.domain.bundles import active_bundle_set
from lrm.domain.calendar import BusinessDay, business_day
from lrm.domain.count import DayResult, LevelResult, count_day
from lrm.domain.daily import gvp_daily
from lrm.domain.dedup import merge_copies
from lrm.domain.errors import LrmError, SourceError
from lrm.domain.items import Catalogue, build_catalogue
from lrm.domain.schedule import sample_marks
from lrm.domain.sessions import SessionTable
from lrm.job.sources import read_all_idbs
from lrm.settings import Settings
from lrm.sources.config import open_config_source
from lrm.sources.gvp import Component, GvpClient
from lrm.store import catalog, config_samples
from lrm.store.results import DayResults, LevelResults, purge_minutes, replace_day
from lrm.store.schema import job_run

Fence = Callable[[sa.Connection], None]
Progress = Callable[[str, float], None]
GVP_ITEMS: dict[Component, int] = {"RM": 200, "ASR": 201, "TTS": 202}
ENABLED_AGENTS = 100
# A session whose start is more than this after the run is "in the future": a clock or data bug.
FUTURE_TOLERANCE_S = 86_400
# Bad rows that are not counted, and rows counted by a rule although something was odd.
SET_ASIDE = ("end_before_start", "start_in_future", "unknown_tenant")
COUNTED_BY_RULE = ("unknown_reference", "unknown_channel", "open", "zero_length")
STAGES = ("config", "read", "dedup", "count", "gvp", "write", "purge")


class JobCancelledError(LrmError):
    """The run was abandoned (the instance stepped down, or was asked to stop)."""


@dataclass
class RunSummary:
    sessions_read: int = 0
    sessions_deduplicated: int = 0
    sessions_counted: int = 0
    set_aside: dict[str, int] = field(default_factory=dict)
    source_outcome: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def ledger_values(self) -> dict[str, Any]:
        return {"sessions_read": self.sessions_read,
                "sessions_deduplicated": self.sessions_deduplicated,
                "sessions_set_aside": self.set_aside, "source_outcome": self.source_outcome,
                "timings": self.timings}


class Pipeline:
    def __init__(self, settings: Settings, engine: sa.Engine, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.catalogue: Catalogue = build_catalogue(
            [s.model_dump() for s in settings.sellable_items])

    # ------------------------------------------------------------------ configuration
    def sample_config(self, mark: datetime, fence: Fence) -> bool:
        """Take the configuration sample for `mark` (the primary's 10-minute sampler)."""
        source = self._config_source()
        document = source.fetch()
        with self.engine.begin() as connection:
            fence(connection)
            return config_samples.store_sample(connection, mark, document,
                                               self.settings.lrm.instance_id)

    def _config_source(self) -> Any:
        section = self.settings.config_source
        if section is None:
            raise SourceError("no [config_source] is configured: lrm cannot tell tenants, "
                              "places and DNs apart", source="config")
        return open_config_source(section)

    def _samples_for(self, day: BusinessDay, earliest_ts: int,
                     fence: Fence) -> list[tuple[int, dict[str, Any]]]:
        start = datetime.fromtimestamp(min(earliest_ts, day.start_ts), UTC)
        day_start = datetime.fromtimestamp(day.start_ts, UTC)
        end = datetime.fromtimestamp(day.end_ts, UTC)
        with self.engine.connect() as connection:
            sampled = config_samples.has_sample_between(connection, day_start, end)
        if not sampled:
            # The sampler was not running that day (first run, a backfill, both instances
            # down): sample every 10-minute mark now. A gateway that keeps history (the
            # simulator) answers for each mark; one that does not answers with its current
            # state, which is stored once (samples are stored only when they change).
            source = self._config_source()
            for mark in sample_marks(day_start, end):
                document = source.fetch(as_of=mark)
                with self.engine.begin() as connection:
                    fence(connection)
                    config_samples.store_sample(connection, mark, document,
                                                self.settings.lrm.instance_id)
        with self.engine.connect() as connection:
            samples = config_samples.samples_between(connection, start, end)
        return [(int(t.timestamp()), doc) for t, doc in samples]

    # ------------------------------------------------------------------ the run
    def run(self, business_date: date, *, run_id: int, fence: Fence, cancel: threading.Event,
            progress: Progress | None = None, log: Any = None) -> RunSummary:
        """Compute and store `business_date`. A failure carries what the run learnt so far
        (`exc.summary`), for the run record."""
        summary = RunSummary()
        try:
            return self._run(business_date, summary, run_id=run_id, fence=fence,
                             cancel=cancel, progress=progress, log=log)
        except LrmError as exc:
            exc.summary = summary
            raise

    def _run(self, business_date: date, summary: RunSummary, *, run_id: int, fence: Fence,
             cancel: threading.Event, progress: Progress | None, log: Any) -> RunSummary:
        timer = _Timer(summary, cancel, progress)
        day = business_day(business_date, self.settings.lrm.zone)
        now = self.clock()
        now_ts = int(now.timestamp())

        with timer("read"):
            read = read_all_idbs(self.settings.icon, day.start_ts, day.end_ts,
                                 now_ts + FUTURE_TOLERANCE_S)
        summary.source_outcome.update(read.outcome)
        summary.warnings += read.warnings
        for warning in read.warnings:
            if log is not None:
                log.warning("source.unreachable", detail=warning)
        with timer("dedup"):
            merged = merge_copies(read.rows)
        summary.sessions_read = merged.rows_read
        summary.sessions_deduplicated = merged.duplicates_removed
        if merged.conflicting_sessions:
            summary.set_aside["conflicting_copies"] = merged.conflicting_sessions
        rows = merged.sessions
        sessions = SessionTable.from_columns(
            created=rows.created, terminated=rows.terminated, person=rows.agent,
            place=rows.place, dn=rows.dn, provider_tag=np.maximum(rows.provider_tag, 0))
        earliest = int(rows.created.min()) if len(rows) else day.start_ts
        with timer("config"):
            samples = self._samples_for(day, max(earliest, day.start_ts - 366 * 86_400),
                                        fence)
            with self.engine.connect() as connection:
                bundle_set = active_bundle_set(catalog.load_bundle_sets(connection),
                                               business_date)
        with timer("count"):
            result = count_day(day, sessions, samples, self.catalogue, bundle_set,
                               self.settings.lrm.excluded_time, now_ts,
                               future_tolerance_s=FUTURE_TOLERANCE_S)
        for kind in SET_ASIDE:
            if result.counts.get(kind):
                summary.set_aside[kind] = result.counts[kind]
        summary.source_outcome["counted_by_rule"] = {
            kind: result.counts[kind] for kind in COUNTED_BY_RULE if result.counts.get(kind)}
        summary.sessions_counted = result.counts.get("counted", len(sessions))
        summary.source_outcome["ends_from_partner"] = merged.ends_from_partner
        if bundle_set is not None:
            summary.source_outcome["bundle_set"] = bundle_set.id

        with timer("gvp"):
            gvp_blocks = self._gvp(day, result, summary, log)
        blocks = self._blocks(result) + gvp_blocks
        results = DayResults(business_date, day.start_ts, day.minutes, blocks)

        def commit(connection: sa.Connection) -> None:
            fence(connection)
            summary.timings["write"] = round(time.monotonic() - write_started, 3)
            finished = connection.execute(
                sa.update(job_run).where(job_run.c.id == run_id,
                                         job_run.c.status == "running")
                .values(status="succeeded", finished_at=sa.func.clock_timestamp(),
                        **summary.ledger_values()))
            if finished.rowcount != 1:
                raise JobCancelledError(f"run {run_id} is no longer marked running")

        timer.check()
        write_started = time.monotonic()
        with self.engine.begin() as connection:
            catalog.sync_catalogue(connection, self.catalogue)
            replace_day(connection, results, run_id, before_commit=commit)
        with timer("purge"):
            keep_from = business_date - timedelta(days=self.settings.job.minute_retention_days)
            with self.engine.begin() as connection:
                purge_minutes(connection, keep_from)
        return summary

    # ------------------------------------------------------------------ assembly
    def _blocks(self, result: DayResult) -> list[LevelResults]:
        blocks: list[LevelResults] = []
        for level in result.levels.values():
            blocks.append(_flatten(level))
            enabled = level.enabled
            blocks.append(LevelResults(
                level=level.level, subject_ids=enabled.subject_ids.astype(np.int64),
                item_ids=np.full(enabled.subject_ids.size, ENABLED_AGENTS, dtype=np.int64),
                daily_value=enabled.value.astype(np.int64),
                peak_minute=enabled.minute.astype(np.int64), minute_peaks=None))
        return blocks

    def _gvp(self, day: BusinessDay, result: DayResult, summary: RunSummary,
             log: Any) -> list[LevelResults]:
        section = self.settings.gvp
        if section is None:
            return []
        tenants: list[int] = (result.levels["tenant"].subject_ids.tolist()
                              if "tenant" in result.levels else [])
        start = datetime.fromtimestamp(day.start_ts, UTC)
        end = datetime.fromtimestamp(day.end_ts, UTC)
        per_level: dict[str, tuple[list[int], list[int], list[int], list[int]]] = {
            "tenant": ([], [], [], []), "system": ([], [], [], [])}
        servers: set[str] = set()
        try:
            with GvpClient(section) as client:
                for component, item_id in GVP_ITEMS.items():
                    for level, subject in [("system", None),
                                           *(("tenant", int(t)) for t in tenants)]:
                        series = client.peaks(component, start, end, subject)
                        servers.add(series.server)
                        value, minute = gvp_daily(day, series.bin_start, series.count)
                        ids, items, values, minutes = per_level[level]
                        ids.append(subject or 0)
                        items.append(item_id)
                        values.append(value)
                        minutes.append(minute)
        except SourceError as exc:
            # The ICON results still count; the GVP rows of the date keep their previous values
            # and a later run can fill them.
            summary.source_outcome["gvp"] = {"status": "failed", "error": str(exc)}
            if log is not None:
                log.error("source.unreachable", source="gvp", error=str(exc))
            return []
        summary.source_outcome["gvp"] = {"status": "ok", "servers": sorted(servers)}
        return [LevelResults(level=level, subject_ids=np.array(ids, dtype=np.int64),
                             item_ids=np.array(items, dtype=np.int64),
                             daily_value=np.array(values, dtype=np.int64),
                             peak_minute=np.array(minutes, dtype=np.int64), minute_peaks=None)
                for level, (ids, items, values, minutes) in per_level.items() if ids]


def _flatten(level: LevelResult) -> LevelResults:
    """(subjects × items × minutes) → one row per (subject, item)."""
    n_subjects, n_items = level.daily_value.shape
    return LevelResults(
        level=level.level,
        subject_ids=np.repeat(level.subject_ids, n_items).astype(np.int64),
        item_ids=np.tile(level.item_ids, n_subjects).astype(np.int64),
        daily_value=level.daily_value.reshape(-1).astype(np.int64),
        peak_minute=level.daily_minute.reshape(-1).astype(np.int64),
        minute_peaks=level.minute_peaks.reshape(n_subjects * n_items, -1),
    )


class _Timer:
    """Times each stage into the summary, reports progress, and honours cancellation between
    stages."""

    def __init__(self, summary: RunSummary, cancel: threading.Event,
                 progress: Progress | None) -> None:
        self.summary = summary
        self.cancel = cancel
        self.progress = progress
        self.done = 0

    def check(self) -> None:
        if self.cancel.is_set():
            raise JobCancelledError("the instance stepped down or is stopping")

    def __call__(self, stage: str) -> _Stage:
        return _Stage(self, stage)


class _Stage:
    def __init__(self, timer: _Timer, name: str) -> None:
        self.timer = timer
        self.name = name
        self.started = 0.0

    def __enter__(self) -> None:
        self.timer.check()
        if self.timer.progress is not None:
            self.timer.progress(self.name, self.timer.done / len(STAGES))
        self.started = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        self.timer.summary.timings[self.name] = round(time.monotonic() - self.started, 3)
        self.timer.done += 1
