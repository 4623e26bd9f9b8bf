"""Throughput of the real nightly job at hosted-provider scale, against its I/O floor and an
exact SQL baseline (issue 8).

    uv run python bench/job_throughput.py [--sessions 1000000] [--tenants 200] [--seed 7]
                                         [--steady-runs 1] [--workdir DIR] [--profile DIR]
    uv run python bench/job_throughput.py --backfill-days 30 [--sessions …] [--workdir DIR]

What it does, in one run:

1. Simulates (``lrm.sim``) a provider-scale business day: TENANTS tenants with enough agents
   that about SESSIONS unique login sessions overlap the measured day (2026-11-24,
   Europe/Berlin, the second of two simulated days so that night shifts carry in), recorded
   in 2 ICON HA pairs (so about twice as many IDB rows, with an outage in one copy of each
   pair), the simulator's open, zero-length, re-login and stuck sessions, agent and place
   groups, configuration changes during the day. All built-in items and a stored bundle set of
   20 bundles. Everything lives on one embedded PostgreSQL server in a temporary folder,
   started with ``durable=False`` (fsync off: we measure lrm, not the disk).
2. Serves the configuration gateway and the GVP pair (``SimulatorServers``) in a child process,
   as separate systems are in production.
3. Runs ``NightlyJob.run_dates`` for the day in a fresh child process — *cold* (no
   configuration sample of the day yet: the job back-fills the 144 ten-minute marks from the
   gateway) and then *steady* (the samples are there, as the primary's sampler has taken them
   in production) — and reports wall time, rows read per second, the child's peak RSS and the
   stage timings recorded in the job_run row.
4. Measures the I/O floor: ``COPY … TO STDOUT`` of the same IDB rows (all IDBs in parallel,
   as the job reads them) plus ``COPY … FROM STDIN`` of the job's result rows (usage_minute
   and usage_daily, copied out into memory first) into empty copies of the tables.
5. Measures an exact SQL baseline: the per-minute peaks of concurrent_seat (item 1) for every
   tenant, computed by PostgreSQL with a window-function sweep (research/anchors.md §4.2) over
   each (tenant, seat)'s merged intervals, on the simulator's *true* sessions (loaded into a
   table of the LRM DB with their tenant), and checks that it equals lrm's stored usage_minute
   values for item 1 — an end-to-end check of de-duplication, resolution and counting.

The last line printed is one JSON object:
``{"sessions", "job_s", "io_floor_s", "ratio_to_io_floor", "sql_sweep_s", "speedup_vs_sql",
"peak_rss_mb"}`` where job_s is the (best) steady-state run.

With ``--backfill-days N`` it measures a back-fill instead: N + 1 days are simulated, the
primary's sampler covers the first one, and ``lrm job run --date D --to D+N-1`` (the CLI, in a
child process, nothing sampled for those days: the job back-fills the configuration from the
gateway) computes the last N days. It prints each date's run and, last, ``{"days",
"sessions_per_day", "backfill_s", "per_day_s", "peak_rss_mb"}``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from lrm.domain._arrays import dense_rank
from lrm.domain.bundles import Bundle, BundleSet
from lrm.domain.calendar import business_day
from lrm.domain.peaks import level_minute_peaks
from lrm.sources.idb import SESSION_WINDOW
from lrm.store import catalog, migrate
from lrm.store.copy_out import copy_out
from lrm.store.db import create_engine, drop_database, ensure_database
from lrm.store.embedded import EmbeddedPostgres, ServerSettings

TODAY = date(2026, 11, 25)
DAY = date(2026, 11, 24)            # the measured business day: the last simulated day
TIMEZONE = "Europe/Berlin"
SIM_DAYS = 2
ICON_PAIRS = 2
# Unique sessions overlapping a simulated weekday per agent (measured on the simulator:
# 1,012,980 sessions for 200 × 2,460 agents).
SESSIONS_PER_AGENT = 2.06
LRM_DB = "lrm_bench"
SEAT_ITEMS = (1, 2, 3, 4, 5, 6, 7)
IDB_COLUMNS = ("loginsessionid, agentid, loginid, placeid, primarydeviceid, created_ts, "
               "terminated_ts, providertag")


# =============================================================================== child phases
def _rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux: KiB


class _MemoryWatch:
    """Samples this process's RSS every 20 ms and remembers in which stage it peaked."""

    def __init__(self) -> None:
        self.current = "start"
        self.peak = 0
        self.peak_stage = "start"
        self.by_stage: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stage(self, name: str) -> None:
        self.current = name

    def _run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.wait(0.02):
            rss = int(Path("/proc/self/statm").read_text().split()[1]) * page
            self.by_stage[self.current] = max(self.by_stage.get(self.current, 0), rss)
            if rss > self.peak:
                self.peak, self.peak_stage = rss, self.current

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _machine_cpu_s() -> float:
    """CPU seconds used by every process on the machine (user + system, from /proc/stat):
    the job, the PostgreSQL servers and the simulators — and anyone else's work."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system = (int(v) for v in fields[:3])
    return (user + nice + system) / os.sysconf("SC_CLK_TCK")


def phase_simulate(spec: dict[str, Any]) -> dict[str, Any]:
    """Generate and load the simulation; write the true intervals of the day for the SQL
    baseline. (A child process: the generator's memory is not the job's.)"""
    from lrm.sim.model import SimParams, generate
    from lrm.sim.run import run_simulation

    params = SimParams(**spec["params"], start=None)
    started = time.perf_counter()
    manifest = run_simulation(params, Path(spec["sim_dir"]), today=TODAY,
                              pg_admin_url=spec["admin_url"], gateway_port=0, gvp_ports=(0, 0),
                              progress=lambda m: print(m, file=sys.stderr, flush=True))
    simulate_s = time.perf_counter() - started
    summary = {"idb_rows": {i.name: i.rows for i in manifest.idbs},
               "persons": manifest.counts["persons"], "places": manifest.counts["places"],
               "dns": manifest.counts["dns"], "agent_groups": manifest.counts["agent_groups"],
               "place_groups": manifest.counts["place_groups"],
               "config_changes": manifest.counts["config_changes"],
               "simulate_s": round(simulate_s, 1)}
    if spec["truth_file"] is None:
        return {**summary, "rss_mb": round(_rss_mb())}

    truth = generate(params, today=TODAY).sessions
    day = business_day(DAY, TIMEZONE)
    created, terminated = truth.created_ts, truth.terminated_ts
    is_open = terminated < 0
    overlaps = (created < day.end_ts) & (is_open | (terminated >= day.start_ts))
    s = np.maximum(created, day.start_ts) - day.start_ts
    e = np.where(is_open, day.end_ts, np.minimum(terminated, day.end_ts)) - day.start_ts
    keep = overlaps & (s < e)
    seat = np.where(truth.place > 0, (1 << 40) | truth.place.astype(np.int64),
                    np.where(truth.dn > 0, (2 << 40) | truth.dn.astype(np.int64),
                             (3 << 40) | truth.agent.astype(np.int64)))
    np.savez(spec["truth_file"], tenant=truth.tenant[keep].astype(np.int64), seat=seat[keep],
             s=s[keep].astype(np.int64), e=e[keep].astype(np.int64))
    return {"sessions_total": len(truth), "sessions_in_day": int(overlaps.sum()),
            "sessions_with_time_in_day": int(keep.sum()),
            "open_in_day": int((overlaps & is_open).sum()),
            "zero_length_in_day": int((overlaps & (created == terminated)).sum()),
            **summary, "rss_mb": round(_rss_mb())}


class _TimelineSource:
    """The configuration gateway's answers, straight from the simulation's timeline."""

    def __init__(self, sim_dir: Path) -> None:
        from lrm.sim.output import read_output

        self.timeline = read_output(sim_dir).timeline
        self.at = 0

    def fetch(self, as_of: Any = None) -> dict[str, Any]:
        document = self.timeline.document_at(self.at)
        self.timeline._cache.clear()  # keep one document in memory, not all
        return document

    def fetch_if_changed(self, as_of: Any = None) -> dict[str, Any]:
        return self.fetch(as_of)  # asked only at marks where the timeline changed

    def forget(self) -> None:
        """Nothing is remembered."""

    def close(self) -> None:
        """Nothing to close."""


def phase_sample(spec: dict[str, Any]) -> dict[str, Any]:
    """What the primary's 10-minute sampler stores over [start, end), through the production
    sampler (`Pipeline.sample_config`), with the documents taken from the simulation's timeline
    instead of 144 HTTP fetches a day. Only the marks where the configuration changed are
    sampled: at the others the sampler stores nothing."""
    from datetime import UTC, datetime

    from lrm.domain.schedule import sample_marks
    from lrm.job.pipeline import Pipeline
    from lrm.settings import load_settings

    settings = load_settings(Path(spec["toml"]), environ=spec["env"])
    assert settings.lrm.database_url is not None
    engine = create_engine(settings.lrm.database_url)
    pipeline = Pipeline(settings, engine)
    source = _TimelineSource(Path(spec["sim_dir"]))
    pipeline._sampler.source = source  # type: ignore[assignment]
    marks = sample_marks(datetime.fromtimestamp(spec["start"], UTC),
                         datetime.fromtimestamp(spec["end"], UTC))
    started = time.perf_counter()
    stored = 0
    previous = -1
    for mark in marks:
        applied = source.timeline.applied_count(int(mark.timestamp()))
        if applied == previous:
            continue
        previous = applied
        source.at = int(mark.timestamp())
        stored += bool(pipeline.sample_config(mark, fence=lambda _connection: None))
    engine.dispose()
    return {"marks": len(marks), "stored": stored, "seconds": time.perf_counter() - started}


def phase_serve(spec: dict[str, Any]) -> None:
    """Serve the gateway and GVP pair until stdin closes; print their URLs first."""
    from lrm.sim.servers import SimulatorServers

    with SimulatorServers(Path(spec["sim_dir"]), gateway_port=0, gvp_ports=(0, 0)) as servers:
        urls = servers.urls
        print(json.dumps({"gateway": urls.gateway, "gvp_primary": urls.gvp_primary,
                          "gvp_backup": urls.gvp_backup}), flush=True)
        sys.stdin.read()


def phase_job(spec: dict[str, Any]) -> dict[str, Any]:
    """One `NightlyJob.run_dates([DAY])`, the way `lrm job run` does it."""
    from lrm.allocator import limit_malloc_arenas
    from lrm.job.runner import NightlyJob
    from lrm.settings import load_settings

    limit_malloc_arenas()  # as the `lrm` entry point does

    settings = load_settings(Path(spec["toml"]), environ=spec["env"])
    assert settings.lrm.database_url is not None
    engine = create_engine(settings.lrm.database_url)
    memory = _MemoryWatch()
    job = NightlyJob(settings, engine, under_lease=False,
                     progress=lambda stage, _done: memory.stage(stage))
    rss_before = _rss_mb()
    cpu_before = _cpu_s()
    machine_before = _machine_cpu_s()
    started = time.perf_counter()
    outcomes = job.run_dates([DAY], trigger="manual", epoch=0, cancel=threading.Event())
    wall_s = time.perf_counter() - started
    machine_cpu_s = _machine_cpu_s() - machine_before
    memory.stop()
    engine.dispose()
    return {"wall_s": wall_s, "statuses": [o.status for o in outcomes],
            "cpu_s": _cpu_s() - cpu_before, "machine_cpu_s": machine_cpu_s,
            "peak_stage": memory.peak_stage,
            "rss_by_stage_mb": {k: round(v / 2**20) for k, v in memory.by_stage.items()},
            "errors": [o.error for o in outcomes if o.error], "run_id": outcomes[0].run_id,
            "rss_mb": _rss_mb(), "rss_before_mb": rss_before,
            "children_rss_mb": _rss_mb(resource.RUSAGE_CHILDREN)}


def phase_backfill(spec: dict[str, Any]) -> dict[str, Any]:
    """`lrm job run --date FIRST --to LAST` as an operator runs it; its wall time and peak RSS."""
    lrm = Path(sys.executable).with_name("lrm")
    started = time.perf_counter()
    done = subprocess.run([str(lrm), "job", "run", "--config", spec["toml"], "--date",
                           spec["first"], "--to", spec["last"]],
                          env={**os.environ, **spec["env"]}, check=False,
                          stdout=sys.stderr, stderr=sys.stderr)
    return {"wall_s": time.perf_counter() - started, "exit": done.returncode,
            "rss_mb": _rss_mb(resource.RUSAGE_CHILDREN)}


PHASES = {"simulate": phase_simulate, "job": phase_job, "sample": phase_sample,
          "backfill": phase_backfill}


def run_child(phase: str, spec: dict[str, Any], log: Path,
              wrapper: list[str] | None = None) -> dict[str, Any]:
    argv = [*(wrapper or []), sys.executable, __file__, "--phase", phase, json.dumps(spec)]
    with log.open("ab") as err:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=err, check=False)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise SystemExit(f"phase {phase} failed (exit {done.returncode}); log {log}:\n{tail}")
    # The child's result is its last JSON line (a profiler may print after it).
    lines = [ln for ln in done.stdout.decode().splitlines() if ln.startswith("{")]
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# =============================================================================== set-up
def bundle_set(seed: int) -> BundleSet:
    """20 bundles over the built-in seat items: 1–3 included, 0–1 excluded."""
    rng = np.random.default_rng(seed)
    bundles = []
    for b in range(20):
        include = rng.choice(SEAT_ITEMS, size=int(rng.integers(1, 4)), replace=False)
        rest = [i for i in SEAT_ITEMS if i not in include]
        exclude = rng.choice(rest, size=int(rng.integers(0, 2)), replace=False)
        bundles.append(Bundle(10_001 + b, f"Bundle {b + 1}", "",
                              tuple(sorted(int(i) for i in include)),
                              tuple(sorted(int(i) for i in exclude))))
    return BundleSet(10_000, "Bench bundles", "", date(2026, 1, 1), date(2026, 1, 1),
                     date(2026, 12, 31), tuple(bundles))


def prepare_lrm_db(server: EmbeddedPostgres, seed: int) -> str:
    drop_database(server.url(), LRM_DB)
    ensure_database(server.url(), LRM_DB)
    url = server.url(LRM_DB)
    engine = create_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as connection:
        catalog.store_bundle_set(connection, bundle_set(seed), "<lrm_bundle_set/>")
    engine.dispose()
    return url


class Servers:
    """The simulators in a child process (stdin closed = stop)."""

    def __init__(self, sim_dir: Path, log: Path) -> None:
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--phase", "serve", json.dumps({"sim_dir": str(sim_dir)})],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the simulators did not start; see {log}")
        self.urls: dict[str, str] = json.loads(line)

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def job_env(sim_dir: Path, server: EmbeddedPostgres, lrm_url: str,
            urls: dict[str, str]) -> dict[str, str]:
    """Settings overrides: this run's LRM DB, server port and simulator ports."""
    manifest = json.loads((sim_dir / "manifest.json").read_text())
    env = {"LRM_LRM__DATABASE_URL": lrm_url, "LRM_CONFIG_SOURCE__URL": urls["gateway"],
           "LRM_GVP__PRIMARY_URL": urls["gvp_primary"],
           "LRM_GVP__BACKUP_URL": urls["gvp_backup"]}
    for i, idb in enumerate(manifest["idbs"]):
        env[f"LRM_ICON__{i}__URL"] = server.url(idb["database"])
    return env


