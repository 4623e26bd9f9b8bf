"""`run_simulation`: generate a simulation, load its IDBs and write its folder."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from lrm.sim.idb import LoadedIdb, idb_database_name, load_idb
from lrm.sim.model import SimParams, generate
from lrm.sim.output import DATA_DIR, SimManifest, build_manifest, write_output
from lrm.store.db import embedded_server
from lrm.store.embedded import free_tcp_ports

Progress = Callable[[str], None]
DEFAULT_GATEWAY_PORT = 9200
DEFAULT_GVP_PORTS = (9101, 9102)
DEFAULT_DB_PREFIX = "idb_"


def default_gvp_password(seed: int) -> str:
    """A password derived from the seed, so that a re-run writes the same files."""
    return hashlib.sha256(f"lrm-sim-gvp:{seed}".encode()).hexdigest()[:20]


def run_simulation(params: SimParams, out_dir: Path, *, today: date | None = None,
                   pg_admin_url: str | None = None, lrm_database_url: str | None = None,
                   db_prefix: str = DEFAULT_DB_PREFIX,
                   gateway_port: int = DEFAULT_GATEWAY_PORT,
                   gvp_ports: tuple[int, int] = DEFAULT_GVP_PORTS,
                   gvp_username: str | None = "lrm", gvp_password: str | None = None,
                   progress: Progress | None = None) -> SimManifest:
    """Generate the data set of `params`, (re)create its IDBs on the PostgreSQL server of
    `pg_admin_url` (default: the embedded server under `out_dir/.lrm`, the one lrm itself will
    use with the written lrm.toml), and write the simulation folder `out_dir`.

    `today` (default: the current date in `params.timezone`) places the simulated days just
    before it unless `params.start` is set. A port of 0 picks a free port now. `lrm_database_url`
    is written into lrm.toml as `[lrm] database_url`; without it lrm uses the embedded server.
    """
    say = progress or (lambda _message: None)
    if not db_prefix.replace("_", "").isalnum() or not db_prefix[:1].isalpha():
        raise ValueError(f"db_prefix {db_prefix!r} must start with a letter and contain only "
                         "letters, digits and _")
    out_dir = out_dir.resolve()
    timings: dict[str, float] = {}
    if params.start is None and today is None:
        today = datetime.now(ZoneInfo(params.timezone)).date()
    params = params.resolved(today)

    began = time.perf_counter()
    say(f"generating {params.tenants} tenants x {params.agents_per_tenant} agents, "
        f"{params.days} days from {params.start} ({params.timezone}), seed {params.seed} ...")
    dataset = generate(params, progress=lambda message: say(
        f"  {message} ({time.perf_counter() - began:.1f} s)"))
    timings["generate_s"] = time.perf_counter() - began
    say(f"generated {len(dataset.sessions):,} sessions in {timings['generate_s']:.2f} s")

    embedded = pg_admin_url is None
    if pg_admin_url is None:
        say(f"starting the embedded PostgreSQL server under {out_dir / DATA_DIR} ...")
        pg_admin_url = embedded_server(out_dir / DATA_DIR).start().url()
    loaded: list[LoadedIdb] = []
    load_began = time.perf_counter()
    for idb in dataset.idbs:
        database = idb_database_name(db_prefix, idb)
        result = load_idb(pg_admin_url, database, idb)
        loaded.append(result)
        say(f"loaded {database}: {result.rows:,} rows in {result.seconds:.2f} s")
    timings["load_s"] = time.perf_counter() - load_began

    spare = iter(free_tcp_ports(3))
    ports = (gateway_port or next(spare), gvp_ports[0] or next(spare),
             gvp_ports[1] or next(spare))
    if len(set(ports)) != 3:
        raise ValueError(f"the gateway and GVP ports must differ (got {ports})")
    write_began = time.perf_counter()
    say(f"writing {out_dir} ...")
    manifest = build_manifest(dataset, loaded, out_dir, gateway_port=ports[0],
                              gvp_ports=(ports[1], ports[2]), gvp_username=gvp_username,
                              embedded_database=embedded, lrm_database_url=lrm_database_url)
    write_output(dataset, manifest,
                 gvp_password=gvp_password or default_gvp_password(params.seed))
    timings["write_s"] = time.perf_counter() - write_began
    timings["total_s"] = time.perf_counter() - began
    manifest.timings.update(timings)
    return manifest
