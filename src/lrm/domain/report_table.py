"""Report rows (SPEC §7) built as columns. Pure: the store reads the values as arrays, this
module decides periods, winners, local peak times and limits with whole-array operations and
keeps each row's texts as indices into small tables of distinct texts; every renderer shows
exactly these rows (`rows()` as dicts for the CLI table and the JSON document, `json_rows()`
for the API's body).

A report that is not cached is built for every request: a month of one tenant is about a
thousand rows, and building a Python dict per row with its texts formatted cost about ten
times what these array operations and a few text look-ups cost.

Choices where the spec is silent (unchanged from the first, row-by-row version, which the tests
keep as the oracle):
- Week/month rows take the maximum daily value in the period, the **latest** day on ties, and
  show that day's peak as `YYYY-MM-DD HH:MM`.
- The limit of a week/month row is the one in force on the day of the period's peak (that is the
  day whose value `over_limit` compares); its effective date is shown beside it.
- A row without a limit has `limit`, `limit_effective_date` = null and `over_limit` = false.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import orjson

from lrm.domain._arrays import I64, Bool, Idx, narrow_rank, run_starts
from lrm.domain.calendar import Granularity, local_ts, weekday_index
from lrm.domain.report_rows import NO_LIMIT, LimitTable, ReportRow, Subject, day_of

NO_TIME = -1  # peak_ts of a value without a peak time (NULL in usage_daily)
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
                  "Sunday")
_HHMM = [f"{minute // 60:02d}:{minute % 60:02d}" for minute in range(1440)]
# The peak times of day rows: every minute of a day, then "none" (shared by every day table).
_DAY_PEAK_TEXTS: tuple[str | None, ...] = (*_HHMM, None)


def _peak_fragment(text: str | None) -> bytes:
    return orjson.dumps({"peak_time": text})[1:-1] + b',"peak_value":'


def _objects(pieces: Sequence[bytes]) -> npt.NDArray[np.object_]:
    """`pieces` as a one-dimensional array of objects (to be gathered by index arrays)."""
    array = np.empty(len(pieces), dtype=object)
    array[:] = pieces
    return array


_DAY_PEAK_FRAGMENTS = _objects([_peak_fragment(text) for text in _DAY_PEAK_TEXTS])
# Peak values as text, looked up rather than formatted (a third of the time of the rows' JSON).
_VALUE_TEXTS = _objects([b"%d" % value for value in range(10_000)])


@dataclass(frozen=True)
class DailyColumns:
    """usage_daily rows, one entry each: subject, item, business date (`day_number`), daily
    value and the UTC epoch seconds of its peak minute (`NO_TIME`: none)."""

    subject: I64
    item: I64
    day: I64
    value: I64
    peak_ts: I64

    def __len__(self) -> int:
        return int(self.subject.size)


@dataclass(frozen=True)
class MinuteColumns:
    """usage_minute rows: per series its subject, item, business date (`day_number`) and the
    UTC epoch seconds of its first minute; `peaks` holds every series' per-minute values one
    after the other (`lengths[i]` of them for series i)."""

    subject: I64
    item: I64
    day: I64
    day_start_ts: I64
    lengths: I64
    peaks: I64


@dataclass(frozen=True)
class ReportTable:
    """The rows of a report, in (subject, item, period) order. Per row: its subject (an index
    into `subjects`), item, period, peak time and limit date as indices into tables of
    distinct texts, and the numbers."""

    level: str
    subjects: Sequence[Subject]
    subject_index: Idx
    item_id: I64
    item_names: Mapping[int, str]
    period_texts: Sequence[str]
    period_weekdays: Sequence[str | None]  # beside period_texts (day granularity only)
    period_index: Idx
    peak_texts: Sequence[str | None]
    peak_index: Idx
    peak_value: I64
    limit: I64  # NO_LIMIT: none
    limit_texts: Sequence[str]
    limit_index: Idx  # into limit_texts; -1 where there is no limit
    over_limit: Bool

    def __len__(self) -> int:
        return int(self.item_id.size)

    def _run_starts(self) -> Bool:
        """True at the first row of each (subject, item) run."""
        return run_starts((self.subject_index.astype(np.int64) << 32) | self.item_id)

    def _run_pairs(self, starts: Bool) -> zip[tuple[int, int]]:
        """(subject index, item) of each (subject, item) run of rows."""
        firsts = np.flatnonzero(starts)
        return zip(self.subject_index[firsts].tolist(), self.item_id[firsts].tolist(),
                   strict=True)

    def _heads(self, starts: Bool) -> list[dict[str, object]]:
        """The leading columns (subject and item) of each (subject, item) run of rows."""
        subject_columns = [_subject_columns(s, self.level) for s in self.subjects]
        return [{**subject_columns[s], "item_id": item,
                 "item_name": self.item_names.get(item, str(item))}
                for s, item in self._run_pairs(starts)]

    @staticmethod
    def _runs(starts: Bool) -> Idx:
        """For each row, the index of its (subject, item) run."""
        return (np.cumsum(starts) - 1).astype(np.intp)

    def rows(self) -> list[ReportRow]:
        """The rows as dicts, columns in `columns_for(level)` order."""
        starts = self._run_starts()
        heads = self._heads(starts)
        limit_texts = [*self.limit_texts, None]  # index -1: no limit
        return [
            {**heads[run], "period_start": self.period_texts[period],
             "weekday": self.period_weekdays[period], "peak_time": self.peak_texts[peak],
             "peak_value": value, "limit": None if limit == NO_LIMIT else limit,
             "limit_effective_date": limit_texts[effective], "over_limit": over}
            for run, period, peak, value, limit, effective, over in zip(
                self._runs(starts).tolist(), self.period_index.tolist(),
                self.peak_index.tolist(), self.peak_value.tolist(), self.limit.tolist(),
                self.limit_index.tolist(), self.over_limit.tolist(), strict=True)]

    def json_rows(self, before: bytes = b"", after: bytes = b"") -> bytes:
        """`before`, the rows as a JSON array — byte for byte what `orjson.dumps(self.rows())`
        gives — and `after`, in one bytes object (the API's body: no copy of it is made).

        Each row is five pieces, each the serialised text of something many rows share: its
        head (subject and item columns), period, peak time, peak value, and limit columns with
        the comma after the row; a month report of one tenant has ~900 rows, a few hundred
        distinct pieces, most of them serialised by earlier reports already (heads, periods
        and limit columns are kept). The pieces go into a table of objects, one row per report
        row, filled a column at a time by numpy (a gather in C), and are joined once: half the
        time of assembling the same list with Python iterators, which grew it piece by piece."""
        if not len(self):
            return before + b"[]" + after
        starts = self._run_starts()
        subject_parts = [_subject_fragment(self.level, subject) for subject in self.subjects]
        names = self.item_names
        heads = _objects([subject_parts[s] + _item_fragment(item, names.get(item))
                          for s, item in self._run_pairs(starts)])
        if len(self.period_texts) <= _KEPT_PERIODS:
            periods = _period_fragments(tuple(self.period_texts), tuple(self.period_weekdays))
        else:
            periods = _objects(_period_pieces(self.period_texts, self.period_weekdays))
        peaks = (_DAY_PEAK_FRAGMENTS if self.peak_texts is _DAY_PEAK_TEXTS
                 else _objects([_peak_fragment(text) for text in self.peak_texts]))
        if int(self.peak_value.min()) >= 0 and int(self.peak_value.max()) < _VALUE_TEXTS.size:
            values = _VALUE_TEXTS[self.peak_value]
        else:
            values = _objects([b"%d" % value for value in self.peak_value.tolist()])
        # The tail of a row: its limit columns, which few distinct combinations share. Each
        # combination as one number (limit above the lowest, effective date, over or not),
        # which can be decoded again.
        lowest = int(self.limit.min())
        dates = len(self.limit_texts) + 1  # limit_index + 1: 0 is no limit
        keys, tail_code = narrow_rank(
            ((self.limit - np.int64(lowest)) * dates + self.limit_index + 1) * 2
            + self.over_limit)
        limit_texts = [*self.limit_texts, None]  # index -1: no limit
        tails = [_tail_fragment(key // 2 // dates + lowest, limit_texts[key // 2 % dates - 1],
                                bool(key % 2)) for key in keys.tolist()]
        pieces = np.empty((len(self), 5), dtype=object)
        pieces[:, 0] = heads[self._runs(starts)]
        pieces[:, 1] = periods[self.period_index]
        pieces[:, 2] = peaks[self.peak_index]
        pieces[:, 3] = values
        pieces[:, 4] = _objects([tail + b"," for tail in tails])[tail_code]
        pieces[0, 0] = before + b"[" + pieces[0, 0]
        pieces[-1, 4] = tails[int(tail_code[-1])] + b"]" + after  # no comma after the last row
        return b"".join(pieces.ravel().tolist())


# Fragments that many reports share, kept across reports: a miss's rows are mostly texts that
# earlier reports already serialised (a tenant's item columns, a month's days).
_KEPT_PERIODS = 400  # a year of day rows; detailed reports' minutes are not kept


# A row's head (its subject's and item's columns) is the subject's part then the item's: each
# is kept, so the head of a subject never reported before costs a concatenation.
@functools.lru_cache(maxsize=1 << 14)
def _subject_fragment(level: str, subject: Subject) -> bytes:
    """The opening of a row and its subject's columns as JSON, with the comma after them."""
    columns = _subject_columns(subject, level)
    return orjson.dumps(columns)[:-1] + (b"," if columns else b"")


@functools.lru_cache(maxsize=1 << 14)
def _item_fragment(item: int, item_name: str | None) -> bytes:
    """A row's item columns as JSON, with the comma after them (no name known: the id)."""
    return orjson.dumps({"item_id": item,
                         "item_name": str(item) if item_name is None else item_name}
                        )[1:-1] + b","


def _period_pieces(texts: Sequence[str], weekdays: Sequence[str | None]) -> list[bytes]:
    return [orjson.dumps({"period_start": text, "weekday": weekday})[1:-1] + b","
            for text, weekday in zip(texts, weekdays, strict=True)]


@functools.lru_cache(maxsize=1024)
def _period_fragments(texts: tuple[str, ...],
                      weekdays: tuple[str | None, ...]) -> npt.NDArray[np.object_]:
    """The period columns of each period as JSON (read only: gathered, never changed)."""
    fragments = _objects(_period_pieces(texts, weekdays))
    fragments.flags.writeable = False
    return fragments


@functools.lru_cache(maxsize=1 << 12)
def _tail_fragment(limit: int, effective: str | None, over: bool) -> bytes:
    """The limit columns of a row as JSON, from the comma before them to the row's end."""
    return b"," + orjson.dumps({"limit": None if limit == NO_LIMIT else limit,
                                "limit_effective_date": effective, "over_limit": over})[1:]


def _subject_columns(subject: Subject, level: str) -> dict[str, object]:
    if level == "system":
        return {}
    if level == "tenant":
        return {"tenant_id": subject.id, "tenant_name": subject.name}
    return {"group_id": subject.id, "group_name": subject.name,
            "tenant_id": subject.tenant_id, "tenant_name": subject.tenant_name}


def period_starts(days: I64, granularity: Granularity, week_start: str) -> I64:
    """The first day (`day_number`) of the period of each day."""
    if granularity in ("day", "detailed"):
        return days
    if granularity == "week":
        # 1970-01-01 was a Thursday (weekday 3, Monday being 0).
        return days - (days + 3 - weekday_index(week_start)) % 7
    months = days.astype("datetime64[D]").astype("datetime64[M]")
    return months.astype("datetime64[D]").astype(np.int64)


def winners(values: DailyColumns, periods: I64) -> Idx:
    """Index of the value that stands for each (subject, item, period): the maximum, the latest
    day on ties; in (subject, item, period) order."""
    order = np.lexsort((values.day, values.value, periods, values.item, values.subject))
    if order.size == 0:
        return order
    subject, item, period = values.subject[order], values.item[order], periods[order]
    last = np.ones(order.size, dtype=np.bool_)
    last[:-1] = ((subject[1:] != subject[:-1]) | (item[1:] != item[:-1])
                 | (period[1:] != period[:-1]))
    return order[last]


def _one_per_period_in_order(subject: I64, item: I64, period: I64) -> bool:
    """Whether the (subject, item, period) triples are strictly increasing: one value per
    period, already in row order."""
    if subject.size < 2:
        return True
    d_subject, d_item = subject[1:] - subject[:-1], item[1:] - item[:-1]
    d_period = period[1:] - period[:-1]
    return bool(((d_subject > 0) | ((d_subject == 0) & (
        (d_item > 0) | ((d_item == 0) & (d_period > 0))))).all())


def _period_rank(periods: I64, by_day: bool) -> tuple[I64, I64]:
    """(the periods' first days as a sorted table, each row's index into it). Day periods of a
    report are a short range of days: the table is that whole range (days without a row are
    never looked up), which costs a subtraction where `np.unique` costs a hash table."""
    if by_day and periods.size:
        first, last = int(periods.min()), int(periods.max())
        if last - first <= 4 * periods.size + 64:
            return np.arange(first, last + 1, dtype=np.int64), periods - np.int64(first)
    days, index = np.unique(periods, return_inverse=True)
    return days, index.reshape(-1)


def daily_table(values: DailyColumns, *, level: str, granularity: Granularity,
                week_start: str, zone: ZoneInfo, subjects: Mapping[int, Subject],
                item_names: Mapping[int, str], limits: LimitTable) -> ReportTable:
    """Rows for day, week or month granularity."""
    by_day = granularity == "day"
    all_periods = period_starts(values.day, granularity, week_start)
    if _one_per_period_in_order(values.subject, values.item, all_periods):
        # Every value stands for its period, in row order (the store reads a subject's values
        # by item and date: a day report) — no sort, no gathers.
        subject, item, periods = values.subject, values.item, all_periods
        day, value, peak_ts = values.day, values.value, values.peak_ts
    else:
        chosen = winners(values, all_periods)
        subject, item, periods = values.subject[chosen], values.item[chosen], all_periods[chosen]
        day, value, peak_ts = values.day[chosen], values.value[chosen], values.peak_ts[chosen]
    period_days, period_index = _period_rank(periods, by_day)
    days = tuple(period_days.tolist())
    period_texts, period_weekdays = (_kept_period_columns(days, by_day)
                                     if len(days) <= _KEPT_PERIODS
                                     else _period_columns(days, by_day))

    timed = peak_ts != NO_TIME
    local = local_ts(zone, peak_ts[timed])
    peak_code = np.full(day.size, -1, dtype=np.int64)
    if by_day:  # "HH:MM": the minute of the local day
        peak_code[timed] = (local % 86_400) // 60
        peak_texts: Sequence[str | None] = _DAY_PEAK_TEXTS
    else:  # "YYYY-MM-DD HH:MM": the local minute
        minutes, peak_code[timed] = narrow_rank(local // 60)
        peak_texts = [*_minute_texts(minutes), None]

    return ReportTable(
        level=level,
        **_subject_index(subject, subjects),
        item_id=item, item_names=item_names,
        period_texts=period_texts, period_weekdays=period_weekdays,
        period_index=period_index.reshape(-1),
        peak_texts=peak_texts, peak_index=np.where(timed, peak_code, len(peak_texts) - 1),
        peak_value=value, **_limit_columns(limits.in_force(subject, item, day), value))


def _period_columns(days: tuple[int, ...],
                    by_day: bool) -> tuple[tuple[str, ...], tuple[str | None, ...]]:
    """The texts of periods starting on `days` (`day_number`s): their first dates, and their
    weekdays for day rows (None otherwise)."""
    dates = [day_of(d) for d in days]
    return (tuple(d.isoformat() for d in dates),
            tuple(_WEEKDAY_NAMES[d.weekday()] if by_day else None for d in dates))


# Kept for ranges of up to a year of days (a longer range's texts are made each time: kept,
# 1,024 ranges of ten years would hold ~430 MB).
_kept_period_columns = functools.lru_cache(maxsize=1024)(_period_columns)


def detailed_table(series: MinuteColumns, *, level: str, zone: ZoneInfo,
                   subjects: Mapping[int, Subject], item_names: Mapping[int, str],
                   limits: LimitTable) -> ReportTable:
    """One row per minute: `period_start` is the local minute (`YYYY-MM-DD HH:MM`),
    `peak_time` its `HH:MM`; the limit is the one in force on the business date."""
    order = np.lexsort((series.day, series.item, series.subject))
    starts = np.cumsum(series.lengths) - series.lengths
    lengths = series.lengths[order]
    owner = np.repeat(order, lengths)  # the series of each row
    first_row = np.repeat(np.cumsum(lengths) - lengths, lengths)
    minute = np.arange(owner.size, dtype=np.int64) - first_row
    value = series.peaks[starts[owner] + minute]
    instants = series.day_start_ts[owner] + 60 * minute
    minutes, period_index = np.unique(local_ts(zone, instants) // 60, return_inverse=True)
    period_texts = _minute_texts(minutes)
    subject, item = series.subject[owner], series.item[owner]
    return ReportTable(
        level=level,
        **_subject_index(subject, subjects),
        item_id=item, item_names=item_names,
        period_texts=period_texts, period_weekdays=[None] * len(period_texts),
        period_index=period_index.reshape(-1),
        peak_texts=[text[-5:] for text in period_texts], peak_index=period_index.reshape(-1),
        peak_value=value,
        **_limit_columns(limits.in_force(subject, item, series.day[owner]), value))


def _minute_texts(minutes: I64) -> list[str]:
    """"YYYY-MM-DD HH:MM" of local minutes (minutes of the local clock since 1970)."""
    return [f"{day_of(m // 1440).isoformat()} {_HHMM[m % 1440]}" for m in minutes.tolist()]


def _limit_columns(in_force: tuple[I64, I64], value: I64) -> dict[str, Any]:
    """The limit columns of rows with these (quantity, effective day)s in force: the distinct
    effective dates as texts and each row's index into them (-1: no limit)."""
    quantity, effective = in_force
    has_limit = quantity != NO_LIMIT
    index = np.full(quantity.size, -1, dtype=np.intp)
    days, index[has_limit] = narrow_rank(effective[has_limit])
    return {"limit": quantity, "limit_texts": [day_of(d).isoformat() for d in days.tolist()],
            "limit_index": index, "over_limit": has_limit & (value > quantity)}


def _subject_index(subject: I64, subjects: Mapping[int, Subject]) -> dict[str, Any]:
    if subject.size and int(subject.min()) == int(subject.max()):  # one subject (most reports)
        ids, index = subject[:1], np.zeros(subject.size, dtype=np.intp)
    else:
        ids, index = np.unique(subject, return_inverse=True)
    return {"subjects": [subjects.get(s, Subject(s, str(s))) for s in ids.tolist()],
            "subject_index": index.reshape(-1)}