# =============================================================================== job runs
def job_row(lrm_url: str, run_id: int) -> dict[str, Any]:
    with psycopg.connect(lrm_url) as connection:
        row = connection.execute(
            "SELECT status, sessions_read, sessions_deduplicated, sessions_set_aside, "
            "source_outcome, timings FROM job_run WHERE id = %s", (run_id,)).fetchone()
    assert row is not None
    keys = ("status", "sessions_read", "sessions_deduplicated", "set_aside", "source_outcome",
            "timings")
    return dict(zip(keys, row, strict=True))


def run_job(label: str, spec: dict[str, Any], log: Path, lrm_url: str,
            profile: Path | None) -> dict[str, Any]:
    wrapper = None
    if profile is not None:
        # py-spy samples every thread (the IDB reads and the count levels run in threads);
        # `uv run --with py-spy …` puts it on PATH. Collapsed stacks, one file per run.
        py_spy = shutil.which("py-spy")
        if py_spy is None:
            raise SystemExit("--profile needs py-spy on PATH: uv run --with py-spy …")
        profile.mkdir(parents=True, exist_ok=True)
        wrapper = [py_spy, "record", "--threads", "--idle", "--rate", "200", "--format", "raw",
                   "--output", str(profile / f"{label}.txt"), "--"]
    result = run_child("job", {**spec, "label": label}, log, wrapper)
    if result["statuses"] != ["succeeded"]:
        raise SystemExit(f"{label} run: {result['statuses']} {result['errors']}")
    result["row"] = job_row(lrm_url, result["run_id"])
    result["label"] = label
    return result


