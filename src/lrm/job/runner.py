"""Running the nightly job for some business dates: the job lock (with heartbeat), the job_run
ledger, the fences, cancellation and progress. The computation itself is lrm.job.pipeline.

Used by the primary's scheduler (fenced by the lease *and* the job lock) and by `lrm job run`
(fenced by the job lock: a manual run whose lock was taken over cannot commit either)."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime

import sqlalchemy as sa

from lrm.domain.errors import FencedError, LockHeldError, LrmError, SourceError
from lrm.job.pipeline import JobCancelledError, Pipeline, Progress, RunSummary
from lrm.observability import Metrics, get_logger
from lrm.settings import Settings
from lrm.store import coordination as co
from lrm.store import job_runs
from lrm.store.db import database_errors

# How long recording a run's outcome and releasing the lock are retried (a database restart).
RECORD_RETRY_S = 10.0


@dataclass(frozen=True)
class DateOutcome:
    business_date: date
    run_id: int
    status: str
    error: str | None = None


class NightlyJob:
    def __init__(self, settings: Settings, engine: sa.Engine, *, under_lease: bool,
                 metrics: Metrics | None = None, progress: Progress | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.settings = settings
        self.engine = engine
        self.instance_id = settings.lrm.instance_id
        self.under_lease = under_lease
        self.metrics = metrics
        self.progress = progress
        self.clock = clock
        self.pipeline = Pipeline(settings, engine, clock=clock)
        self.log = get_logger(instance_id=self.instance_id)

    # ------------------------------------------------------------------ scheduler interface
    def succeeded_dates(self, start: date, end: date) -> set[date]:
        with self.engine.connect() as connection:
            return job_runs.succeeded_dates(connection, start, end)

    def sample_config(self, mark: datetime, epoch: int) -> None:
        self.pipeline.sample_config(mark, fence=self._lease_fence(epoch))

    def run_dates(self, dates: list[date], *, trigger: str, epoch: int,
                  cancel: threading.Event) -> list[DateOutcome]:
        """Run `dates` in order under the job lock. Raises LockHeldError if another run holds
        it. A failed date does not stop the next one; a fenced or cancelled run stops all."""
        holder = f"{self.instance_id}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        outcomes: list[DateOutcome] = []
        with self._job_lock(holder, epoch, cancel):
            try:
                for business_date in dates:
                    if cancel.is_set():
                        break
                    outcome = self._run_one(business_date, trigger, epoch, holder, cancel)
                    outcomes.append(outcome)
                    if outcome.status in ("fenced", "cancelled"):
                        break
            finally:
                self.pipeline.release_backfill()
        return outcomes

    # ------------------------------------------------------------------ one date
    def _run_one(self, business_date: date, trigger: str, epoch: int, holder: str,
                 cancel: threading.Event) -> DateOutcome:
        fence = self._fence(holder, epoch)
        with self.engine.begin() as connection:
            fence(connection)
            run_id = job_runs.start_run(connection, business_date, self.instance_id, epoch,
                                        trigger)
        with co.coordination_transaction(self.engine, self._silence_s) as connection:
            co.heartbeat_job_lock(connection, holder, run_id)
        log = self.log.bind(epoch=epoch, business_date=business_date.isoformat(), run_id=run_id)
        log.info("job.started", trigger=trigger)
        started = time.monotonic()
        summary: RunSummary | None = None
        try:
            with database_errors():
                summary = self.pipeline.run(business_date, run_id=run_id, fence=fence,
                                            cancel=cancel, progress=self.progress, log=log)
        except FencedError as exc:
            self._record(run_id, "fenced", str(exc), summary)
            log.error("job.fenced", error=str(exc))
            return DateOutcome(business_date, run_id, "fenced", str(exc))
        except JobCancelledError as exc:
            self._record(run_id, "failed", f"abandoned: {exc}", summary, fence=fence)
            log.warning("job.abandoned", reason=str(exc))
            return DateOutcome(business_date, run_id, "cancelled", str(exc))
        except LrmError as exc:
            if self.metrics is not None and isinstance(exc, SourceError):
                self.metrics.source_errors.labels(source=exc.source).inc()
            self._record(run_id, "failed", str(exc), exc_summary(exc), fence=fence)
            log.error("job.failed", error=str(exc))
            self._observe("failed", started)
            return DateOutcome(business_date, run_id, "failed", str(exc))
        self._observe("succeeded", started)
        self._observe_sources(summary)
        log.info("job.finished", status="succeeded", seconds=round(time.monotonic() - started, 3),
                 sessions_read=summary.sessions_read,
                 sessions_counted=summary.sessions_counted, set_aside=summary.set_aside,
                 sources=summary.source_outcome)
        return DateOutcome(business_date, run_id, "succeeded")

    def _record(self, run_id: int, status: str, error: str, summary: RunSummary | None,
                fence: Callable[[sa.Connection], None] | None = None) -> None:
        """Record a run's failure. Under a fence when we still can; a fenced run records itself
        without one (compare-and-set on 'running' only: it changes no results). Retried for a
        few seconds: a run that failed because the database restarted should still say so."""
        values = summary.ledger_values() if summary else {}

        def write() -> None:
            try:
                with self.engine.begin() as connection:
                    if fence is not None:
                        fence(connection)
                    job_runs.finish_run(connection, run_id, status, error=error, **values)
            except FencedError:
                with self.engine.begin() as connection:
                    job_runs.finish_run(connection, run_id, "fenced", error=error, **values)

        self._retry(write, "job.record_failed", run_id=run_id)

    def _retry(self, action: Callable[[], None], failure_event: str, **fields: object) -> None:
        deadline = time.monotonic() + RECORD_RETRY_S
        delay = 0.1
        while True:
            try:
                action()
            except (LrmError, sa.exc.SQLAlchemyError) as exc:
                if time.monotonic() + delay > deadline:
                    self.log.error(failure_event, error=str(exc).splitlines()[0], **fields)
                    return
            else:
                return
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _observe_sources(self, summary: RunSummary) -> None:
        if self.metrics is None:
            return
        for source, outcome in summary.source_outcome.items():
            if isinstance(outcome, dict) and outcome.get("status") in ("failed", "degraded"):
                self.metrics.source_errors.labels(source=source).inc()

    def _observe(self, status: str, started: float) -> None:
        if self.metrics is None:
            return
        self.metrics.job_runs.labels(status=status).inc()
        self.metrics.job_duration.labels(status=status).observe(time.monotonic() - started)
        if status == "succeeded":
            self.metrics.job_last_success.set(time.time())

    # ------------------------------------------------------------------ lock and fences
    @property
    def _silence_s(self) -> float:
        """How long the server lets a lock-holding transaction of ours wait on a silent client
        (co.abort_if_silent): one lease TTL, also the job lock's staleness."""
        return self.settings.ha.lease_ttl_s

    def _lease_fence(self, epoch: int) -> Callable[[sa.Connection], None]:
        def check(connection: sa.Connection) -> None:
            if self.under_lease:
                co.fence_lease(connection, self.instance_id, epoch, silence_s=self._silence_s)
        return check

    def _fence(self, holder: str, epoch: int) -> Callable[[sa.Connection], None]:
        lease = self._lease_fence(epoch)

        def check(connection: sa.Connection) -> None:
            co.fence_job_lock(connection, holder, silence_s=self._silence_s)
            lease(connection)
        return check

    @contextmanager
    def _job_lock(self, holder: str, epoch: int, cancel: threading.Event) -> Iterator[None]:
        stale_s = self.settings.ha.lease_ttl_s
        with co.coordination_transaction(self.engine, self._silence_s) as connection:
            self._lease_fence(epoch)(connection)
            if co.acquire_job_lock(connection, holder, epoch, stale_s) is None:
                state = co.read_job_lock(connection)
                who = state.holder if state and state.holder else "another run"
                since = (state.acquired_at.isoformat(timespec="seconds")
                         if state and state.acquired_at else "unknown")
                raise LockHeldError(who, since)
            dead = [r.id for r in job_runs.running_runs(connection)]
            job_runs.abandon_runs(connection, dead, "abandoned: the instance running it "
                                  "stopped heartbeating the job lock")
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(holder, stop, cancel),
                                name="lrm-job-lock-heartbeat", daemon=True)
        beat.start()
        try:
            yield
        finally:
            stop.set()
            beat.join(timeout=5)
            def release() -> None:
                with co.coordination_transaction(self.engine, self._silence_s) as connection:
                    co.release_job_lock(connection, holder)

            self._retry(release, "job.lock_release_failed", holder=holder)

    def _heartbeat(self, holder: str, stop: threading.Event, cancel: threading.Event) -> None:
        interval = self.settings.ha.renew_interval_s
        while not stop.wait(interval):
            try:
                with co.coordination_transaction(self.engine, self._silence_s) as connection:
                    if not co.heartbeat_job_lock(connection, holder):
                        self.log.error("job.lock_lost", holder=holder)
                        cancel.set()
                        return
            except sa.exc.SQLAlchemyError as exc:
                self.log.warning("job.lock_heartbeat_failed", error=str(exc))


def exc_summary(exc: LrmError) -> RunSummary | None:
    return exc.summary if isinstance(exc.summary, RunSummary) else None
