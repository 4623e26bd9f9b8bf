"""Generate the true agent login sessions (pure, numpy-vectorised, seeded).

Shifts are drawn per (agent, day) — day shifts starting 07:00–11:30 local with log-normal
durations (median 7.5 h) ending by about 19:30, night shifts starting 20:30–23:00 and crossing
local midnight, a few stuck sessions of 24–60 h — and split into 1–3 login sessions with breaks.
About 10 % of sessions are preceded by a short re-login (1–30 min) and about 2 % by a zero-length
session (CREATED_TS = TERMINATED_TS). Multimedia agents get an Interaction Server session
(PROVIDERTAG 2, no DN or DN 0, no login) overlapping each voice session; multimedia-only agents
have only those. Sessions still running at the end of the period are open (no end).

There are no per-session Python loops: every step works on whole arrays.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Self, TypeVar

import numpy as np
import numpy.typing as npt

from lrm.sim.configgen import KIND_MM, KIND_VOICE_MM, AgentTable
from lrm.sim.period import Period

I8 = npt.NDArray[np.int8]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
GuidArray = npt.NDArray[np.bytes_]

NULL = -1   # NULL in integer columns (PRIMARYDEVICEID may also be 0, which is not NULL)
OPEN = -1   # terminated_ts of a session still open at the end of the period

# Session flags (bit mask)
F_NIGHT = 1        # part of a night shift (starts in the evening, crosses local midnight)
F_RELOGIN = 2      # short re-login before a session
F_ZERO = 4         # zero-length session
F_STUCK = 8        # a session of 24 h or more
F_MM_OVERLAP = 16  # Interaction Server session overlapping a voice session

PROVIDER_VOICE = 1
PROVIDER_MULTIMEDIA = 2


@dataclass(frozen=True)
class SessionTable:
    """Columnar sessions: one entry per login session (GUID)."""

    guid: GuidArray         # S36, lowercase 8-4-4-4-12 hex
    agent: I32              # AGENTID (person DBID)
    login: I32              # LOGINID, NULL (-1) for Interaction Server sessions
    place: I32              # PLACEID or -1
    dn: I32                 # PRIMARYDEVICEID: -1 NULL, 0 for some Interaction Server sessions
    provider_tag: I8        # PROVIDERTAG: 1 T-Server/SIP Server, 2 Interaction Server
    created_ts: I64         # CREATED_TS
    terminated_ts: I64      # TERMINATED_TS or -1 while open
    pair: I32               # index of the ICON HA pair that records the session
    tenant: I32             # tenant DBID (truth, not an IDB column)
    flags: U8               # F_* bits (truth, not an IDB column)

    def __len__(self) -> int:
        return len(self.created_ts)

    def take(self, index: npt.NDArray[Any]) -> Self:
        """The rows selected by a boolean mask or an index array, as a new table."""
        return dataclasses.replace(self, **{f.name: getattr(self, f.name)[index]
                                            for f in dataclasses.fields(self)})

    @property
    def is_open(self) -> npt.NDArray[np.bool_]:
        result: npt.NDArray[np.bool_] = self.terminated_ts == OPEN
        return result


TableT = TypeVar("TableT", bound="SessionTable")


def concat_tables(tables: list[TableT]) -> TableT:
    """Rows of several tables of the same kind, in order."""
    first = tables[0]
    return dataclasses.replace(first, **{
        f.name: np.concatenate([getattr(t, f.name) for t in tables])
        for f in dataclasses.fields(first)})


_HEX_PAIRS = np.frombuffer(b"".join(f"{i:02x}".encode() for i in range(256)),
                           dtype=np.uint16)
_GUID_GROUPS = ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))


def make_guids(rng: np.random.Generator, n: int) -> GuidArray:
    """`n` random version-4 UUIDs as S36 bytes (vectorised formatting)."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexed = _HEX_PAIRS[raw].view(np.uint8).reshape(n, 32)
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    for (src_lo, src_hi), dst_lo in zip(_GUID_GROUPS, (0, 9, 14, 19, 24), strict=True):
        out[:, dst_lo:dst_lo + src_hi - src_lo] = hexed[:, src_lo:src_hi]
    return out.view("S36").reshape(n)