# =============================================================================== I/O floor
def io_floor(server: EmbeddedPostgres, sim_dir: Path, lrm_url: str) -> dict[str, Any]:
    """COPY the IDB rows out (in parallel, like the job) and the job's result rows in."""
    day = business_day(DAY, TIMEZONE)
    manifest = json.loads((sim_dir / "manifest.json").read_text())
    # The reader's own window: rows overlapping the day, plus the bad rows it accounts for.
    where = SESSION_WINDOW.format(start=day.start_ts, end=day.end_ts,
                                  future=int(time.time()) + 86_400)

    def read(database: str) -> tuple[int, int]:
        # lrm's own COPY reader (the job's): the floor is the fastest way lrm knows to move
        # these rows, not the driver's per-row iterator, which costs twice the client CPU.
        with psycopg.connect(server.url(database)) as connection:
            payload = bytearray()
            rows = copy_out(connection, (f"COPY (SELECT {IDB_COLUMNS} FROM g_login_session "
                                         f"{where}) TO STDOUT (FORMAT binary)").encode(), payload)
        return rows, len(payload)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(manifest["idbs"])) as pool:
        reads = list(pool.map(read, [i["database"] for i in manifest["idbs"]]))
    read_s = time.perf_counter() - started

    tables = ("usage_minute", "usage_daily")
    payload: dict[str, bytes] = {}
    with psycopg.connect(lrm_url) as connection, connection.cursor() as cur:
        for table in tables:
            chunks = []
            with cur.copy(f"COPY (SELECT * FROM {table} WHERE business_date = %s) "
                          "TO STDOUT (FORMAT binary)", (DAY,)) as copy:
                for chunk in copy:
                    chunks.append(bytes(chunk))
            payload[table] = b"".join(chunks)
            cur.execute(f"DROP TABLE IF EXISTS bench_{table}")
            cur.execute(f"CREATE TABLE bench_{table} (LIKE {table} INCLUDING ALL)")
        connection.commit()
        result_rows = {t: int(cur.execute(f"SELECT count(*) FROM {t} WHERE business_date = %s",
                                           (DAY,)).fetchone()[0]) for t in tables}
    started = time.perf_counter()
    with psycopg.connect(lrm_url) as connection, connection.cursor() as cur:
        for table in tables:
            with cur.copy(f"COPY bench_{table} FROM STDIN (FORMAT binary)") as copy:
                data = memoryview(payload[table])
                for lo in range(0, len(data), 1 << 20):
                    copy.write(data[lo:lo + (1 << 20)])
        connection.commit()
    write_s = time.perf_counter() - started
    with psycopg.connect(lrm_url) as connection:
        for table in tables:
            connection.execute(f"DROP TABLE bench_{table}")
    return {"read_s": read_s, "write_s": write_s, "total_s": read_s + write_s,
            "idb_rows": sum(r for r, _ in reads), "idb_bytes": sum(b for _, b in reads),
            "result_rows": result_rows,
            "result_bytes": {t: len(b) for t, b in payload.items()}}


