"""The composition root: the one place where settings, the database, the sources, the job, the
HA instance and the HTTP apps are wired together."""

from __future__ import annotations

import gc
import os
import sys
from dataclasses import dataclass
from typing import NoReturn

import sqlalchemy as sa
import uvloop

from lrm.api.admin import create_admin_app
from lrm.api.app import create_report_app
from lrm.domain.errors import DatabaseError
from lrm.ha.instance import Instance
from lrm.job.runner import NightlyJob
from lrm.job.scheduler import PrimaryScheduler
from lrm.observability import Metrics
from lrm.settings import Settings
from lrm.store import coordination as co
from lrm.store import migrate
from lrm.store.db import create_engine, resolve_database_url


@dataclass(frozen=True)
class Database:
    url: str
    engine: sa.Engine
    application_name: str  # of every session this process opens


def open_database(settings: Settings, *, require_schema: bool = True,
                  pool_size: int = 5, serving: bool = False) -> Database:
    """The LRM DB (the embedded server when no URL is configured), checked to be at the schema
    revision this version expects. The sessions of `lrm serve` are named apart from a command's
    (`co.serving_application_name`): a new primary ends those its predecessor left open."""
    url = resolve_database_url(settings.lrm.database_url, settings.lrm.data_dir)
    instance_id = settings.lrm.instance_id
    name = (co.serving_application_name(instance_id) if serving
            else co.command_application_name(instance_id))
    engine = create_engine(url, pool_size=pool_size, application_name=name)
    if require_schema:
        try:
            with engine.connect() as connection:
                current = migrate.current_revision(connection)
        except sa.exc.OperationalError as exc:
            engine.dispose()
            raise DatabaseError(f"cannot connect to the LRM database: "
                                f"{str(exc.orig).strip().splitlines()[0]}") from exc
        if current != migrate.head_revision():
            engine.dispose()
            raise DatabaseError(f"the LRM database schema is at {current or 'nothing'}, this "
                                f"lrm needs {migrate.head_revision()}: run `lrm db upgrade`")
    return Database(url, engine, name)


def build_instance(settings: Settings, database: Database) -> Instance:
    metrics = Metrics()
    job = NightlyJob(settings, database.engine, under_lease=True, metrics=metrics)

    def scheduler_factory(instance: Instance) -> PrimaryScheduler:
        return PrimaryScheduler(settings, job, instance.instance_id)

    holder: dict[str, Instance] = {}
    report_app = create_report_app(settings, database.engine,
                                   mode=lambda: holder["instance"].mode,
                                   application_name=database.application_name)
    instance = Instance(settings, database.engine, database.url, report_app=report_app,
                        admin_app_factory=lambda i: create_admin_app(i.status, metrics),
                        scheduler_factory=scheduler_factory, metrics=metrics)
    holder["instance"] = instance
    return instance


def serve(settings: Settings) -> NoReturn:
    """Run one instance until it is stopped, then end the process with its exit code.

    The process ends with os._exit: a thread stuck in a call to an unreachable database (the
    very case that makes an instance step down) would otherwise keep the interpreter from
    exiting, and a supervisor waiting for `exit_on_lease_loss` would wait forever."""
    database = open_database(settings, pool_size=10, serving=True)
    # uvloop (and uvicorn's httptools parser, picked up automatically) roughly halve the
    # per-request cost of the report port.
    loop = uvloop.new_event_loop()
    code = 1
    try:
        instance = build_instance(settings, database)
        # What exists now (modules, the apps) lives as long as the process: leave it out of
        # the collector's full passes. Under a just-opened report port's load the first full
        # pass came within seconds and traversed these ~145,000 objects: a 61 ms pause of
        # every request, at the moment answers were already queued.
        gc.collect()  # what start-up left as garbage is not kept for ever
        gc.freeze()
        code = loop.run_until_complete(instance.run())
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
