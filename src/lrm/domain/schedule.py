"""Scheduling decisions: when the nightly job runs, which business dates it covers, what a new
primary must catch up, and when a primary must step down. Pure: `now` is always an argument.

The nightly run at local time T on day D+1 computes business date D ("yesterday") and recomputes
the `recompute_days` dates before it (late or updated ICON rows). A catch-up only runs dates that
never succeeded, so a date that succeeded is never replayed by a promotion.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock `at` on `day` in `zone`.

    DST: a wall-clock time skipped by a spring-forward gap maps to the same offset as before the
    gap (so 02:30 on a 02:00→03:00 day runs at 03:30 local, an hour after 01:30); a time that
    occurs twice in autumn runs at its first occurrence. Either way the job runs once that day.
    """
    naive = datetime.combine(day, at)
    first = naive.replace(tzinfo=zone, fold=0)
    return first.astimezone(UTC)


def scheduled_run_at(business_date: date, at: time, zone: ZoneInfo) -> datetime:
    """When the nightly run for `business_date` is due: `at` on the following local day."""
    return local_instant(business_date + timedelta(days=1), at, zone)


def local_today(now: datetime, zone: ZoneInfo) -> date:
    return now.astimezone(zone).date()


def next_run_at(now: datetime, at: time, zone: ZoneInfo) -> datetime:
    """The first scheduled nightly run strictly after `now`."""
    today = local_today(now, zone)
    for offset in range(3):
        candidate = local_instant(today + timedelta(days=offset), at, zone)
        if candidate > now:
            return candidate
    raise AssertionError("a day always has a next nightly run")


def latest_due_date(now: datetime, at: time, zone: ZoneInfo) -> date:
    """The newest business date whose scheduled run time has passed at `now`."""
    today = local_today(now, zone)
    if now >= local_instant(today, at, zone):
        return today - timedelta(days=1)
    return today - timedelta(days=2)


def nightly_dates(due: date, recompute_days: int) -> list[date]:
    """Dates a scheduled run computes: `due` and the `recompute_days` dates before it, oldest
    first."""
    return [due - timedelta(days=i) for i in range(recompute_days, -1, -1)]


def catch_up_dates(now: datetime, at: time, zone: ZoneInfo, catch_up_days: int,
                   succeeded: set[date]) -> list[date]:
    """Business dates of the last `catch_up_days` whose run time passed and that never
    succeeded, oldest first."""
    newest = latest_due_date(now, at, zone)
    window = [newest - timedelta(days=i) for i in range(catch_up_days - 1, -1, -1)]
    return [d for d in window if d not in succeeded]


SAMPLE_EVERY_MINUTES = 10
SAMPLE_INTERVAL = timedelta(minutes=SAMPLE_EVERY_MINUTES)


def sample_marks(start: datetime, end: datetime,
                 every_minutes: int = SAMPLE_EVERY_MINUTES) -> list[datetime]:
    """Configuration sample instants (:00, :10, … :50 UTC) in [start, end)."""
    step = every_minutes * 60
    first = -(-int(start.timestamp()) // step) * step
    return [datetime.fromtimestamp(t, UTC) for t in range(first, int(end.timestamp()), step)]


def next_sample_mark(now: datetime, every_minutes: int = SAMPLE_EVERY_MINUTES) -> datetime:
    step = every_minutes * 60
    return datetime.fromtimestamp((int(now.timestamp()) // step + 1) * step, UTC)


class Upcoming:
    """The primary's next nightly run and next configuration sample, each kept until a check at
    or after its instant takes it. Computing them afresh from the clock at every turn of the
    loop loses one when the wait ends a moment before the instant (timers and the wall clock
    disagree by a little) and the instant passes before the next computation: the next run is
    then tomorrow's, and tonight's is never run."""

    def __init__(self, now: datetime, at: time, zone: ZoneInfo) -> None:
        self.at, self.zone = at, zone
        self.job = next_run_at(now, at, zone)
        self.sample = next_sample_mark(now)

    def follow(self, now: datetime) -> None:
        """Bring the run and the mark back when the clock was set back past them (else the
        loop would sleep until instants that are now far ahead, sampling nothing and missing
        tonight's run). Never later: a run whose instant just passed stays due."""
        self.job = min(self.job, next_run_at(now, self.at, self.zone))
        self.sample = min(self.sample, next_sample_mark(now))

    def take_job(self, now: datetime) -> bool:
        """Whether the nightly run is due at `now`; if so, the next one is the first after
        `now` (a clock that jumped days ahead runs once, for the latest due date)."""
        if now < self.job:
            return False
        self.job = next_run_at(now, self.at, self.zone)
        return True

    def take_sample(self, now: datetime) -> datetime | None:
        """The mark to sample at `now`, if one is due: the latest mark at or before `now` (the
        one nearest the configuration read now, when a long catch-up held the loop past
        several); the next mark is then the first after `now`."""
        if now < self.sample:
            return None
        self.sample = next_sample_mark(now)
        return self.sample - SAMPLE_INTERVAL


@dataclass(frozen=True)
class LeaseTimings:
    ttl_s: float
    renew_interval_s: float
    renew_deadline_s: float

    def __post_init__(self) -> None:
        if not 0 < self.renew_interval_s < self.renew_deadline_s < self.ttl_s:
            raise ValueError("lease timings must satisfy "
                             "0 < renew_interval_s < renew_deadline_s < ttl_s")

    def must_step_down(self, last_renewed: float, now: float) -> bool:
        """A primary whose last successful renew (monotonic seconds) is older than the deadline
        must stop serving and stop its job now: the lease may be taken `ttl - deadline` later."""
        return now - last_renewed >= self.renew_deadline_s

    def seconds_until_step_down(self, last_renewed: float, now: float) -> float:
        return max(0.0, self.renew_deadline_s - (now - last_renewed))