# =============================================================================== SQL baseline
# Per (tenant, seat): merge overlapping or touching intervals (a seat counts once however many
# sessions it carries); then the sweep of research/anchors.md §4.2 per tenant, with a zero-delta
# row at every minute boundary of every tenant (carry-in) and deltas summed per instant (ties).
SQL_SWEEP = """
WITH ordered AS (
  SELECT tenant, seat, s, e,
         max(e) OVER (PARTITION BY tenant, seat ORDER BY s, e
                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach
  FROM bench_iv),
islands AS (
  SELECT tenant, seat, s, e,
         count(*) FILTER (WHERE reach IS NULL OR reach < s)
           OVER (PARTITION BY tenant, seat ORDER BY s, e ROWS UNBOUNDED PRECEDING) AS island
  FROM ordered),
merged AS (SELECT tenant, min(s) AS s, max(e) AS e FROM islands GROUP BY tenant, seat, island),
ev AS (SELECT tenant, s AS t, 1 AS d FROM merged
       UNION ALL SELECT tenant, e, -1 FROM merged
       UNION ALL SELECT tenant, g * 60, 0 FROM bench_tenant, generate_series(0, %(minutes)s - 1) g),
agg AS (SELECT tenant, t, sum(d) AS d FROM ev GROUP BY tenant, t),
lvl AS (SELECT tenant, t, sum(d) OVER (PARTITION BY tenant ORDER BY t ROWS UNBOUNDED PRECEDING)
               AS c FROM agg)
SELECT tenant, t / 60 AS minute, max(c)::int AS peak
FROM lvl WHERE t < %(seconds)s GROUP BY tenant, t / 60
"""


