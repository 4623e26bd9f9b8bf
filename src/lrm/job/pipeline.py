"""The nightly job for one business date (SPEC §6):

  configuration samples ∥ IDB reads (parallel, ICON HA rules) ∥ GVP peaks → de-duplication →
  count (pure core) → one transaction: replace the date's rows + fences + run status → purge.

The three sources are read at the same time (each mostly waits on its server). The results are
written in one transaction, batch by batch while the count goes on, and committed last: a
failed, cancelled or fenced run leaves the previous results of the date exactly as they were."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import Any, Literal, TypeVar

import numpy as np
import sqlalchemy as sa

from lrm.domain.bundles import active_bundle_set
from lrm.domain.calendar import BusinessDay, business_day
from lrm.domain.count import DayResult, LevelPart, LevelResult, count_day, level_items
from lrm.domain.daily import gvp_daily
from lrm.domain.errors import LrmError, SourceError
from lrm.domain.items import Catalogue, build_catalogue
from lrm.domain.schedule import SAMPLE_INTERVAL, sample_marks
from lrm.domain.sessions import SessionTable
from lrm.domain.vocabulary import Vocabulary
from lrm.job.sources import read_all_idbs
from lrm.settings import Settings
from lrm.sources.config import ConfigSource, Document, open_config_source
from lrm.sources.gvp import Component, GvpClient
from lrm.store import catalog, config_samples
from lrm.store.results import DayWriter, LevelResults, purge_minutes
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
# The stages a run reports progress through (its timings also name "dedup", done pair by pair
# during "read", and "write", done during "count").
STAGES = ("config", "read", "count", "gvp", "purge")
T = TypeVar("T")


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
        # The sampler's and the back-fill's configuration sources and what each stored last.
        # The sampler runs every 10 minutes for as long as the process is primary: it keeps
        # only ETags and object digests between samples. A back-fill reads 144 marks a day
        # in a row: it keeps the last document (unchanged lists cost a `304` and an identity
        # check) until `release_backfill`.
        self._sampler = _Sampling(keep_document=False)
        self._backfill = _Sampling(keep_document=True)

    # ------------------------------------------------------------------ configuration
    def sample_config(self, mark: datetime, fence: Fence) -> bool:
        """Take the configuration sample for `mark` (the primary's 10-minute sampler). Returns
        True when a sample row was written."""
        sampling = self._sampler
        source = self._source(sampling)
        try:
            document = source.fetch_if_changed()
            if document is None:
                # Nothing changed since this sampler's last sample. Unless another instance
                # has stored one since (a switchover and back), the document in force is that
                # one.
                with self.engine.connect() as connection:
                    if (sampling.document is not None and sampling.document
                            == config_samples.latest_sample_document(connection)):
                        return False
                source.forget()
                document = source.fetch()
            return self._store(sampling, mark, document, fence)
        except Exception:
            source.forget()  # not stored: the next sample must not take it for stored
            raise

    def release_backfill(self) -> None:
        """Forget the back-fill's document (the memory of a whole configuration)."""
        if self._backfill.source is not None:
            self._backfill.source.close()
        self._backfill = _Sampling(keep_document=True)

    def _source(self, sampling: _Sampling) -> ConfigSource:
        if sampling.source is None:
            section = self.settings.config_source
            if section is None:
                raise SourceError("no [config_source] is configured: lrm cannot tell tenants, "
                                  "places and DNs apart", source="config")
            sampling.source = open_config_source(section, keep_lists=sampling.keep_document)
        return sampling.source

    def _store(self, sampling: _Sampling, mark: datetime, document: Document,
               fence: Fence) -> bool:
        """Store `document` as the sample at `mark` (when it differs from the one in force)."""
        with self.engine.begin() as connection:
            stored = config_samples.store_sample(
                connection, mark, document, self.settings.lrm.instance_id, base=sampling.base,
                hashes=sampling.hashes if sampling.keep_document else None)
            # Just before the commit: the fence's share lock holds up the lease renewal (ours
            # too), and storing a large document takes seconds.
            fence(connection)
        # Only now committed: later samples may be stored as edits of this one.
        sampling.document = stored.document
        if sampling.keep_document:
            sampling.base, sampling.last = stored.base, (mark, document)
        else:
            sampling.base = stored.base.compact() if stored.base is not None else None
        return stored.written

    def _sample_if_unsampled(self, day: BusinessDay, fence: Fence) -> None:
        """Sample every 10-minute mark of a day the sampler missed."""
        day_start = datetime.fromtimestamp(day.start_ts, UTC)
        end = datetime.fromtimestamp(day.end_ts, UTC)
        with self.engine.connect() as connection:
            if config_samples.has_sample_between(connection, day_start, end):
                return
        # The sampler was not running that day (first run, a backfill, both instances down).
        # A gateway that keeps history (the simulator) answers for each mark; one that does
        # not answers with its current state, which is stored once (samples are stored only
        # when they change).
        sampling, source = self._backfill, self._source(self._backfill)
        for mark in sample_marks(day_start, end):
            document = source.fetch(as_of=mark)
            last = sampling.last
            if (last is not None and last[0] == mark - SAMPLE_INTERVAL
                    and document == last[1]):
                # What the previous mark stored or found in force (this day has no sample,
                # so nothing came in between): nothing to store, no large document to hash.
                # Unchanged lists are the very objects of the previous answer, so the
                # comparison is quick.
                sampling.last = (mark, document)
                continue
            self._store(sampling, mark, document, fence)

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
        day_start = datetime.fromtimestamp(day.start_ts, UTC)
        day_end = datetime.fromtimestamp(day.end_ts, UTC)

        # The three sources are independent and mostly wait on their servers, so they are read
        # at the same time: the IDB rows in the background while this thread reads the
        # configuration, then the GVP peaks (which need the configuration's tenants), also in
        # the background. Each stage's timing is its own duration, so stages may add up to
        # more than the run.
        with _BackgroundWork(max_workers=2, thread_name_prefix="lrm-job") as background:
            timer.check()
            reading = background.submit(_timed, read_all_idbs, self.settings.icon, day.start_ts,
                                        day.end_ts, now_ts + FUTURE_TOLERANCE_S)
            with self.engine.connect() as connection:
                with timer("config"):
                    self._sample_if_unsampled(day, fence)
                    loader = config_samples.HistoryLoader(
                        connection, Vocabulary(self.catalogue.media_names()))
                    history = loader.history(day_start, day_end)
                    gvp = None
                    if self.settings.gvp is not None:
                        tenants = history.ids_in_force("tenant_ids", day.start_ts, day.end_ts)
                        gvp = background.submit(_timed, self._gvp_values, day,
                                                [None, *tenants.tolist()])
                    bundle_set = active_bundle_set(catalog.load_bundle_sets(connection),
                                                   business_date)
                    connection.commit()
                read = timer.wait("read", reading)
                del reading  # the future holds the rows too
                summary.source_outcome.update(read.outcome)
                summary.warnings += read.warnings
                for warning in read.warnings:
                    if log is not None:
                        log.warning("source.unreachable", detail=warning)
                # Each pair's copies were merged as soon as the pair was read (in the
                # background): the stage's timing is that work's.
                merged = read.merged
                summary.timings["dedup"] = round(read.merge_seconds, 3)
                del read
                summary.sessions_read = merged.rows_read
                summary.sessions_deduplicated = merged.duplicates_removed
                if merged.conflicting_sessions:
                    summary.set_aside["conflicting_copies"] = merged.conflicting_sessions
                ends_from_partner = merged.ends_from_partner
                rows = merged.sessions
                sessions = SessionTable.from_columns(
                    created=rows.created, terminated=rows.terminated, person=rows.agent,
                    place=rows.place, dn=rows.dn, provider_tag=np.maximum(rows.provider_tag, 0))
                earliest = max(int(rows.created.min()) if len(rows) else day.start_ts,
                               day.start_ts - 366 * 86_400)
                if earliest < day.start_ts:
                    # Sessions that began before the day take their tenant from the
                    # configuration in force at their login: widen the history to it.
                    started = time.monotonic()
                    history = loader.history(datetime.fromtimestamp(earliest, UTC), day_end)
                    summary.timings["config"] = round(
                        summary.timings["config"] + time.monotonic() - started, 3)
                # Not needed by the count: the documents as read, the IDB columns.
                del loader, merged, rows
            # One transaction replaces the date's results: each batch of a level's subjects is
            # written as soon as it is counted (its per-minute rows staged over connections of
            # their own, where PostgreSQL parses and compresses them while the next are
            # counted, then moved in), each level's enabled agents when the level is done, the
            # GVP rows last, then the fences and the run status; nothing is visible before the
            # commit, and a failure leaves the previous results as they were.
            write_seconds = 0.0
            with self.engine.begin() as connection, DayWriter(
                    connection, business_date, day.start_ts, run_id) as writer:
                catalog.sync_catalogue(connection, self.catalogue)
                # The date's previous rows of every item the run computes are deleted in the
                # background while the sessions are resolved (the connection is that thread's
                # until it is done). So a level with no subjects any more (its groups were
                # removed) keeps no rows of an earlier run; GVP rows are replaced only when the
                # GVP answered.
                clearing = background.submit(writer.clear, {
                    level: [*items.tolist(), ENABLED_AGENTS] for level, items in level_items(
                        self.catalogue, bundle_set.bundles if bundle_set else ()).items()})

                def write(blocks: list[LevelResults]) -> None:
                    nonlocal write_seconds
                    clearing.result()
                    started = time.monotonic()
                    for block in blocks:
                        writer.write(block)
                    write_seconds += time.monotonic() - started

                try:
                    with timer("count"):
                        result = count_day(day, sessions, history, self.catalogue, bundle_set,
                                           self.settings.lrm.excluded_time, now_ts,
                                           future_tolerance_s=FUTURE_TOLERANCE_S,
                                           on_part=lambda part: write([_flatten(part)]),
                                           on_level=lambda level: write([_enabled(level)]))
                    clearing.result()
                finally:
                    wait([clearing])  # before the transaction ends, whatever happened
                for kind in SET_ASIDE:
                    if result.counts.get(kind):
                        summary.set_aside[kind] = result.counts[kind]
                summary.source_outcome["counted_by_rule"] = {
                    kind: result.counts[kind] for kind in COUNTED_BY_RULE
                    if result.counts.get(kind)}
                summary.sessions_counted = result.counts.get("counted", len(sessions))
                summary.source_outcome["ends_from_partner"] = ends_from_partner
                if bundle_set is not None:
                    summary.source_outcome["bundle_set"] = bundle_set.id
                write(self._gvp(day, result, gvp, timer, summary, log))
                timer.check()
                started = time.monotonic()
                writer.finish()
                fence(connection)
                # The time spent writing, much of it while the count went on.
                summary.timings["write"] = round(write_seconds + time.monotonic() - started, 3)
                finished = connection.execute(
                    sa.update(job_run).where(job_run.c.id == run_id,
                                             job_run.c.status == "running")
                    .values(status="succeeded", finished_at=sa.func.clock_timestamp(),
                            **summary.ledger_values()))
                if finished.rowcount != 1:
                    raise JobCancelledError(f"run {run_id} is no longer marked running")
        with timer("purge"):
            keep_from = business_date - timedelta(days=self.settings.job.minute_retention_days)
            with self.engine.begin() as connection:
                purge_minutes(connection, keep_from)
        return summary

    # ------------------------------------------------------------------ GVP
    def _gvp_values(self, day: BusinessDay, subjects: list[int | None]) -> _GvpValues:
        """Every GVP item's daily value for `subjects` (None: the system). The requests are
        independent (one per component and subject), so a few run at a time."""
        section = self.settings.gvp
        assert section is not None
        start = datetime.fromtimestamp(day.start_ts, UTC)
        end = datetime.fromtimestamp(day.end_ts, UTC)
        requests = [(c, subject) for c in GVP_ITEMS for subject in subjects]
        with GvpClient(section) as client, ThreadPoolExecutor(
                max_workers=section.concurrency, thread_name_prefix="lrm-gvp") as pool:

            def fetch(request: tuple[Component, int | None]) -> tuple[int, int, str]:
                series = client.peaks(request[0], start, end, request[1])
                return (*gvp_daily(day, series.bin_start, series.count), series.server)

            futures = [pool.submit(fetch, r) for r in requests]
            try:
                answers = [f.result() for f in futures]
            except SourceError:
                for f in futures:
                    f.cancel()
                raise
        return _GvpValues(
            {(c, subject): (value, minute) for (c, subject), (value, minute, _) in
             zip(requests, answers, strict=True)}, {server for *_, server in answers})

    def _gvp(self, day: BusinessDay, result: DayResult,
             fetching: Future[tuple[_GvpValues, float]] | None, timer: _Timer,
             summary: RunSummary, log: Any) -> list[LevelResults]:
        """The GVP rows: the values fetched in the background, plus those of tenants that only
        the sessions named (their documents ended before the day)."""
        if fetching is None:
            return []
        tenants: list[int] = (result.levels["tenant"].subject_ids.tolist()
                              if "tenant" in result.levels else [])
        try:
            gvp = timer.wait("gvp", fetching)
            missing = [t for t in tenants if t not in gvp.subjects]
            if missing:
                more, seconds = _timed(self._gvp_values, day, missing)
                summary.timings["gvp"] = round(summary.timings["gvp"] + seconds, 3)
                gvp = _GvpValues({**gvp.values, **more.values}, gvp.servers | more.servers)
        except SourceError as exc:
            # The ICON results still count; the GVP rows of the date keep their previous values
            # and a later run can fill them.
            summary.source_outcome["gvp"] = {"status": "failed", "error": str(exc)}
            if log is not None:
                log.error("source.unreachable", source="gvp", error=str(exc))
            return []
        summary.source_outcome["gvp"] = {"status": "ok", "servers": sorted(gvp.servers)}
        blocks = []
        for level, subjects in (("system", [None]), ("tenant", tenants)):
            rows = [(subject or 0, item_id, *gvp.values[(component, subject)])
                    for component, item_id in GVP_ITEMS.items() for subject in subjects]
            if rows:
                ids, items, values, minutes = (np.array(c, dtype=np.int64) for c in zip(*rows,
                                                                                       strict=True))
                blocks.append(LevelResults(level=level, subject_ids=ids, item_ids=items,
                                           daily_value=values, peak_minute=minutes,
                                           minute_peaks=None))
        return blocks


class _BackgroundWork(ThreadPoolExecutor):
    """The run's background reads. Leaving with an exception (a failure, a cancel) does not
    wait for them: nobody needs their results any more, and the fences stop anything a
    stale run could write."""

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> Literal[False]:
        failed = exc_type is not None
        self.shutdown(wait=not failed, cancel_futures=failed)
        return False


@dataclass
class _Sampling:
    """A configuration source and what was last stored (or found in force) from it."""

    keep_document: bool
    source: ConfigSource | None = None
    base: config_samples.SampleBase | None = None
    document: config_samples.StoredDocument | None = None  # in force after the last store
    hashes: config_samples.ListHashes = field(default_factory=config_samples.ListHashes)
    last: tuple[datetime, Document] | None = None


@dataclass(frozen=True)
class _GvpValues:
    values: dict[tuple[Component, int | None], tuple[int, int]]  # (value, minute)
    servers: set[str]

    @property
    def subjects(self) -> set[int | None]:
        return {subject for _, subject in self.values}


def _timed(function: Callable[..., T], *args: Any) -> tuple[T, float]:
    """`function(*args)` and how long it took (for stages run in the background)."""
    started = time.monotonic()
    return function(*args), time.monotonic() - started


def _enabled(level: LevelResult) -> LevelResults:
    """A level's enabled agents (item 100): a daily value, no per-minute series."""
    enabled = level.enabled
    return LevelResults(
        level=level.level, subject_ids=enabled.subject_ids.astype(np.int64),
        item_ids=np.full(enabled.subject_ids.size, ENABLED_AGENTS, dtype=np.int64),
        daily_value=enabled.value.astype(np.int64),
        peak_minute=enabled.minute.astype(np.int64), minute_peaks=None)


def _flatten(part: LevelPart) -> LevelResults:
    """(subjects × items × minutes) → one row per (subject, item)."""
    n_subjects, n_items = part.daily_value.shape
    return LevelResults(
        level=part.level,
        subject_ids=np.repeat(part.subject_ids, n_items).astype(np.int64),
        item_ids=np.tile(part.item_ids, n_subjects).astype(np.int64),
        daily_value=part.daily_value.reshape(-1).astype(np.int64),
        peak_minute=part.daily_minute.reshape(-1).astype(np.int64),
        minute_peaks=part.minute_peaks.reshape(n_subjects * n_items,
                                               part.minute_peaks.shape[-1]),
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

    def wait(self, stage: str, task: Future[tuple[T, float]]) -> T:
        """The result of a stage run in the background (`_timed`); its timing is the task's
        own duration, not the wait."""
        with self(stage):
            value, seconds = task.result()
        self.summary.timings[stage] = round(seconds, 3)
        return value


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