def generate_sessions(rng: np.random.Generator, agents: AgentTable,
                      period: Period) -> SessionTable:
    """The true sessions overlapping the period, sorted by CREATED_TS, with GUIDs."""
    n_days = period.days + 1                      # day -1 .. days - 1
    weekend = np.array([w >= 5 for w in period.weekdays])
    works = rng.random((len(agents), n_days)) < np.where(weekend, 0.45, 0.88)
    s_agent, s_day = np.nonzero(works)           # one entry per shift
    n_s = len(s_agent)
    night = agents.night[s_agent]
    u_start = rng.random(n_s)
    start_h = np.where(night, 20.5 + 2.5 * u_start, 7.0 + 4.5 * u_start)
    z = rng.standard_normal(n_s)
    day_h = np.minimum(np.clip(np.exp(np.log(7.5) + 0.30 * z), 1.0, 12.0), 19.5 - start_h)
    night_h = np.clip(np.exp(np.log(8.0) + 0.15 * z), 5.0, 10.0)
    dur_h = np.where(night, night_h, day_h)
    stuck = rng.random(n_s) < 0.005
    dur_h = np.where(stuck, rng.uniform(24.0, 60.0, n_s), dur_h)
    noons = np.asarray(period.noons, dtype=np.int64)
    shift_start = noons[s_day] + np.round((start_h - 12.0) * 3600).astype(np.int64)
    shift_len = np.round(dur_h * 3600).astype(np.int64)

    # Split each shift into k = 1..3 sessions at random cut points, with a break before each cut.
    k = rng.choice(3, size=n_s, p=(0.6, 0.3, 0.1)) + 1
    k[stuck] = 1
    cuts = np.sort(rng.uniform(0.25, 0.75, size=(n_s, 2)), axis=1)
    bounds = np.zeros((n_s, 4))
    bounds[:, 1] = np.select([k == 1, k == 2], [1.0, cuts.mean(axis=1)], cuts[:, 0])
    bounds[:, 2] = np.where(k == 2, 1.0, cuts[:, 1])
    bounds[:, 3] = 1.0
    rep = np.repeat(np.arange(n_s), k)
    j = np.arange(len(rep)) - np.repeat(np.cumsum(k) - k, k)
    lo = shift_start[rep] + np.floor(shift_len[rep] * bounds[rep, j]).astype(np.int64)
    hi = shift_start[rep] + np.floor(shift_len[rep] * bounds[rep, j + 1]).astype(np.int64)
    last = j == k[rep] - 1
    gap = rng.integers(300, 1800, size=len(rep))
    hi = np.where(last, hi, np.maximum(hi - gap, lo + 60))
    m_agent = s_agent[rep]
    m_flags = (np.where(night[rep], F_NIGHT, 0) | np.where(stuck[rep], F_STUCK, 0)).astype(
        np.uint8)
    n_main = len(lo)

    # Short re-logins and zero-length sessions just before some sessions.
    relogin = rng.random(n_main) < 0.10
    zero = rng.random(n_main) < 0.02
    if n_main:
        relogin[0] |= not relogin.any()
        zero[-1] |= not zero.any()
    short = rng.integers(60, 1801, size=n_main)
    pause = rng.integers(10, 121, size=n_main)
    zero_at = lo - rng.integers(1, 10, size=n_main)
    r_lo, r_hi = (lo - pause - short)[relogin], (lo - pause)[relogin]

    # Interaction Server sessions overlapping the voice sessions of multimedia agents.
    overlap = agents.kind[m_agent] == KIND_VOICE_MM
    o_lo = lo + rng.integers(0, 181, size=n_main)
    o_hi = np.maximum(o_lo, hi - rng.integers(0, 181, size=n_main))

    agent_idx = np.concatenate([m_agent, m_agent[relogin], m_agent[zero], m_agent[overlap]])
    created = np.concatenate([lo, r_lo, zero_at[zero], o_lo[overlap]])
    ended = np.concatenate([hi, r_hi, zero_at[zero], o_hi[overlap]])
    not_stuck = np.uint8(0xFF ^ F_STUCK)
    flags = np.concatenate([m_flags, m_flags[relogin] | F_RELOGIN, m_flags[zero] | F_ZERO,
                            (m_flags[overlap] & not_stuck) | F_MM_OVERLAP]).astype(np.uint8)
    primary_mm = agents.kind[agent_idx] == KIND_MM
    multimedia = primary_mm | ((flags & F_MM_OVERLAP) != 0)

    # Configuration changes: an added agent logs in only after creation; a disabled agent is
    # logged out when disabled and does not log in again.
    added_at = agents.added_at[agent_idx]
    disabled_at = agents.disabled_at[agent_idx]
    keep = ~((added_at >= 0) & (created < added_at))
    keep &= ~((disabled_at >= 0) & (created >= disabled_at))
    ended = np.where((disabled_at >= 0) & (ended > disabled_at), disabled_at, ended)
    # Only what overlaps the period (or starts inside it) is in the IDBs.
    keep &= (created < period.end_ts) & ((created >= period.start_ts) | (ended > period.start_ts))
    order = np.flatnonzero(keep)
    order = order[np.argsort(created[order], kind="stable")]

    agent_idx, created, ended = agent_idx[order], created[order], ended[order]
    flags, multimedia = flags[order], multimedia[order]
    terminated = np.where(ended > period.end_ts, OPEN, ended)
    dn_mm = np.where(agents.mm_dn_zero[agent_idx], 0, NULL)
    return SessionTable(
        guid=make_guids(rng, len(order)),
        agent=agents.person[agent_idx],
        login=np.where(multimedia, NULL, agents.login[agent_idx]).astype(np.int32),
        place=agents.place[agent_idx],
        dn=np.where(multimedia, dn_mm, agents.dn[agent_idx]).astype(np.int32),
        provider_tag=np.where(multimedia, PROVIDER_MULTIMEDIA, PROVIDER_VOICE).astype(np.int8),
        created_ts=created.astype(np.int64),
        terminated_ts=terminated.astype(np.int64),
        pair=np.where(multimedia, agents.mm_pair[agent_idx],
                      agents.voice_pair[agent_idx]).astype(np.int32),
        tenant=agents.tenant_dbid[agent_idx],
        flags=flags,
    )
