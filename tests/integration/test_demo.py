"""`lrm demo` prints reports whose numbers equal the brute-force oracle."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from lrm.demo import DemoOptions, demo_params, run_demo
from lrm.domain.calendar import business_day
from lrm.domain.daily import gvp_daily
from lrm.domain.items import build_catalogue
from lrm.domain.sessions import SessionTable
from lrm.reporting import Report
from lrm.settings import load_settings
from lrm.sim.model import generate
from lrm.store import config_samples
from lrm.store.db import create_engine, embedded_server
from tests.oracle import oracle_count


def test_demo_reports_match_the_oracle(tmp_path: Path) -> None:
    """Every row of the demo's tenant and system reports equals the oracle computed from the
    simulator's true sessions (HA copies, outage and bad rows included in the IDBs)."""
    shown: list[Report] = []
    options = DemoOptions(folder=tmp_path, instances=False)
    assert run_demo(options, lambda _: None, shown.append) == 0  # type: ignore[arg-type]
    assert [r.request.kind for r in shown] == ["tenant", "system"]

    settings = load_settings(tmp_path / "lrm.toml", environ={})
    params = demo_params(options)
    dataset = generate(params, today=datetime.now(UTC).date())
    truth = dataset.sessions
    sessions = SessionTable.from_columns(
        created=truth.created_ts, terminated=truth.terminated_ts, person=truth.agent,
        place=truth.place, dn=truth.dn, provider_tag=truth.provider_tag)
    engine = create_engine(embedded_server(tmp_path / ".lrm").start().url("lrm"))
    checked = 0
    try:
        for report in shown:
            by_day: dict[str, dict[tuple[str, int, int], tuple[int, int]]] = {}
            for row in report.rows:
                day_text = str(row["period_start"])
                if day_text not in by_day:
                    day = business_day(date.fromisoformat(day_text), settings.lrm.zone)
                    with engine.connect() as c:
                        samples = config_samples.samples_between(
                            c, datetime.fromtimestamp(day.start_ts - 30 * 86400, UTC),
                            datetime.fromtimestamp(day.end_ts, UTC))
                    oracle = oracle_count(day, sessions,
                                          [(int(t.timestamp()), d) for t, d in samples],
                                          build_catalogue(), None, [],
                                          int(datetime.now(UTC).timestamp()))
                    by_day[day_text] = {**oracle.daily, **{
                        (lvl, s, 100): v for (lvl, s), v in oracle.enabled.items()}}
                level = report.request.kind
                subject = int(row.get("tenant_id", 0))  # type: ignore[call-overload]
                item = int(row["item_id"])  # type: ignore[call-overload]
                if item == 200:
                    gvp_day = business_day(date.fromisoformat(day_text), settings.lrm.zone)
                    series = dataset.gvp.series("RM", [subject], gvp_day.start_ts,
                                                gvp_day.end_ts)
                    value, minute = gvp_daily(gvp_day, np.array([t for t, _ in series]),
                                              np.array([c for _, c in series]))
                else:
                    value, minute = by_day[day_text][(level, subject, item)]
                local = datetime.fromtimestamp(
                    business_day(date.fromisoformat(day_text), settings.lrm.zone).start_ts
                    + 60 * minute, UTC).astimezone(settings.lrm.zone)
                assert row["peak_value"] == value, row
                assert row["peak_time"] == local.strftime("%H:%M"), row
                checked += 1
    finally:
        engine.dispose()
        embedded_server(tmp_path / ".lrm").stop()
    assert checked == len(shown[0].rows) + len(shown[1].rows) >= 30