def sql_baseline(lrm_url: str, truth_file: Path) -> dict[str, Any]:
    day = business_day(DAY, TIMEZONE)
    with np.load(truth_file) as stored_truth:  # read once: each [] of an NpzFile reads the file
        truth = {name: stored_truth[name] for name in stored_truth.files}
    with psycopg.connect(lrm_url) as connection, connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_iv; DROP TABLE IF EXISTS bench_tenant")
        cur.execute("CREATE TABLE bench_iv (tenant bigint, seat bigint, s int, e int)")
        cur.execute("CREATE TABLE bench_tenant (tenant bigint PRIMARY KEY)")
        cur.execute("INSERT INTO bench_tenant SELECT DISTINCT subject_id FROM usage_minute "
                    "WHERE business_date = %s AND level = 'tenant'", (DAY,))
        started = time.perf_counter()
        with cur.copy("COPY bench_iv FROM STDIN") as copy:
            for row in zip(truth["tenant"].tolist(), truth["seat"].tolist(),
                           truth["s"].tolist(), truth["e"].tolist(), strict=True):
                copy.write_row(row)
        cur.execute("ANALYZE bench_iv")
        connection.commit()
        load_s = time.perf_counter() - started
        # Fair to PostgreSQL: the settings of research/anchors.md §4.2.
        cur.execute("SET work_mem = '512MB'")
        started = time.perf_counter()
        rows = cur.execute(SQL_SWEEP, {"minutes": day.minutes,
                                       "seconds": day.seconds}).fetchall()
        sweep_s = time.perf_counter() - started
        stored = cur.execute(
            "SELECT subject_id, peaks FROM usage_minute WHERE business_date = %s "
            "AND level = 'tenant' AND item_id = 1", (DAY,)).fetchall()
        cur.execute("DROP TABLE bench_iv; DROP TABLE bench_tenant")
        connection.commit()
    tenants = sorted(t for t, _ in stored)
    # lrm's counting core on the same intervals, for the same output (item 1 = any session:
    # every row has the item's bit), best of three; like the SQL's GROUP BY, it ranks the
    # tenant ids itself.
    lrm_s = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        core_tenants, subject = dense_rank(truth["tenant"])
        by_rank = level_minute_peaks(subject, truth["seat"], truth["s"], truth["e"],
                                     np.ones(truth["s"].size, np.int64), core_tenants.size,
                                     [(1, 0)], horizon=day.seconds)[:, 0, :]
        lrm_s = min(lrm_s, time.perf_counter() - started)
    index = {t: k for k, t in enumerate(tenants)}
    core = np.zeros((len(tenants), day.minutes), dtype=np.int64)
    core_unknown = 0  # cells of tenants the core counted that the stored rows do not have
    for rank, tenant in enumerate(core_tenants.tolist()):
        if tenant in index:
            core[index[tenant]] = by_rank[rank]
        else:
            core_unknown += int(np.count_nonzero(by_rank[rank]))
    sql = np.zeros((len(tenants), day.minutes), dtype=np.int64)
    unknown = 0
    for tenant, minute, peak in rows:
        if tenant in index:
            sql[index[tenant], minute] = peak
        else:
            unknown += 1
    lrm = np.array([peaks for _, peaks in sorted(stored)], dtype=np.int64)
    mismatched = int(np.count_nonzero(sql != lrm)) + unknown
    return {"load_s": load_s, "sweep_s": sweep_s, "lrm_core_s": lrm_s,
            "intervals": int(truth["s"].size), "cells": int(sql.size),
            "mismatched_cells": mismatched, "core_mismatched_cells": int(np.count_nonzero(
                core != sql)) + core_unknown, "max_peak": int(lrm.max()) if lrm.size else 0}


