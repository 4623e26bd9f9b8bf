"""Failover benchmark: how long the backup takes to serve reports after the primary is killed
(SIGKILL) and after a graceful switchover, with real `lrm serve` processes on loopback and the
embedded PostgreSQL.

    uv run python bench/failover.py [--kill-trials 5] [--switchover-trials 10]
                                    [--ttl 10] [--interval 2] [--deadline 6]

Takeover time = from the kill (or the switchover request) to the first successful
`GET /api/v1/health` on the peer's report port. The last line is one JSON object.
Goals (SPEC §2): kill max ≤ lease_ttl_s + renew_interval_s; switchover median ≤ 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from lrm.ha.instance import request_switchover
from lrm.store import migrate
from lrm.store.db import create_engine, ensure_database
from lrm.store.embedded import EmbeddedPostgres, ServerSettings, free_tcp_ports


class Node:
    def __init__(self, folder: Path, config: Path, instance_id: str) -> None:
        self.instance_id = instance_id
        self.report_port, self.admin_port = free_tcp_ports(2)
        env = {**os.environ, "LRM_HTTP__REPORT_PORT": str(self.report_port),
               "LRM_HTTP__ADMIN_PORT": str(self.admin_port)}
        with (folder / f"{instance_id}.log").open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "lrm", "serve", "--config", str(config),
                 "--instance-id", instance_id], env=env, stdout=subprocess.DEVNULL, stderr=log)

    def mode(self) -> str | None:
        try:
            return str(httpx.get(f"http://127.0.0.1:{self.admin_port}/status",
                                 timeout=0.5).json()["mode"])
        except (httpx.HTTPError, ValueError, KeyError):
            return None

    def serves(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.report_port}/api/v1/health",
                             timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)


def wait(condition: object, timeout_s: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if callable(condition) and condition():
            return time.monotonic() - started
        time.sleep(0.01)
    raise SystemExit(f"timed out waiting for {what}")


def pair_ready(nodes: list[Node]) -> tuple[Node, Node]:
    def ready() -> bool:
        modes = sorted(str(n.mode()) for n in nodes)
        return modes == ["backup", "primary"]
    wait(ready, 60, "one primary and one backup")
    primary = next(n for n in nodes if n.mode() == "primary")
    wait(primary.serves, 10, "the primary's report port")
    return primary, next(n for n in nodes if n is not primary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kill-trials", type=int, default=5)
    parser.add_argument("--switchover-trials", type=int, default=10)
    parser.add_argument("--ttl", type=float, default=10)
    parser.add_argument("--interval", type=float, default=2)
    parser.add_argument("--deadline", type=float, default=6)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="lrm-bench-failover-"))
    server = EmbeddedPostgres(folder / "pg", settings=ServerSettings(durable=False)).start()
    nodes: list[Node] = []
    try:
        ensure_database(server.url(), "lrm")
        engine = create_engine(server.url("lrm"))
        migrate.upgrade(engine)
        config = folder / "lrm.toml"
        config.write_text(
            f'[lrm]\ndatabase_url = "{server.url("lrm")}"\n'
            f"[job]\ncatch_up_days = 0\n"
            f"[ha]\nlease_ttl_s = {args.ttl}\nrenew_interval_s = {args.interval}\n"
            f"renew_deadline_s = {args.deadline}\n")
        nodes = [Node(folder, config, "lrm-a"), Node(folder, config, "lrm-b")]

        kills: list[float] = []
        for trial in range(args.kill_trials):
            primary, backup = pair_ready(nodes)
            primary.process.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            wait(backup.serves, args.ttl + args.interval + 30, "the backup after a kill")
            kills.append(time.monotonic() - killed)
            print(f"kill {trial + 1}: {primary.instance_id} killed, {backup.instance_id} "
                  f"serving after {kills[-1]:.2f} s", file=sys.stderr)
            primary.process.wait()
            nodes[nodes.index(primary)] = Node(folder, config, primary.instance_id)

        switchovers: list[float] = []
        for trial in range(args.switchover_trials):
            primary, backup = pair_ready(nodes)
            time.sleep(args.ttl)  # a released instance waits one TTL before competing again
            asked = time.monotonic()
            request_switchover(engine)
            wait(backup.serves, 30, "the peer after a switchover")
            switchovers.append(time.monotonic() - asked)
            print(f"switchover {trial + 1}: {primary.instance_id} → {backup.instance_id} in "
                  f"{switchovers[-1]:.2f} s", file=sys.stderr)
        engine.dispose()
    finally:
        for node in nodes:
            node.stop()
        server.destroy()
        shutil.rmtree(folder, ignore_errors=True)

    def row(name: str, values: list[float]) -> str:
        return (f"{name:<12} {len(values):>6} {min(values):>8.2f} "
                f"{statistics.median(values):>8.2f} {max(values):>8.2f}")

    print(f"lease_ttl_s={args.ttl} renew_interval_s={args.interval} "
          f"renew_deadline_s={args.deadline}; goal: kill max <= {args.ttl + args.interval} s, "
          "switchover median <= 2 s")
    print(f"{'trial':<12} {'n':>6} {'min_s':>8} {'median_s':>8} {'max_s':>8}")
    print(row("SIGKILL", kills))
    print(row("switchover", switchovers))
    print(json.dumps({"kill_median_s": round(statistics.median(kills), 3),
                      "kill_max_s": round(max(kills), 3),
                      "switchover_median_s": round(statistics.median(switchovers), 3),
                      "trials": len(kills) + len(switchovers)}))


if __name__ == "__main__":
    main()
