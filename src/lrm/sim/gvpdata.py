"""GVP port usage of the simulated contact centre: 5-minute peak counts per tenant for RM (IVR
ports), ASR and TTS sessions (pure, seeded). The system value of a bin is the sum over tenants.

Counts follow a business-hours curve in the simulation's time zone (lower at weekends); each
tenant's daytime peak is log-normal around 60 % of its agent count (5–500 ports), ASR peaks are
30–70 % and TTS peaks 40–90 % of the RM counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lrm.sim.period import Period

GVP_KINDS: tuple[str, ...] = ("RM", "ASR", "TTS")
BIN_S = 300
GRANULARITIES: dict[str, int] = {"FIVE_MINUTES": 300, "THIRTY_MINUTES": 1800, "HOUR": 3600,
                                 "DAY": 86_400}


@dataclass(frozen=True)
class GvpData:
    """`counts[kind, tenant, bin]`: the peak count of the 5-minute bin starting at
    `start_ts + bin * 300` for `tenant_ids[tenant]`."""

    start_ts: int
    tenant_ids: tuple[int, ...]
    counts: npt.NDArray[np.int32]

    @property
    def bins(self) -> int:
        return int(self.counts.shape[2])

    @property
    def end_ts(self) -> int:
        return self.start_ts + self.bins * BIN_S

    def system(self, kind: str) -> npt.NDArray[np.int64]:
        """Per-bin sum over all tenants."""
        result: npt.NDArray[np.int64] = self.counts[GVP_KINDS.index(kind)].sum(axis=0,
                                                                              dtype=np.int64)
        return result

    def series(self, kind: str, tenant_ids: Sequence[int] | None, from_ts: int, to_ts: int,
               step_s: int = BIN_S) -> list[tuple[int, int]]:
        """(bin start, count) for every `step_s` bucket in [from_ts, to_ts): the per-5-minute
        sum over the selected tenants (all tenants when None; unknown ids count 0), then the
        maximum within each bucket. Bins outside the simulated period count 0. `from_ts` and
        `to_ts` must be multiples of `step_s` apart and aligned to 5 minutes."""
        if step_s % BIN_S or (to_ts - from_ts) % step_s or from_ts % BIN_S:
            raise ValueError("bucket bounds must be aligned to the granularity")
        k = GVP_KINDS.index(kind)
        if tenant_ids is None:
            values = self.system(kind)
        else:
            rows = [self.tenant_ids.index(t) for t in tenant_ids if t in self.tenant_ids]
            values = self.counts[k, rows].sum(axis=0, dtype=np.int64)
        n_fine = (to_ts - from_ts) // BIN_S
        fine = np.zeros(n_fine, dtype=np.int64)
        first = (from_ts - self.start_ts) // BIN_S
        lo, hi = max(first, 0), min(first + n_fine, self.bins)
        if hi > lo:
            fine[lo - first:hi - first] = values[lo:hi]
        per_bucket = step_s // BIN_S
        buckets = fine.reshape(-1, per_bucket).max(axis=1) if n_fine else fine
        return [(from_ts + i * step_s, int(v)) for i, v in enumerate(buckets.tolist())]


def generate_gvp(rng: np.random.Generator, tenant_dbids: Sequence[int], agents_per_tenant: int,
                 period: Period) -> GvpData:
    start = period.start_ts - period.start_ts % BIN_S
    n_bins = (period.end_ts - start) // BIN_S
    n_t = len(tenant_dbids)
    bin_start = start + BIN_S * np.arange(n_bins, dtype=np.int64)
    midnights = np.asarray(period.midnights[1:], dtype=np.int64)        # day 0 .. days
    day = np.clip(np.searchsorted(midnights, bin_start, side="right") - 1, 0, period.days - 1)
    hour = (bin_start - midnights[day]) / 3600.0
    weekend = np.array([w >= 5 for w in period.weekdays[1:]])[day]
    profile = (0.06 + 0.94 * np.exp(-(((hour - 13.0) / 3.5) ** 2))) * np.where(weekend, 0.5, 1.0)
    median_peak = max(5.0, 0.6 * agents_per_tenant)
    peak = np.clip(np.exp(np.log(median_peak) + 0.5 * rng.standard_normal(n_t)), 5, 500)
    noise = rng.uniform(0.85, 1.0, size=(n_t, n_bins))
    rm = rng.poisson(peak[:, None] * profile[None, :] * noise)
    asr = rng.binomial(rm, rng.uniform(0.3, 0.7, size=n_t)[:, None])
    tts = rng.binomial(rm, rng.uniform(0.4, 0.9, size=n_t)[:, None])
    counts = np.stack([rm, asr, tts]).astype(np.int32)
    return GvpData(start_ts=int(start), tenant_ids=tuple(int(t) for t in tenant_dbids),
                   counts=counts)