# =============================================================================== report
def print_report(sim: dict[str, Any], runs: list[dict[str, Any]], floor: dict[str, Any],
                 sql: dict[str, Any], summary: dict[str, Any]) -> None:
    print(f"\nbusiness day {DAY} ({TIMEZONE}); unique sessions overlapping it: "
          f"{sim['sessions_in_day']:,} (open {sim['open_in_day']:,}, zero-length "
          f"{sim['zero_length_in_day']:,}); IDB rows {sum(sim['idb_rows'].values()):,} in "
          f"{len(sim['idb_rows'])} IDBs; {sim['persons']:,} persons, {sim['places']:,} places, "
          f"{sim['dns']:,} DNs, {sim['agent_groups']} agent groups, {sim['place_groups']} place "
          f"groups")
    stages = ("config", "read", "dedup", "count", "gvp", "write", "purge")
    print("\nStage timings are each stage's own duration from the job_run row; config, read and "
          "gvp overlap, and so do count and write.")
    print(f"\n{'run':<10}{'wall s':>8}{'rows/s':>11}{'CPU s':>7}{'RSS MB':>8} {'peak in':<8}"
          + "".join(f"{s:>8}" for s in stages))
    for run in runs:
        row = run["row"]
        rate = row["sessions_read"] / run["wall_s"]
        print(f"{run['label']:<10}{run['wall_s']:>8.2f}{rate:>11,.0f}{run['cpu_s']:>7.1f}"
              f"{run['rss_mb']:>8.0f} {run['peak_stage']:<8}"
              + "".join(f"{row['timings'].get(s, 0):>8.2f}" for s in stages))
    print(f"\nI/O floor: read {floor['idb_rows']:,} IDB rows ({floor['idb_bytes'] / 2**20:.0f} "
          f"MiB) in {floor['read_s']:.2f} s + write {floor['result_rows']} "
          f"({sum(floor['result_bytes'].values()) / 2**20:.0f} MiB) in {floor['write_s']:.2f} s "
          f"= {floor['total_s']:.2f} s")
    print(f"SQL sweep (item 1, every tenant, {sql['intervals']:,} intervals): "
          f"{sql['sweep_s']:.2f} s (+ {sql['load_s']:.2f} s to load the table); lrm's core on "
          f"the same intervals {sql['lrm_core_s']:.3f} s; {sql['cells']:,} tenant-minutes "
          f"compared, max peak {sql['max_peak']}")
    if sql["mismatched_cells"] or sql["core_mismatched_cells"]:
        print(f"!!! MISMATCH: {sql['mismatched_cells']} tenant-minutes differ between the SQL "
              f"sweep and lrm's usage_minute, {sql['core_mismatched_cells']} between the SQL "
              "sweep and lrm's core !!!")
    else:
        print("SQL sweep, lrm's stored usage_minute and lrm's core agree on every tenant-minute "
              "of item 1.")
    steady = min(runs[1:] or runs, key=lambda r: r["wall_s"])
    series = floor["result_rows"]["usage_minute"]
    print(f"Job level: that sweep is 1 of the {series:,} per-minute series the job stores; at "
          f"{sql['sweep_s']:.2f} s each, SQL would need about {sql['sweep_s'] * series:,.0f} s "
          f"for all of them, against the job's {steady['wall_s']:.1f} s.")
    print(json.dumps(summary))


