"""lrm.sim: a simulated contact centre (IDBs, configuration gateway, GVP Reporting Server pair).

    from lrm.sim import SimParams, run_simulation, SimulatorServers

    manifest = run_simulation(SimParams(tenants=3, agents_per_tenant=20, days=3), out_dir)
    with SimulatorServers(out_dir) as servers:
        servers.urls.gateway                      # [config_source] url
        servers.gvp.set_mode("primary", "refuse")  # failure switches

`generate(params, today=...)` alone gives the pure data set (`SimDataset`) without any I/O.
"""

from lrm.sim.gvp import GvpPair
from lrm.sim.model import SimDataset, SimParams, generate
from lrm.sim.output import IdbInfo, SimManifest, read_manifest
from lrm.sim.run import run_simulation
from lrm.sim.servers import SimulatorServers, SimUrls

__all__ = ["GvpPair", "IdbInfo", "SimDataset", "SimManifest", "SimParams", "SimUrls",
           "SimulatorServers", "generate", "read_manifest", "run_simulation"]
