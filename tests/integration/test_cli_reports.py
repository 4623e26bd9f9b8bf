"""`lrm report` and `lrm job` on the command line, against a small hand-made LRM DB: whole
CSV/JSON bodies pinned, exit codes as SPEC §9."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from lrm.cli import app
from lrm.store import coordination
from tests.integration.api_server import load_hand_made

runner = CliRunner()


@pytest.fixture
def hand_made(lrm_db_url: str, lrm_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch,
              tmp_path: Path) -> sa.Engine:
    """The hand-made LRM DB of the API tests (tenants 101 and 102, item 1 on eight days of
    November 2026, limits for 101, a missing run on 2026-11-11), reached through the
    environment."""
    monkeypatch.setenv("LRM_LRM__DATABASE_URL", lrm_db_url)
    monkeypatch.delenv("LRM_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./lrm.toml: settings come from the environment
    load_hand_made(lrm_engine)
    return lrm_engine


def test_tenant_day_report_csv_body(hand_made: sa.Engine) -> None:
    """Day rows: weekday, HH:MM peak, the limit in force that day and over_limit."""
    result = runner.invoke(app, ["report", "tenant", "--tenant", "101", "--from",
                                 "2026-11-03", "--to", "2026-11-05", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "tenant_id,tenant_name,item_id,item_name,period_start,weekday,peak_time,peak_value,"
        "limit,limit_effective_date,over_limit",
        "101,Acme,1,Concurrent seat,2026-11-03,Tuesday,17:30,7,6,2026-11-01,true",
        "101,Acme,1,Concurrent seat,2026-11-04,Wednesday,17:30,7,6,2026-11-01,true",
        "101,Acme,1,Concurrent seat,2026-11-05,Thursday,13:30,3,6,2026-11-01,false"]


def test_week_report_takes_latest_tie_and_aligned_periods(hand_made: sa.Engine) -> None:
    """Week rows start on the requested weekday even when `from` is inside the week; ties go to
    the latest day; the limit is the one in force on the peak day."""
    result = runner.invoke(app, ["report", "tenant", "--tenant", "101", "--from", "2026-11-04",
                                 "--to", "2026-11-12", "--granularity", "week", "--format",
                                 "csv"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1:] == [
        "101,Acme,1,Concurrent seat,2026-11-02,,2026-11-04 17:30,7,6,2026-11-01,true",
        "101,Acme,1,Concurrent seat,2026-11-09,,2026-11-12 19:30,9,10,2026-11-10,false",
    ]
    sunday = runner.invoke(app, ["report", "tenant", "--tenant", "101", "--from",
                                 "2026-11-02", "--to",
                                 "2026-11-12", "--granularity", "week", "--week-start",
                                 "sunday", "--format", "csv"])
    assert [line.split(",")[4] for line in sunday.output.splitlines()[1:]] == [
        "2026-11-01", "2026-11-08"]


def test_json_document_has_freshness(hand_made: sa.Engine) -> None:
    """The JSON document carries the request, freshness (missing dates) and the rows."""
    result = runner.invoke(app, ["report", "system", "--from", "2026-11-10", "--to",
                                 "2026-11-12", "--granularity", "month", "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["report"] == "system"
    assert document["freshness"] == {"last_complete_date": "2026-11-12",
                                     "missing_dates": ["2026-11-11"]}
    assert document["rows"] == [{
        "item_id": 1, "item_name": "Concurrent seat", "period_start": "2026-11-01",
        "weekday": None, "peak_time": "2026-11-12 09:15", "peak_value": 27, "limit": None,
        "limit_effective_date": None, "over_limit": False}]


@pytest.mark.parametrize(("args", "message"), [
    (["--from", "2026-11-05", "--to", "2026-11-01"], "from: 2026-11-05 is after to"),
    (["--from", "2026-11-01", "--to", "2026-11-30", "--granularity", "detailed"],
     "detailed reports cover at most 7 days"),
    (["--from", "2026-11-01", "--to", "2026-11-02", "--tenant", "999"],
     "tenant: 999 is not a known tenant"),
    (["--from", "2026-11-01", "--to", "2026-11-02", "--item", "4242"],
     "item: 4242 is not a sellable item or bundle id"),
    (["--from", "2026-13-01", "--to", "2026-11-02"], "from: '2026-13-01' is not a date"),
])
def test_bad_report_requests_name_the_parameter(hand_made: sa.Engine, args: list[str],
                                               message: str) -> None:
    """A bad request fails with exit code 2 and a message naming the parameter."""
    result = subprocess.run([sys.executable, "-m", "lrm", "report", "tenant", *args],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def test_job_run_exits_3_when_the_lock_is_held(hand_made: sa.Engine) -> None:
    """A second starter does not wait: exit code 3, naming the holder."""
    with hand_made.begin() as c:
        coordination.acquire_job_lock(c, "lrm-b/4242/abcd", 1, stale_s=3600)
    result = subprocess.run([sys.executable, "-m", "lrm", "job", "run", "--date", "2026-11-13"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 3, result.stderr
    assert "held by lrm-b/4242/abcd" in result.stderr


def test_job_status_json(hand_made: sa.Engine) -> None:
    """`lrm job status --format json` lists runs, newest first, with the ledger fields."""
    result = runner.invoke(app, ["job", "status", "--format", "json", "--limit", "2"])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.output)
    assert len(runs) == 2
    assert {"business_date", "status", "instance_id", "epoch", "sessions_read",
            "sessions_set_aside", "source_outcome", "error"} <= set(runs[0])