def backfill(spec: dict[str, Any], log: Path, lrm_url: str, first: date, days: int) -> None:
    last = first + timedelta(days=days - 1)
    print(f"lrm job run --date {first} --to {last} ...", flush=True)
    result = run_child("backfill", {**spec, "first": str(first), "last": str(last)}, log)
    with psycopg.connect(lrm_url) as connection:
        rows = connection.execute(
            "SELECT business_date, status, sessions_read, sessions_deduplicated, "
            "extract(epoch FROM finished_at - started_at), timings FROM job_run "
            "WHERE business_date BETWEEN %s AND %s ORDER BY started_at",
            (first, last)).fetchall()
    print(f"\n{'date':<12}{'status':<11}{'unique sessions':>16}{'run s':>8}{'config s':>10}")
    for business_date, status, read, dedup, seconds, timings in rows:
        print(f"{business_date!s:<12}{status:<11}{read - dedup:>16,}{seconds:>8.1f}"
              f"{timings.get('config', 0):>10.1f}")
    unique = [read - dedup for _, _, read, dedup, _, _ in rows]
    print(f"\nexit {result['exit']}; {days} dates in {result['wall_s']:.0f} s "
          f"({result['wall_s'] / days:.1f} s a date), peak RSS {result['rss_mb']:.0f} MB")
    print(json.dumps({"days": days, "sessions_per_day": round(sum(unique) / max(len(unique), 1)),
                      "backfill_s": round(result["wall_s"], 1),
                      "per_day_s": round(result["wall_s"] / days, 2),
                      "peak_rss_mb": round(result["rss_mb"])}))
    if result["exit"] != 0 or len(rows) != days or any(r[1] != "succeeded" for r in rows):
        sys.exit(1)


