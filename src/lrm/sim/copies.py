"""What each IDB of an ICON HA pair holds (pure, numpy-vectorised, seeded).

Both IDBs of a pair receive the same sessions with the same LOGINSESSIONID and identical column
values; only the local `ID` and `GSYS_DOMAIN` (the writing ICON's data-source session) differ.
Copy B has one outage window: sessions that started inside it are missing from B, and sessions
that ended inside it are in B without their end (TERMINATED NULL, STATE 0). Outside the window
the copies agree exactly.

Deliberate bad rows (`bad_rows` of each kind per pair) are added to both copies, away from the
outage window: end before start, CREATED_TS years in the future, unknown place, unknown DN,
unknown person, and (HA only) the same GUID with a different AGENTID in the two copies.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from lrm.sim.configgen import KIND_MM, AgentTable
from lrm.sim.period import Period
from lrm.sim.sessions import (
    F_ZERO,
    NULL,
    OPEN,
    PROVIDER_MULTIMEDIA,
    PROVIDER_VOICE,
    SessionTable,
    concat_tables,
    make_guids,
)

I8 = npt.NDArray[np.int8]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]

BAD_KINDS: tuple[str, ...] = ("end_before_start", "future_created", "unknown_place",
                              "unknown_dn", "unknown_person", "conflicting_agent")
UNKNOWN_DBID_BASE = {"unknown_place": 90_000_000, "unknown_dn": 91_000_000,
                     "unknown_person": 92_000_000}
B_ID_START = 10_000_001      # copy B's local IDs start elsewhere: IDs are never a cross-IDB key
DAY = 86_400


@dataclass(frozen=True)
class IdbRows(SessionTable):
    """The G_LOGIN_SESSION rows of one IDB (truth columns plus the IDB-local ones)."""

    id: I64
    state: I8               # 0 open, 1 finished
    gsys_domain: I32
    gsys_seq: I64
    gsys_useq: I64          # -1: NULL (not yet updated)
    bad_kind: U8            # 0, or 1 + index into BAD_KINDS


@dataclass(frozen=True)
class OutageWindow:
    pair: int
    start_ts: int
    end_ts: int

    def contains(self, ts: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        return (ts >= self.start_ts) & (ts < self.end_ts)


@dataclass(frozen=True)
class DssRow:
    """A G_DSS_GLS_PROVIDER row: one connection of an ICON to a data source."""

    dss_id: int
    icon_dbid: int
    ds_dbid: int
    ds_type: int            # 1 T-Server/SIP Server, 2 Interaction Server
    dsconn_stime: int
    dsconn_etime: int | None


@dataclass(frozen=True)
class IdbCopy:
    """One IDB: pair index (0-based), copy letter ("a", "b"; "" without HA), rows, DSS rows."""

    pair: int
    copy: str
    rows: IdbRows
    dss: tuple[DssRow, ...]
    id_start: int
    missing_by_outage: int = 0      # sessions of the pair this copy lacks (started in outage)
    end_lost_by_outage: int = 0     # sessions this copy holds open whose end fell in the outage

    @property
    def suffix(self) -> str:
        """`site1_a`, `site1_b` (or `site1` without HA): the part of the database name after
        the configurable prefix."""
        return f"site{self.pair + 1}" + (f"_{self.copy}" if self.copy else "")

    @property
    def ha_pair(self) -> str:
        return f"site-{self.pair + 1}"


def build_copies(rng: np.random.Generator, truth: SessionTable, agents: AgentTable,
                 period: Period, *, pairs: int, ha: bool, outage: bool,
                 bad_rows: int) -> tuple[list[IdbCopy], list[OutageWindow]]:
    """The IDBs of every ICON site (`a` and `b` with HA, one without) and the outage windows."""
    copies: list[IdbCopy] = []
    windows: list[OutageWindow] = []
    for pair in range(pairs):
        sessions = truth.take(truth.pair == pair)
        window = _choose_window(rng, sessions, period, pair) if ha and outage else None
        if window is not None:
            windows.append(window)
        kinds = BAD_KINDS if ha else BAD_KINDS[:-1]
        bad, conflict_agent = _bad_rows(rng, agents, period, pair, bad_rows, kinds, window)
        merged = concat_tables([_as_rows(sessions), bad])
        order = np.argsort(merged.created_ts, kind="stable")
        merged = merged.take(order)
        conflict_agent = np.concatenate(
            [np.full(len(sessions), NULL, dtype=np.int32), conflict_agent])[order]
        merged = _with_sequences(merged)
        copy_a = _finish(merged, id_start=1, voice_domain=101, mm_domain=102)
        dss_a = (DssRow(101, 9001 + 2 * pair, 9101 + pair, 1, period.start_ts - 30 * DAY, None),
                 DssRow(102, 9001 + 2 * pair, 9201 + pair, 2, period.start_ts - 30 * DAY, None))
        if not ha:
            copies.append(IdbCopy(pair, "", copy_a, dss_a, 1))
            continue
        copies.append(IdbCopy(pair, "a", copy_a, dss_a, 1))
        copies.append(_copy_b(merged, conflict_agent, window, pair, period))
    return copies, windows


def _as_rows(sessions: SessionTable) -> IdbRows:
    n = len(sessions)
    zeros64 = np.zeros(n, dtype=np.int64)
    return IdbRows(**{name: getattr(sessions, name) for name in SessionTable.__dataclass_fields__},
                   id=zeros64, state=np.zeros(n, dtype=np.int8),
                   gsys_domain=np.zeros(n, dtype=np.int32), gsys_seq=zeros64,
                   gsys_useq=zeros64, bad_kind=np.zeros(n, dtype=np.uint8))


def _with_sequences(rows: IdbRows) -> IdbRows:
    """GSYS_SEQ: insert order; GSYS_USEQ: update (logout) order, NULL while open."""
    n = len(rows)
    finished = np.flatnonzero(rows.terminated_ts != OPEN)
    useq = np.full(n, NULL, dtype=np.int64)
    useq[finished[np.argsort(rows.terminated_ts[finished], kind="stable")]] = np.arange(
        1, len(finished) + 1)
    return _replace(rows, gsys_seq=np.arange(1, n + 1, dtype=np.int64), gsys_useq=useq,
                    state=(rows.terminated_ts != OPEN).astype(np.int8))


def _replace(rows: IdbRows, **columns: Any) -> IdbRows:
    return dataclasses.replace(rows, **columns)


def _finish(rows: IdbRows, *, id_start: int, voice_domain: int, mm_domain: int,
            post_outage: npt.NDArray[np.bool_] | None = None) -> IdbRows:
    domain = np.where(rows.provider_tag == PROVIDER_VOICE, voice_domain, mm_domain)
    if post_outage is not None:
        domain = np.where(post_outage, domain + 2, domain)
    return _replace(rows, id=np.arange(id_start, id_start + len(rows), dtype=np.int64),
                    gsys_domain=domain.astype(np.int32))


def _copy_b(merged: IdbRows, conflict_agent: I32, window: OutageWindow | None, pair: int,
            period: Period) -> IdbCopy:
    rows = _replace(merged, agent=np.where(conflict_agent != NULL, conflict_agent,
                                           merged.agent).astype(np.int32))
    icon, stime = 9002 + 2 * pair, period.start_ts - 30 * DAY
    dss: tuple[DssRow, ...]
    if window is None:
        dss = (DssRow(201, icon, 9101 + pair, 1, stime, None),
               DssRow(202, icon, 9201 + pair, 2, stime, None))
        return IdbCopy(pair, "b", _finish(rows, id_start=B_ID_START, voice_domain=201,
                                          mm_domain=202), dss, B_ID_START)
    started_inside = window.contains(rows.created_ts)
    rows = rows.take(~started_inside)
    lost_end = (rows.terminated_ts != OPEN) & window.contains(rows.terminated_ts)
    rows = _replace(rows,
                    terminated_ts=np.where(lost_end, OPEN, rows.terminated_ts),
                    gsys_useq=np.where(lost_end, NULL, rows.gsys_useq),
                    state=np.where(lost_end, 0, rows.state).astype(np.int8))
    post = rows.created_ts >= window.end_ts
    dss = (DssRow(201, icon, 9101 + pair, 1, stime, window.start_ts),
           DssRow(202, icon, 9201 + pair, 2, stime, window.start_ts),
           DssRow(203, icon, 9101 + pair, 1, window.end_ts, None),
           DssRow(204, icon, 9201 + pair, 2, window.end_ts, None))
    return IdbCopy(pair, "b", _finish(rows, id_start=B_ID_START, voice_domain=201, mm_domain=202,
                                      post_outage=post), dss, B_ID_START,
                   missing_by_outage=int(np.count_nonzero(started_inside)),
                   end_lost_by_outage=int(np.count_nonzero(lost_end)))


def _choose_window(rng: np.random.Generator, sessions: SessionTable, period: Period,
                   pair: int) -> OutageWindow:
    """A 30–60 min window in copy B during which at least one session of the pair starts and
    at least one ends (when the data allows it)."""
    ends = sessions.terminated_ts
    candidates = np.flatnonzero((ends != OPEN) & (ends >= period.start_ts + 7200)
                                & (ends < period.end_ts - 7200)
                                & ((sessions.flags & F_ZERO) == 0))
    candidates = rng.permutation(candidates)[:64]
    offsets = rng.integers(300, 1200, size=len(candidates))
    lengths = rng.integers(1800, 3601, size=len(candidates))
    fallback: OutageWindow | None = None
    finished = ends[ends != OPEN]
    for cand, offset, length in zip(candidates.tolist(), offsets.tolist(), lengths.tolist(),
                                    strict=True):
        start = int(ends[cand]) - offset
        window = OutageWindow(pair, start, start + length)
        fallback = fallback or window
        if window.contains(sessions.created_ts).any() and window.contains(finished).any():
            return window
    if fallback is not None:
        return fallback
    start = period.local_clock(period.days // 2, 14.0)
    return OutageWindow(pair, start, start + 2700)


def _bad_rows(rng: np.random.Generator, agents: AgentTable, period: Period, pair: int, n: int,
              kinds: tuple[str, ...], window: OutageWindow | None) -> tuple[IdbRows, I32]:
    """`n` rows of each kind for `pair`, and the AGENTID copy B holds for each (NULL when the
    same as A's)."""
    total = n * len(kinds)
    steady = (agents.added_at < 0) & (agents.disabled_at < 0)
    pool = np.flatnonzero(steady & (agents.voice_pair == pair))
    if len(pool) == 0:
        pool = np.flatnonzero(steady & (agents.mm_pair == pair))
    if len(pool) == 0:
        pool = np.flatnonzero(steady)
    idx = rng.choice(pool, size=total)
    span = period.end_ts - period.start_ts - 5 * 3600
    created = period.start_ts + 3600 + rng.integers(0, max(span, 1), size=total)
    if window is not None:
        centre = (window.start_ts + window.end_ts) // 2
        for _ in range(100):
            near = np.abs(created - centre) < 3 * 3600
            if not near.any():
                break
            created[near] = period.start_ts + 3600 + rng.integers(0, max(span, 1),
                                                                  size=int(near.sum()))
    terminated = created + rng.integers(600, 4 * 3600, size=total)
    kind_index = np.repeat(np.arange(len(kinds)), n)
    serial = np.tile(np.arange(n), len(kinds)) + pair * 100_000
    mm = agents.kind[idx] == KIND_MM
    person, place = agents.person[idx].copy(), agents.place[idx].copy()
    dn = np.where(mm, np.where(agents.mm_dn_zero[idx], 0, NULL), agents.dn[idx]).astype(np.int32)
    login = np.where(mm, NULL, agents.login[idx]).astype(np.int32)
    provider = np.where(mm, PROVIDER_MULTIMEDIA, PROVIDER_VOICE).astype(np.int8)
    conflict = np.full(total, NULL, dtype=np.int32)
    future_offset = rng.integers(3 * 365 * DAY, 5 * 365 * DAY, size=total)
    back_offset = rng.integers(60, 3600, size=total)
    for number, kind in enumerate(kinds):
        sel = kind_index == number
        if kind == "end_before_start":
            terminated[sel] = created[sel] - back_offset[sel]
        elif kind == "future_created":
            created[sel] = period.end_ts + future_offset[sel]
            terminated[sel] = OPEN
        elif kind == "unknown_place":
            place[sel] = UNKNOWN_DBID_BASE[kind] + serial[sel]
        elif kind == "unknown_dn":
            dn[sel] = UNKNOWN_DBID_BASE[kind] + serial[sel]
            provider[sel] = PROVIDER_VOICE
        elif kind == "unknown_person":
            person[sel] = UNKNOWN_DBID_BASE[kind] + serial[sel]
        else:
            neighbour = np.where(
                (idx[sel] + 1 < len(agents))
                & (agents.tenant_index[np.minimum(idx[sel] + 1, len(agents) - 1)]
                   == agents.tenant_index[idx[sel]]), idx[sel] + 1, idx[sel] - 1)
            conflict[sel] = agents.person[neighbour]
    table = SessionTable(
        guid=make_guids(rng, total), agent=person.astype(np.int32), login=login,
        place=place.astype(np.int32), dn=dn, provider_tag=provider,
        created_ts=created.astype(np.int64), terminated_ts=terminated.astype(np.int64),
        pair=np.full(total, pair, dtype=np.int32), tenant=agents.tenant_dbid[idx],
        flags=np.zeros(total, dtype=np.uint8))
    rows = _as_rows(table)
    return _replace(rows, bad_kind=(kind_index + 1).astype(np.uint8)), conflict
