"""Real `lrm serve` subprocesses on a real PostgreSQL, with simulated sources.

Lease timings are shortened (TTL 4 s, renew every 0.5 s, deadline 2 s) so the fault tests run
quickly; the maths is the same as at the defaults."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import sqlalchemy as sa

from lrm.sim.model import SimParams
from lrm.sim.run import run_simulation
from lrm.sim.servers import SimulatorServers
from lrm.store.embedded import EmbeddedPostgres, free_tcp_ports

TTL_S = 4.0
RENEW_INTERVAL_S = 0.5
RENEW_DEADLINE_S = 2.0
T = TypeVar("T")


def poll(condition: Callable[[], T | None], timeout_s: float, what: str,
         interval_s: float = 0.05) -> T:
    """Wait until `condition()` returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.1f}s waiting for {what}")
        time.sleep(interval_s)


@dataclass
class Node:
    instance_id: str
    report_port: int
    admin_port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def status(self) -> dict[str, Any] | None:
        try:
            response = httpx.get(f"http://127.0.0.1:{self.admin_port}/status", timeout=1.0)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    def mode(self) -> str | None:
        status = self.status()
        return None if status is None else str(status["mode"])

    def serves_reports(self) -> bool:
        try:
            response = httpx.get(f"http://127.0.0.1:{self.report_port}/api/v1/health",
                                 timeout=1.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def report_port_refuses(self) -> bool:
        """True when a TCP connection to the report port is refused (not an HTTP error)."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(1.0)
            try:
                probe.connect(("127.0.0.1", self.report_port))
            except ConnectionRefusedError:
                return True
            except OSError:
                return False
            return False

    def send(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class Cluster:
    folder: Path
    database_url: str
    engine: sa.Engine
    env: dict[str, str]
    nodes: list[Node] = field(default_factory=list)

    def start(self, instance_id: str, **env: str) -> Node:
        report_port, admin_port = free_tcp_ports(2)
        log_path = self.folder / f"{instance_id}-{uuid.uuid4().hex[:4]}.log"
        full_env = {**os.environ, **self.env, **env,
                    "LRM_HTTP__REPORT_PORT": str(report_port),
                    "LRM_HTTP__ADMIN_PORT": str(admin_port)}
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "lrm", "serve", "--config",
                 str(self.folder / "lrm.toml"), "--instance-id", instance_id],
                env=full_env, stdout=subprocess.DEVNULL, stderr=log)
        node = Node(instance_id, report_port, admin_port, process, log_path)
        self.nodes.append(node)
        poll(node.status, 30, f"{instance_id}'s admin port")
        return node

    def primary(self) -> Node | None:
        found = [n for n in self.nodes if n.process.poll() is None and n.mode() == "primary"]
        return found[0] if len(found) == 1 else None

    def runs(self) -> list[sa.Row[Any]]:
        with self.engine.connect() as c:
            return list(c.execute(sa.text(
                "SELECT id, business_date, instance_id, epoch, status, trigger, error "
                "FROM job_run ORDER BY id")))

    def stop_all(self) -> None:
        for node in self.nodes:
            if node.process.poll() is None:
                node.send(signal.SIGCONT)
                node.send(signal.SIGTERM)
        for node in self.nodes:
            try:
                node.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait()


@pytest.fixture(scope="module")
def sim_folder(pg_server: EmbeddedPostgres,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A simulated contact centre whose last day is yesterday, served for the module."""
    folder = tmp_path_factory.mktemp("ha-sim")
    params = SimParams(tenants=2, agents_per_tenant=6, days=2, seed=11)
    run_simulation(params, folder, pg_admin_url=pg_server.url(),
                   db_prefix=f"idb_{uuid.uuid4().hex[:6]}_", gateway_port=0, gvp_ports=(0, 0))
    with SimulatorServers(folder):
        yield folder


@pytest.fixture
def cluster(sim_folder: Path, lrm_db_url: str, lrm_engine: sa.Engine) -> Iterator[Cluster]:
    env = {"LRM_LRM__DATABASE_URL": lrm_db_url,
           "LRM_HA__LEASE_TTL_S": str(TTL_S),
           "LRM_HA__RENEW_INTERVAL_S": str(RENEW_INTERVAL_S),
           "LRM_HA__RENEW_DEADLINE_S": str(RENEW_DEADLINE_S),
           "LRM_JOB__CATCH_UP_DAYS": "2"}
    result = Cluster(sim_folder, lrm_db_url, lrm_engine, env)
    try:
        yield result
    finally:
        result.stop_all()
