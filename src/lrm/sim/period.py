"""The simulated period: local calendar days in the simulation's time zone (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Period:
    """`days` local calendar days from `start` in `timezone`.

    Day index -1 (the day before `start`) is included in the per-day tables because night
    shifts that begin the evening before the period are still logged in when it starts.
    """

    start: date
    days: int
    timezone: str
    start_ts: int            # UTC epoch of local midnight at the start of `start`
    end_ts: int              # UTC epoch of local midnight after the last day
    midnights: tuple[int, ...]   # local midnight of day -1 .. days (days + 2 entries)
    noons: tuple[int, ...]       # local noon of day -1 .. days - 1 (days + 1 entries)
    weekdays: tuple[int, ...]    # Monday = 0 for day -1 .. days - 1

    @staticmethod
    def of(start: date, days: int, timezone: str) -> Period:
        zone = ZoneInfo(timezone)

        def at(day: date, clock: time) -> int:
            return int(datetime.combine(day, clock, tzinfo=zone).timestamp())

        all_days = [start + timedelta(days=i) for i in range(-1, days + 1)]
        midnights = tuple(at(d, time(0, 0)) for d in all_days)
        noons = tuple(at(d, time(12, 0)) for d in all_days[:-1])
        return Period(start=start, days=days, timezone=timezone, start_ts=midnights[1],
                      end_ts=midnights[-1], midnights=midnights, noons=noons,
                      weekdays=tuple(d.weekday() for d in all_days[:-1]))

    def local_clock(self, day_index: int, hours: float) -> int:
        """UTC epoch of local wall-clock `hours` (0..24, may exceed 24) on day `day_index`
        (0 = `start`; -1 allowed). Anchored at local noon, so exact away from DST changes
        at night."""
        return self.noons[day_index + 1] + round((hours - 12.0) * 3600)

    def day_start(self, day_index: int) -> int:
        return self.midnights[day_index + 1]

    @property
    def last_day(self) -> date:
        return self.start + timedelta(days=self.days - 1)
