"""The simulated contact centre as data: parameters in, a `SimDataset` out (pure, seeded).

`generate(params, today=...)` draws the configuration and its change timeline, the true login
sessions, what each IDB of each ICON HA pair holds (outage window, bad rows) and the GVP peak
counts. Nothing here reads the clock or touches a database or the network: the same parameters
give byte-identical arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from lrm.sim.configgen import MIN_AGENTS_PER_TENANT, AgentTable, generate_config
from lrm.sim.copies import BAD_KINDS, IdbCopy, OutageWindow, build_copies
from lrm.sim.gvpdata import GvpData, generate_gvp
from lrm.sim.period import Period
from lrm.sim.sessions import (
    F_NIGHT,
    F_RELOGIN,
    F_STUCK,
    OPEN,
    PROVIDER_MULTIMEDIA,
    SessionTable,
    generate_sessions,
)
from lrm.sim.timeline import ConfigDocument, ConfigTimeline

MAX_TENANTS = 10_000
MAX_DAYS = 366


@dataclass(frozen=True)
class SimParams:
    """What to simulate. `start` defaults to `today - days`: the simulated days are the last
    full local days before `today` (given to `generate`, never read from a clock here)."""

    tenants: int = 3
    agents_per_tenant: int = 20
    days: int = 3
    seed: int = 1
    start: date | None = None
    timezone: str = "UTC"
    ha: bool = True
    icon_pairs: int = 1
    outage: bool = True
    bad_rows: int = 0

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.tenants <= MAX_TENANTS:
            problems.append(f"tenants must be between 1 and {MAX_TENANTS}")
        if self.agents_per_tenant < MIN_AGENTS_PER_TENANT:
            problems.append(f"agents_per_tenant must be at least {MIN_AGENTS_PER_TENANT}")
        if not 1 <= self.days <= MAX_DAYS:
            problems.append(f"days must be between 1 and {MAX_DAYS}")
        if not 1 <= self.icon_pairs <= 64:
            problems.append("icon_pairs must be between 1 and 64")
        if not 0 <= self.bad_rows <= 10_000:
            problems.append("bad_rows must be between 0 and 10000")
        if self.seed < 0:
            problems.append("seed must not be negative")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"timezone {self.timezone!r} is not a known IANA time zone")
        if problems:
            raise ValueError("; ".join(problems))

    def resolved(self, today: date | None) -> SimParams:
        """These parameters with `start` filled in from `today` when it is not set."""
        if self.start is not None:
            return self
        if today is None:
            raise ValueError("either start or today must be given")
        return replace(self, start=today - timedelta(days=self.days))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["start"] = self.start.isoformat() if self.start else None
        return data

    @staticmethod
    def from_json(data: dict[str, Any]) -> SimParams:
        values = dict(data)
        if values.get("start"):
            values["start"] = date.fromisoformat(values["start"])
        return SimParams(**values)


@dataclass(frozen=True)
class SimDataset:
    """Everything a simulation is made of (the truth the tests compare lrm's results with)."""

    params: SimParams
    period: Period
    timeline: ConfigTimeline
    agents: AgentTable
    sessions: SessionTable
    idbs: tuple[IdbCopy, ...]
    outages: tuple[OutageWindow, ...]
    gvp: GvpData

    @property
    def config(self) -> ConfigDocument:
        """The configuration after every change (the `kind = "file"` document)."""
        return self.timeline.final()

    def across_midnight(self, table: SessionTable | None = None) -> npt.NDArray[np.bool_]:
        """Sessions that are logged in at a local midnight (strictly inside the session)."""
        table = table if table is not None else self.sessions
        end = np.where(table.terminated_ts == OPEN, self.period.end_ts, table.terminated_ts)
        midnights = np.asarray(self.period.midnights, dtype=np.int64)
        return (np.searchsorted(midnights, end, side="left")
                - np.searchsorted(midnights, table.created_ts, side="right")) > 0

    def summary(self) -> dict[str, Any]:
        """Counts of what was made (the `manifest.json` figures)."""
        cfg = self.config
        s = self.sessions
        return {
            "tenants": len(cfg["tenants"]),
            "switches": len(cfg["switches"]),
            "sip_switches": sum(1 for w in cfg["switches"] if w["type"] == "CFGSIPSwitch"),
            "dns": len(cfg["dns"]),
            "places": len(cfg["places"]),
            "persons": len(cfg["persons"]),
            "agents": sum(1 for p in cfg["persons"] if p["isAgent"] == 2),
            "agent_groups": len(cfg["agent-groups"]),
            "place_groups": len(cfg["place-groups"]),
            "config_changes": len(self.timeline.changes),
            "sessions": {
                "total": len(s),
                "voice": int(np.count_nonzero(s.provider_tag != PROVIDER_MULTIMEDIA)),
                "multimedia": int(np.count_nonzero(s.provider_tag == PROVIDER_MULTIMEDIA)),
                "open": int(np.count_nonzero(s.is_open)),
                "zero_length": int(np.count_nonzero(s.created_ts == s.terminated_ts)),
                "night_shift": int(np.count_nonzero(s.flags & F_NIGHT)),
                "across_local_midnight": int(np.count_nonzero(self.across_midnight())),
                "short_relogins": int(np.count_nonzero(s.flags & F_RELOGIN)),
                "stuck_24h_plus": int(np.count_nonzero(s.flags & F_STUCK)),
                "started_before_period": int(np.count_nonzero(
                    s.created_ts < self.period.start_ts)),
            },
        }

    def idb_summary(self, idb: IdbCopy) -> dict[str, Any]:
        rows = idb.rows
        bad = {kind: int(np.count_nonzero(rows.bad_kind == i + 1))
               for i, kind in enumerate(BAD_KINDS)}
        return {
            "rows": len(rows),
            "open": int(np.count_nonzero(rows.is_open)),
            "zero_length": int(np.count_nonzero(rows.created_ts == rows.terminated_ts)),
            "missing_by_outage": idb.missing_by_outage,
            "end_lost_by_outage": idb.end_lost_by_outage,
            "bad_rows": bad,
        }


def generate(params: SimParams, *, today: date | None = None,
             progress: Callable[[str], None] | None = None) -> SimDataset:
    """Draw a whole simulation from `params` (with `start`, or `today` to derive it).
    `progress` is told when each stage is done (for long runs)."""
    say = progress or (lambda _message: None)
    params = params.resolved(today)
    assert params.start is not None
    period = Period.of(params.start, params.days, params.timezone)
    config_rng, session_rng, copy_rng, gvp_rng = np.random.default_rng(params.seed).spawn(4)
    config = generate_config(config_rng, tenants=params.tenants,
                             agents_per_tenant=params.agents_per_tenant,
                             icon_pairs=params.icon_pairs, period=period)
    say(f"configuration: {len(config.agents):,} agents, "
        f"{len(config.timeline.changes):,} timed changes")
    sessions = generate_sessions(session_rng, config.agents, period)
    say(f"sessions: {len(sessions):,}")
    idbs, outages = build_copies(copy_rng, sessions, config.agents, period,
                                 pairs=params.icon_pairs, ha=params.ha, outage=params.outage,
                                 bad_rows=params.bad_rows)
    say(f"IDB copies: {', '.join(f'{i.suffix} {len(i.rows):,} rows' for i in idbs)}")
    gvp = generate_gvp(gvp_rng, config.tenant_dbids, params.agents_per_tenant, period)
    return SimDataset(params=params, period=period, timeline=config.timeline,
                      agents=config.agents, sessions=sessions, idbs=tuple(idbs),
                      outages=tuple(outages), gvp=gvp)
