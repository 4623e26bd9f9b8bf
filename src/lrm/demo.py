"""`lrm demo`: the whole system on one machine with nothing to install.

Embedded PostgreSQL → a simulated contact centre (ICON HA pair with an outage, configuration
gateway, GVP pair with basic auth) → the LRM DB schema → the nightly job for every simulated day →
a sample tenant and system report → two `lrm serve` instances (primary and backup).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from lrm.app import open_database
from lrm.job.runner import NightlyJob
from lrm.reporting import ReportRequest, build_report
from lrm.settings import Settings, load_settings
from lrm.sim.model import SimParams
from lrm.sim.output import SimManifest
from lrm.sim.run import run_simulation
from lrm.sim.servers import SimulatorServers
from lrm.store import migrate, tokens
from lrm.store.embedded import free_tcp_ports

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoOptions:
    folder: Path
    tenants: int = 3
    agents_per_tenant: int = 20
    days: int = 3
    seed: int = 42
    once: bool = False
    instances: bool = True


@dataclass(frozen=True)
class InstanceProcess:
    instance_id: str
    report_port: int
    admin_port: int
    process: subprocess.Popen[bytes]

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def report_url(self) -> str:
        return f"http://127.0.0.1:{self.report_port}"


def run_demo(options: DemoOptions, say: Say, show: Callable[[object], None]) -> int:
    folder = options.folder.resolve()
    say(f"lrm demo in {folder}")
    params = demo_params(options)
    manifest = run_simulation(params, folder, gateway_port=0, gvp_ports=(0, 0),
                              progress=lambda m: say(f"  {m}"))
    with SimulatorServers(folder) as servers:
        urls = servers.urls
        say(f"simulated sources: gateway {urls.gateway}, GVP {urls.gvp_primary} "
            f"(backup {urls.gvp_backup})")
        settings = load_settings(manifest.lrm_toml, environ={})
        database = open_database(settings, require_schema=False)
        try:
            migrate.upgrade(database.engine)
            say("LRM database schema is up to date")
            first, last = _simulated_days(manifest)
            _run_job(settings, database.engine, first, last, say)
            _print_reports(settings, database.engine, first, last, show)
        finally:
            database.engine.dispose()
        if not options.instances:
            return 0
        with _instances(manifest.lrm_toml, say) as instances:
            primary = _wait_for_primary(instances)
            say("")
            say("Two lrm instances are running (one primary, one backup):")
            for instance in instances:
                role = "primary" if instance is primary else "backup "
                say(f"  {instance.instance_id} ({role})  admin {instance.admin_url}/status   "
                    f"reports {instance.report_url}/api/v1/health")
            say(f"Web page: {primary.report_url}/  (sign in with this provider token: "
                f"{_provider_token(settings)} )")
            say(f"Configuration: {manifest.lrm_toml}")
            say(f"Try: uv run lrm report tenant --config {manifest.lrm_toml} "
                f"--from {first} --to {last}")
            say(f"     uv run lrm ha switchover --config {manifest.lrm_toml}")
            if options.once:
                return 0
            say("Press Ctrl-C to stop.")
            _wait_for_interrupt(instances)
    return 0


def _provider_token(settings: Settings) -> str:
    """A fresh provider token for the person running the demo (shown once)."""
    database = open_database(settings)
    try:
        with database.engine.begin() as connection:
            _, secret = tokens.create_token(connection, "provider", [], "lrm demo")
    finally:
        database.engine.dispose()
    return secret


def demo_params(options: DemoOptions) -> SimParams:
    """The simulation the demo builds (tests rebuild it to check the printed numbers)."""
    return SimParams(tenants=options.tenants, agents_per_tenant=options.agents_per_tenant,
                     days=options.days, seed=options.seed, bad_rows=1)


def _simulated_days(manifest: SimManifest) -> tuple[date, date]:
    first = date.fromisoformat(str(manifest.period["start"]))
    last = date.fromisoformat(str(manifest.period["last_day"]))
    return first, last


def _run_job(settings: Settings, engine: object, first: date, last: date, say: Say) -> None:
    import sqlalchemy as sa

    assert isinstance(engine, sa.Engine)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    say(f"running the nightly job for {first} .. {last}")
    started = time.monotonic()
    job = NightlyJob(settings, engine, under_lease=False)
    outcomes = job.run_dates(days, trigger="manual", epoch=0, cancel=threading.Event())
    for outcome in outcomes:
        say(f"  {outcome.business_date}: {outcome.status}"
            + (f" ({outcome.error})" if outcome.error else ""))
    say(f"  job took {time.monotonic() - started:.2f} s for {len(days)} days")


def _print_reports(settings: Settings, engine: object, first: date, last: date,
                   show: Callable[[object], None]) -> None:
    import sqlalchemy as sa

    assert isinstance(engine, sa.Engine)
    with engine.connect() as connection:
        tenant = build_report(connection, ReportRequest(
            kind="tenant", start=first, end=last, tenants=(101,), items=(1, 2, 4, 100, 200)),
            settings.lrm.zone)
        system = build_report(connection, ReportRequest(
            kind="system", start=first, end=last, items=(1, 2, 3, 4, 5, 6, 7)),
            settings.lrm.zone)
    show(tenant)
    show(system)


@contextmanager
def _instances(config: Path, say: Say) -> Iterator[list[InstanceProcess]]:
    started: list[InstanceProcess] = []
    try:
        for instance_id in ("lrm-a", "lrm-b"):
            report_port, admin_port = free_tcp_ports(2)
            env = {**os.environ, "LRM_HTTP__REPORT_PORT": str(report_port),
                   "LRM_HTTP__ADMIN_PORT": str(admin_port)}
            with (config.parent / f"{instance_id}.log").open("wb") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "lrm", "serve", "--config", str(config),
                     "--instance-id", instance_id],
                    env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
            started.append(InstanceProcess(instance_id, report_port, admin_port, process))
            say(f"started {instance_id} (pid {process.pid}, log {config.parent}/"
                f"{instance_id}.log)")
        yield started
    finally:
        for instance in started:
            if instance.process.poll() is None:
                instance.process.send_signal(signal.SIGTERM)
        for instance in started:
            try:
                instance.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                instance.process.kill()


def instance_status(instance: InstanceProcess) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"{instance.admin_url}/status", timeout=2) as response:  # noqa: S310
            data = json.load(response)
            return data if isinstance(data, dict) else None
    except OSError:
        return None


def _wait_for_primary(instances: list[InstanceProcess],
                      timeout_s: float = 60.0) -> InstanceProcess:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for instance in instances:
            if instance.process.poll() is not None:
                raise RuntimeError(f"{instance.instance_id} exited with code "
                                   f"{instance.process.returncode}; see its log")
            status = instance_status(instance)
            if status and status.get("mode") == "primary":
                return instance
        time.sleep(0.2)
    raise RuntimeError(f"no instance became primary within {timeout_s:.0f}s")


def _wait_for_interrupt(instances: list[InstanceProcess]) -> None:
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            if all(i.process.poll() is not None for i in instances):
                return
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        with contextlib.suppress(Exception):
            sys.stderr.write("stopping…\n")
