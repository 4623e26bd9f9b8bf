"""A real report API server (uvicorn on loopback, in a thread) over a small hand-made LRM DB."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
import uvicorn

from lrm.api.app import create_report_app
from lrm.domain.items import build_catalogue
from lrm.domain.report_rows import ReportReference
from lrm.settings import load_settings
from lrm.store import catalog, tokens
from lrm.store import report_queries as q
from lrm.store.db import create_engine, drop_database, ensure_database
from lrm.store.embedded import EmbeddedPostgres, free_tcp_port
from lrm.store.schema import config_group, job_run, provisioned_count, tenant, usage_daily

DAYS = [date(2026, 11, d) for d in (2, 3, 4, 5, 6, 9, 10, 12)]
VALUES = [5, 7, 7, 3, 1, 4, 9, 9]


@dataclass
class Api:
    url: str
    engine: sa.Engine
    provider: str
    tenant_a: str  # tenant 101
    tenant_b: str  # tenant 102


def at(day: date, hh: int, mm: int) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=UTC)


def load_hand_made(engine: sa.Engine) -> None:
    """Tenants 101 Acme and 102 Beta, an agent group of each, eight days of item 1 per tenant
    and for the system, a provisioned count history for 101, and succeeded runs for every day
    but 2026-11-11."""
    with engine.begin() as c:
        catalog.sync_catalogue(c, build_catalogue())
        c.execute(sa.insert(tenant), [{"id": 101, "name": "Acme"}, {"id": 102, "name": "Beta"}])
        c.execute(sa.insert(config_group), [
            {"kind": "agent_group", "id": 7001, "tenant_id": 101, "name": "Sales"},
            {"kind": "agent_group", "id": 7002, "tenant_id": 102, "name": "Support"},
            {"kind": "place_group", "id": 8001, "tenant_id": 101, "name": "Floor 1"}])
        rows = []
        for d, v in zip(DAYS, VALUES, strict=True):
            rows += [
                {"level": "tenant", "subject_id": 101, "item_id": 1, "business_date": d,
                 "peak_value": v, "peak_time": at(d, 10 + v, 30), "run_id": 1},
                {"level": "tenant", "subject_id": 102, "item_id": 1, "business_date": d,
                 "peak_value": v * 2, "peak_time": at(d, 9, 15), "run_id": 1},
                {"level": "system", "subject_id": 0, "item_id": 1, "business_date": d,
                 "peak_value": v * 3, "peak_time": at(d, 9, 15), "run_id": 1},
                {"level": "agent_group", "subject_id": 7001, "item_id": 1, "business_date": d,
                 "peak_value": v, "peak_time": at(d, 10 + v, 30), "run_id": 1},
                {"level": "agent_group", "subject_id": 7002, "item_id": 1, "business_date": d,
                 "peak_value": v, "peak_time": at(d, 9, 0), "run_id": 1},
                {"level": "place_group", "subject_id": 8001, "item_id": 1, "business_date": d,
                 "peak_value": 1, "peak_time": at(d, 8, 0), "run_id": 1}]
        c.execute(sa.insert(usage_daily), rows)
        c.execute(sa.insert(provisioned_count), [
            {"tenant_id": 101, "item_id": 1, "effective_date": date(2026, 11, 1), "quantity": 6},
            {"tenant_id": 101, "item_id": 1, "effective_date": date(2026, 11, 10),
             "quantity": 10}])
        c.execute(sa.insert(job_run), [
            {"business_date": d, "instance_id": "lrm-a", "epoch": 1, "trigger": "schedule",
             "status": "succeeded"} for d in DAYS])


@contextmanager
def running_api(pg_server: EmbeddedPostgres, template: str) -> Iterator[Api]:
    name = f"t_api_{uuid.uuid4().hex[:8]}"
    ensure_database(pg_server.url(), name, template=template)
    engine = create_engine(pg_server.url(name), pool_size=10)
    load_hand_made(engine)
    with engine.begin() as c:
        _, provider = tokens.create_token(c, "provider", [], "tests")
        _, tenant_a = tokens.create_token(c, "tenant", [101], "tests")
        _, tenant_b = tokens.create_token(c, "tenant", [102], "tests")
    settings = load_settings(None, environ={"LRM_LRM__DATABASE_URL": pg_server.url(name)})
    app = create_report_app(settings, engine, mode=lambda: "primary")
    port = free_tcp_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield Api(f"http://127.0.0.1:{port}", engine, provider, tenant_a, tenant_b)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()
        drop_database(pg_server.url(), name)


def count_reference_loads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """From now on, one entry in the returned list per read of the report reference
    (`load_reference`: names, limits and run dates, read once per data version)."""
    loads: list[int] = []
    real_load = q.load_reference

    def counted_load(connection: sa.Connection) -> ReportReference:
        loads.append(1)
        return real_load(connection)

    monkeypatch.setattr(q, "load_reference", counted_load)
    return loads
