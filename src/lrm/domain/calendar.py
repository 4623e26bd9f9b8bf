"""Business days, excluded-time windows and report periods (SPEC §3, §5.3).

A business day is a calendar day in `report_timezone`: from local midnight to the next local
midnight, so it lasts 23, 24 or 25 hours on DST days (1380, 1440 or 1500 minutes). Minutes are
numbered from the day's first instant; minute m starts at `start_ts + 60*m` whatever the wall
clock says, so the repeated hour of an autumn day is simply 60 more minutes.

Excluded time is given as local wall-clock windows "HH:MM-HH:MM". A minute is excluded when
its local start time falls in [from, to). Consequences on DST days, chosen deliberately:
- on the autumn day a window inside the repeated hour excludes both occurrences (both have a
  local start time in the window);
- on the spring day a window inside the skipped hour excludes nothing (those times never occur);
- a window whose `from` is later than its `to` wraps past midnight ("22:00-02:00" is
  [22:00, 24:00) and [00:00, 02:00)); "24:00" may end a window.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np

from lrm.domain._arrays import I64, Bool
from lrm.domain.errors import InputError

Granularity = Literal["detailed", "day", "week", "month"]
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WINDOW = re.compile(r"^\s*(\d{2}):(\d{2})\s*-\s*(\d{2}):(\d{2})\s*$")


@dataclass(frozen=True)
class BusinessDay:
    """One calendar day of the report time zone, as a half-open UTC interval [start_ts, end_ts)
    in epoch seconds."""

    date: date
    zone: str
    start_ts: int
    end_ts: int

    @property
    def seconds(self) -> int:
        return self.end_ts - self.start_ts

    @property
    def minutes(self) -> int:
        """1440 on an ordinary day, 1380 / 1500 on the spring / autumn DST days."""
        return self.seconds // 60

    @property
    def tzinfo(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    def minute_ts(self, minute: int) -> int:
        """UTC epoch seconds at which minute `minute` of the day starts."""
        return self.start_ts + 60 * minute

    def minute_local(self, minute: int) -> datetime:
        """The local wall-clock start of minute `minute` (aware; `fold` set in a repeated hour)."""
        return datetime.fromtimestamp(self.minute_ts(minute), self.tzinfo)

    def minute_label(self, minute: int) -> str:
        """The local "HH:MM" of minute `minute` (a peak time in a daily report row)."""
        return self.minute_local(minute).strftime("%H:%M")


def _midnight_ts(d: date, zone: ZoneInfo) -> int:
    # fold=0: in a gap at midnight this is the instant the day really starts (the transition).
    return int(datetime.combine(d, time(0), tzinfo=zone).timestamp())


def business_day(d: date, zone: ZoneInfo | str) -> BusinessDay:
    """The business day `d` in `zone`: local midnight to the next local midnight."""
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    start = _midnight_ts(d, tz)
    end = _midnight_ts(d + timedelta(days=1), tz)
    if (end - start) % 60:
        raise ValueError(f"{d} in {tz.key} is not a whole number of minutes long")
    return BusinessDay(date=d, zone=tz.key, start_ts=start, end_ts=end)


def day_containing(ts: int, zone: ZoneInfo | str) -> BusinessDay:
    """The business day that contains the UTC instant `ts`."""
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    return business_day(datetime.fromtimestamp(ts, tz).date(), tz)


def parse_window(window: str) -> tuple[int, int]:
    """'HH:MM-HH:MM' as (from, to) minutes of the local day. `to` may be 24:00 (1440); when
    `from` > `to` the window wraps past midnight. Raises InputError."""
    match = _WINDOW.match(window)
    problems: list[str] = []
    if not match:
        raise InputError([f"{window!r} is not a window in HH:MM-HH:MM form"], what="excluded_time")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59:
        problems.append(f"{window!r}: {h1:02d}:{m1:02d} is not a time of day")
    if h2 > 24 or m2 > 59 or (h2 == 24 and m2 != 0):
        problems.append(f"{window!r}: {h2:02d}:{m2:02d} is not a time of day (or 24:00)")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if not problems and start == end:
        problems.append(f"{window!r} is empty")
    if problems:
        raise InputError(problems, what="excluded_time")
    return start, end


def excluded_minute_mask(day: BusinessDay, windows: list[str] | tuple[str, ...]) -> Bool:
    """One flag per minute of `day`: True when the minute's local start time lies in one of the
    windows. Invalid windows raise InputError listing every bad window."""
    problems: list[str] = []
    parsed: list[tuple[int, int]] = []
    for window in windows:
        try:
            parsed.append(parse_window(window))
        except InputError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InputError(problems, what="excluded_time")
    mask = np.zeros(day.minutes, dtype=np.bool_)
    if not parsed:
        return mask
    tz = day.tzinfo
    local = np.fromiter(
        ((lt.hour * 60 + lt.minute)
         for lt in (datetime.fromtimestamp(day.start_ts + 60 * m, tz) for m in range(day.minutes))),
        dtype=np.int32, count=day.minutes)
    for start, end in parsed:
        if start < end:
            mask |= (local >= start) & (local < end)
        else:  # wraps past midnight
            mask |= (local >= start) | (local < end)
    return mask


def weekday_index(week_start: str | int) -> int:
    """0 (Monday) … 6 (Sunday) from a weekday name (any case) or an index."""
    if isinstance(week_start, int) and not isinstance(week_start, bool):
        if 0 <= week_start <= 6:
            return week_start
    elif isinstance(week_start, str) and week_start.strip().lower() in WEEKDAYS:
        return WEEKDAYS.index(week_start.strip().lower())
    raise InputError([f"week_start {week_start!r} is not one of {', '.join(WEEKDAYS)}"],
                     what="week_start")


def period_start(d: date, granularity: Granularity | str, week_start: str | int = "monday") -> date:
    """First day of the period of `granularity` that contains `d`: `d` itself for detailed and
    day; the latest `week_start` weekday on or before `d` for week; the 1st for month."""
    if granularity in ("detailed", "day"):
        return d
    if granularity == "week":
        return d - timedelta(days=(d.weekday() - weekday_index(week_start)) % 7)
    if granularity == "month":
        return d.replace(day=1)
    raise InputError([f"granularity {granularity!r} is not detailed, day, week or month"],
                     what="granularity")


# Offsets are sampled this often, then each change is bisected to the second: exact as long as a
# zone never changes its offset twice within one step (no zone in the tz database does).
_OFFSET_STEP_S = 3600


def utc_offsets(zone: ZoneInfo, start_ts: int, end_ts: int) -> tuple[I64, I64]:
    """`zone`'s UTC offset over [start_ts, end_ts) as a step function: (starts, offsets), where
    offsets[i] (seconds east of UTC) holds from starts[i] on; starts[0] <= start_ts. Looking
    up thousands of instants this way (`local_ts`) costs a `searchsorted`, where asking the
    zone costs a microsecond each. Computed per calendar year and kept, and so is the step
    function of each span of years asked for (a report asks for one at every build)."""
    first = datetime.fromtimestamp(start_ts, UTC).year
    last = datetime.fromtimestamp(max(start_ts, end_ts - 1), UTC).year
    return _span_offsets(zone.key, first, last)


@functools.lru_cache(maxsize=256)
def _span_offsets(zone_key: str, first: int, last: int) -> tuple[I64, I64]:
    """The step function of years `first` to `last` (merged where a year's first offset is
    the previous year's last)."""
    years = [_year_offsets(zone_key, year) for year in range(first, last + 1)]
    starts = np.concatenate([y[0] for y in years])
    offsets = np.concatenate([y[1] for y in years])
    changes = np.ones(offsets.size, dtype=np.bool_)
    changes[1:] = offsets[1:] != offsets[:-1]
    starts, offsets = starts[changes], offsets[changes]
    starts.flags.writeable = offsets.flags.writeable = False  # shared by every caller
    return starts, offsets


def local_ts(zone: ZoneInfo, ts: I64) -> I64:
    """UTC epoch seconds → the same instants' local wall-clock time, as epoch seconds of a
    clock that runs on local time (so `// 86400` is the local date, `% 86400` the time of
    day)."""
    if ts.size == 0:
        return ts.copy()
    starts, offsets = utc_offsets(zone, int(ts.min()), int(ts.max()) + 1)
    return ts + offsets[np.searchsorted(starts, ts, side="right") - 1]


@functools.lru_cache(maxsize=64)
def _year_offsets(zone_key: str, year: int) -> tuple[I64, I64]:
    zone = ZoneInfo(zone_key)
    begin = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(year + 1, 1, 1, tzinfo=UTC).timestamp())

    def offset(ts: int) -> int:
        delta = datetime.fromtimestamp(ts, zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    samples = [*range(begin, end, _OFFSET_STEP_S), end]
    values = [offset(ts) for ts in samples]
    starts, offsets = [begin], [values[0]]
    for k in range(len(samples) - 1):
        if values[k + 1] == values[k]:
            continue
        lo, hi = samples[k], samples[k + 1]  # offset(lo) is the old one, offset(hi) the new
        while hi - lo > 1:
            middle = (lo + hi) // 2
            if offset(middle) == values[k]:
                lo = middle
            else:
                hi = middle
        if hi < end:  # a change at the very end of the year is the next year's first value
            starts.append(hi)
            offsets.append(values[k + 1])
    return np.array(starts, dtype=np.int64), np.array(offsets, dtype=np.int64)


def utc_iso(ts: int) -> str:
    """ISO 8601 UTC with 'Z' (for GVP requests and logs)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