# =============================================================================== main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1_000_000,
                        help="about this many unique sessions overlapping the measured day")
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--steady-runs", type=int, default=1,
                        help="steady-state runs after the cold one (the best is reported)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the server and simulation here and reuse them next time "
                             "(default: a temporary folder, deleted at the end)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="profile each job run with py-spy into this folder")
    parser.add_argument("--no-cold", action="store_true",
                        help="skip the cold run (the sampler's samples cover the measured day)")
    parser.add_argument("--keep-lrm-db", action="store_true",
                        help="(development) reuse the LRM DB of the previous run in --workdir "
                             "and skip the cold run")
    parser.add_argument("--no-baselines", action="store_true",
                        help="(development) skip the I/O floor and the SQL baseline")
    parser.add_argument("--backfill-days", type=int, default=None,
                        help="measure `lrm job run` over this many unsampled dates instead")
    parser.add_argument("--phase", default=None, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.phase is not None:
        spec = json.loads(rest[0])
        if args.phase == "serve":
            phase_serve(spec)
        else:
            print(json.dumps(PHASES[args.phase](spec)))
        return

    agents = max(5, round(args.sessions / (args.tenants * SESSIONS_PER_AGENT)))
    sim_days = SIM_DAYS if args.backfill_days is None else args.backfill_days + 1
    params = {"tenants": args.tenants, "agents_per_tenant": agents, "days": sim_days,
              "seed": args.seed, "timezone": TIMEZONE, "icon_pairs": ICON_PAIRS}
    temporary = args.workdir is None
    workdir = (Path(tempfile.mkdtemp(prefix="lrm-bench-")) if temporary
               else args.workdir.resolve())
    workdir.mkdir(parents=True, exist_ok=True)
    sim_dir, truth_file, log = workdir / "sim", workdir / "truth.npz", workdir / "bench.log"
    print(f"work folder {workdir} (log: {log}); {args.tenants} tenants × {agents} agents, "
          f"{sim_days} days, {ICON_PAIRS} ICON HA pairs, seed {args.seed}", flush=True)
    server = EmbeddedPostgres(workdir / "pg",
                              settings=ServerSettings(durable=False, max_connections=100))
    servers: Servers | None = None
    try:
        server.start()
        stamp = workdir / "simulated.json"
        sim: dict[str, Any] | None = None
        if stamp.exists():
            saved = json.loads(stamp.read_text())
            sim = saved["sim"] if saved["params"] == params else None
        if sim is None:
            shutil.rmtree(sim_dir, ignore_errors=True)
            print("simulating and loading the IDBs ...", flush=True)
            sim = run_child("simulate", {"params": params, "sim_dir": str(sim_dir),
                                         "admin_url": server.url(),
                                         "truth_file": None if args.backfill_days
                                         else str(truth_file)}, log)
            stamp.write_text(json.dumps({"params": params, "sim": sim}))
        in_day = f"{sim['sessions_in_day']:,}" if "sessions_in_day" in sim else "?"
        print(f"simulated {in_day} sessions in the measured day, "
              f"{sum(sim['idb_rows'].values()):,} IDB rows", flush=True)
        reuse = args.keep_lrm_db and not temporary
        lrm_url = server.url(LRM_DB) if reuse else prepare_lrm_db(server, args.seed)
        servers = Servers(sim_dir, log)
        spec = {"toml": str(sim_dir / "lrm.toml"), "sim_dir": str(sim_dir),
                "env": job_env(sim_dir, server, lrm_url, servers.urls)}
        measured_from = DAY - timedelta(days=(args.backfill_days or 1) - 1)
        if not reuse:
            # What the primary's sampler stored before the measured day(s) (the job reads the
            # samples back to the earliest login of the day's sessions) — and on the day itself
            # with --no-cold; otherwise the cold run back-fills the day from the gateway.
            first = business_day(DAY - timedelta(days=sim_days - 1), TIMEZONE).start_ts
            until = business_day(measured_from, TIMEZONE)
            sampled = run_child("sample", {**spec, "start": first, "end": (
                business_day(DAY, TIMEZONE).end_ts if args.no_cold else until.start_ts)}, log)
            print(f"sampler: {sampled['stored']} samples stored over {sampled['marks']} marks "
                  f"in {sampled['seconds']:.1f} s", flush=True)
        if args.backfill_days is not None:
            backfill(spec, log, lrm_url, measured_from, args.backfill_days)
            return

        runs = []
        labels = [] if reuse or args.no_cold else ["cold"]
        for label in labels + [f"steady{k + 1}" for k in range(args.steady_runs)]:
            print(f"{label} job run ...", flush=True)
            runs.append(run_job(label, spec, log, lrm_url, args.profile))
            print(f"  RSS by stage (MB): {runs[-1]['rss_by_stage_mb']}", flush=True)
            print(f"  {runs[-1]['wall_s']:.2f} s, {runs[-1]['rss_mb']:.0f} MB, job CPU "
                  f"{runs[-1]['cpu_s']:.1f} s, machine CPU {runs[-1]['machine_cpu_s']:.1f} s, "
                  f"{runs[-1]['row']['timings']}", flush=True)
        if args.no_baselines:
            return
        print("I/O floor ...", flush=True)
        floor = io_floor(server, sim_dir, lrm_url)
        print("SQL baseline ...", flush=True)
        sql = sql_baseline(lrm_url, truth_file)

        steady = min(runs[1:] or runs, key=lambda r: r["wall_s"])
        summary = {
            "sessions": sim["sessions_in_day"],
            "job_s": round(steady["wall_s"], 2),
            "io_floor_s": round(floor["total_s"], 2),
            "ratio_to_io_floor": round(steady["wall_s"] / floor["total_s"], 2),
            "sql_sweep_s": round(sql["sweep_s"], 2),
            # Like for like: the same output (item 1, every tenant, per minute) from the same
            # intervals, by PostgreSQL's window sweep and by lrm's counting core.
            "speedup_vs_sql": round(sql["sweep_s"] / sql["lrm_core_s"], 1),
            "peak_rss_mb": round(steady["rss_mb"]),
        }
        print_report(sim, runs, floor, sql, summary)
        if sql["mismatched_cells"] or sql["core_mismatched_cells"]:
            sys.exit(1)
    finally:
        if servers is not None:
            servers.stop()
        if temporary:
            server.destroy()
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            server.stop()


if __name__ == "__main__":
    main()
