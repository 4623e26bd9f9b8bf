"""What the primary runs while it holds the lease: the 10-minute configuration sampler, the
catch-up of missed business dates, and the nightly job at `nightly_job_time` (SPEC §2, §4.2, §6).

The decisions (when, which dates) are the pure functions of lrm.domain.schedule; this loop only
waits, asks them, and hands the work to threads. It stops — abandoning a running job — as soon as
`stop` is set or the task is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from lrm.domain.errors import LockHeldError, LrmError
from lrm.domain.schedule import (
    Upcoming,
    catch_up_dates,
    latest_due_date,
    nightly_dates,
)
from lrm.observability import get_logger
from lrm.settings import Settings, parse_hhmm

CATCH_UP_RETRY_S = 2.0
# How long a stepping-down primary waits for its job to reach a checkpoint.
STOP_GRACE_S = 1.0


class JobRunner(Protocol):
    def run_dates(self, dates: list[date], *, trigger: str, epoch: int,
                  cancel: threading.Event) -> Sequence[object]:
        """Run the job for `dates` (raises LockHeldError when another run holds the lock);
        one outcome with a `status` per date that ran."""

    def succeeded_dates(self, start: date, end: date) -> set[date]: ...

    def sample_config(self, mark: datetime, epoch: int) -> None: ...


class PrimaryScheduler:
    def __init__(self, settings: Settings, runner: JobRunner, instance_id: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.settings = settings
        self.runner = runner
        self.clock = clock
        self.zone = settings.lrm.zone
        self.at: time = parse_hhmm(settings.job.nightly_job_time)
        self.log = get_logger(instance_id=instance_id)

    async def run(self, epoch: int, stop: asyncio.Event) -> None:
        cancel = threading.Event()
        try:
            await self._loop(epoch, stop, cancel)
        finally:
            cancel.set()  # a job thread still running sees this at its next checkpoint

    async def _loop(self, epoch: int, stop: asyncio.Event, cancel: threading.Event) -> None:
        # When to look for missed or failed dates again (at once on promotion).
        promoted = self.clock()
        catch_up_at: datetime | None = promoted
        upcoming = Upcoming(promoted, self.at, self.zone)
        announced: datetime | None = None
        while not stop.is_set():
            now = self.clock()
            if catch_up_at is not None and now >= catch_up_at:
                catch_up_at = self._retry_at(await self._catch_up(epoch, now, cancel), now)
            now = self.clock()
            upcoming.follow(now)
            if upcoming.job != announced:  # on promotion, and after each nightly run
                self.log.info("job.next_run", epoch=epoch, at=upcoming.job.isoformat(),
                              local=upcoming.job.astimezone(self.zone).isoformat())
                announced = upcoming.job
            wake_at = min(upcoming.job, upcoming.sample, *(t for t in [catch_up_at] if t))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(),
                                       timeout=max((wake_at - now).total_seconds(), 0.0))
            if stop.is_set():
                return
            now = self.clock()
            if (mark := upcoming.take_sample(now)) is not None:
                await self._sample(mark, epoch)
            if upcoming.take_job(now):
                due = latest_due_date(now, self.at, self.zone)
                dates = nightly_dates(due, self.settings.job.recompute_days)
                outcome = await self._run(dates, "schedule", epoch, cancel)
                catch_up_at = self._retry_at(outcome, now) or catch_up_at

    def _retry_at(self, outcome: str, now: datetime) -> datetime | None:
        """Lock held: try again shortly. A date failed (a source down, the database
        restarting): try the missed dates again after `job.retry_failed_after_s`."""
        if outcome == "lock_held":
            return now + timedelta(seconds=CATCH_UP_RETRY_S)
        if outcome == "failed":
            return now + timedelta(seconds=self.settings.job.retry_failed_after_s)
        return None

    async def _catch_up(self, epoch: int, now: datetime, cancel: threading.Event) -> str:
        """Run missed dates (never a date that succeeded)."""
        days = self.settings.job.catch_up_days
        if days == 0:
            return "ok"
        newest = latest_due_date(now, self.at, self.zone)
        oldest = date.fromordinal(newest.toordinal() - days + 1)
        succeeded = await asyncio.to_thread(self.runner.succeeded_dates, oldest, newest)
        missing = catch_up_dates(now, self.at, self.zone, days, succeeded)
        if not missing:
            return "ok"
        self.log.info("job.catch_up", epoch=epoch, dates=[d.isoformat() for d in missing])
        return await self._run(missing, "catch_up", epoch, cancel)

    async def _run(self, dates: list[date], trigger: str, epoch: int,
                   cancel: threading.Event) -> str:
        """"ok" when every date succeeded, "failed" when one did not, "lock_held" when another
        run holds the job lock."""
        work = asyncio.ensure_future(asyncio.to_thread(
            self.runner.run_dates, dates, trigger=trigger, epoch=epoch, cancel=cancel))
        try:
            outcomes = await asyncio.shield(work)
        except asyncio.CancelledError:
            # Leaving primary mode: ask the job to stop at its next checkpoint and give it a
            # moment to record itself as abandoned before the lease is released. Whatever it
            # still tries to commit afterwards is refused by the fences.
            cancel.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(work), timeout=STOP_GRACE_S)
            raise
        except LockHeldError as exc:
            self.log.info("job.skipped_lock_held", epoch=epoch, holder=exc.holder,
                          dates=[d.isoformat() for d in dates])
            return "lock_held"
        except LrmError as exc:
            self.log.error("job.failed", epoch=epoch, error=str(exc))
            return "failed"
        statuses = [getattr(o, "status", "failed") for o in outcomes]
        return "ok" if len(statuses) == len(dates) and set(statuses) <= {"succeeded"} else "failed"

    async def _sample(self, mark: datetime, epoch: int) -> None:
        try:
            await asyncio.to_thread(self.runner.sample_config, mark, epoch)
        except LrmError as exc:
            self.log.warning("config.sample_failed", epoch=epoch, error=str(exc))
