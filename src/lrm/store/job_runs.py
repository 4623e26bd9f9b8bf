"""The job_run ledger: one record per run and business date, with every status change a
compare-and-set on the previous status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from lrm.store.schema import job_run


@dataclass(frozen=True)
class RunRecord:
    id: int
    business_date: date
    instance_id: str
    epoch: int
    trigger: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    sessions_read: int
    sessions_deduplicated: int
    sessions_set_aside: dict[str, int]
    source_outcome: dict[str, Any]
    timings: dict[str, float]
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "business_date": self.business_date.isoformat(),
            "instance_id": self.instance_id, "epoch": self.epoch, "trigger": self.trigger,
            "status": self.status, "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at), "sessions_read": self.sessions_read,
            "sessions_deduplicated": self.sessions_deduplicated,
            "sessions_set_aside": self.sessions_set_aside,
            "source_outcome": self.source_outcome, "timings": self.timings, "error": self.error,
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def start_run(connection: sa.Connection, business_date: date, instance_id: str, epoch: int,
              trigger: str) -> int:
    return int(connection.execute(
        sa.insert(job_run).values(business_date=business_date, instance_id=instance_id,
                                  epoch=epoch, trigger=trigger, status="running")
        .returning(job_run.c.id)).scalar_one())


def finish_run(connection: sa.Connection, run_id: int, status: str, *,
               sessions_read: int = 0, sessions_deduplicated: int = 0,
               sessions_set_aside: dict[str, int] | None = None,
               source_outcome: dict[str, Any] | None = None,
               timings: dict[str, float] | None = None, error: str | None = None) -> bool:
    """Move a running run to its final status. False if it was no longer running."""
    result = connection.execute(
        sa.update(job_run).where(job_run.c.id == run_id, job_run.c.status == "running")
        .values(status=status, finished_at=sa.func.clock_timestamp(),
                sessions_read=sessions_read, sessions_deduplicated=sessions_deduplicated,
                sessions_set_aside=sessions_set_aside or {},
                source_outcome=source_outcome or {}, timings=timings or {}, error=error))
    return result.rowcount == 1


def abandon_runs(connection: sa.Connection, run_ids: list[int], reason: str) -> None:
    """Runs whose process died: they can no longer finish, record why."""
    if run_ids:
        connection.execute(
            sa.update(job_run).where(job_run.c.id.in_(run_ids), job_run.c.status == "running")
            .values(status="failed", finished_at=sa.func.clock_timestamp(), error=reason))


def recent_runs(connection: sa.Connection, limit: int = 20) -> list[RunRecord]:
    rows = connection.execute(sa.select(job_run).order_by(job_run.c.started_at.desc(),
                                                          job_run.c.id.desc()).limit(limit))
    return [RunRecord(**row._asdict()) for row in rows]


def succeeded_dates(connection: sa.Connection, start: date | None = None,
                    end: date | None = None) -> set[date]:
    """Business dates with a succeeded run (in [start, end] when given)."""
    query = sa.select(job_run.c.business_date).distinct().where(job_run.c.status == "succeeded")
    if start is not None:
        query = query.where(job_run.c.business_date >= start)
    if end is not None:
        query = query.where(job_run.c.business_date <= end)
    return set(connection.execute(query).scalars())


def last_run(connection: sa.Connection) -> RunRecord | None:
    runs = recent_runs(connection, 1)
    return runs[0] if runs else None


def running_runs(connection: sa.Connection) -> list[RunRecord]:
    rows = connection.execute(sa.select(job_run).where(job_run.c.status == "running"))
    return [RunRecord(**row._asdict()) for row in rows]
