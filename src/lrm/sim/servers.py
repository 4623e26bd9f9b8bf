"""`SimulatorServers`: the configuration gateway and the GVP pair of a simulation folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lrm.sim.gateway import Clock, ConfigGatewayServer, utc_now
from lrm.sim.gvp import GvpPair
from lrm.sim.output import SimManifest, read_output


@dataclass(frozen=True)
class SimUrls:
    gateway: str        # [config_source] url (…/cfg)
    gvp_primary: str    # [gvp] primary_url (…/ems-rs)
    gvp_backup: str     # [gvp] backup_url
    control: str        # GET/POST …/_control/gvp (failure switches)


class SimulatorServers:
    """Serves the folder written by `run_simulation` on 127.0.0.1: the gateway and the GVP
    pair, on the manifest's ports unless others are given (0 picks free ports).

        with SimulatorServers(out_dir) as servers:
            servers.gvp.set_mode("primary", "refuse")
    """

    def __init__(self, out_dir: Path, *, clock: Clock = utc_now, gateway_port: int | None = None,
                 gvp_ports: tuple[int, int] | None = None) -> None:
        output = read_output(out_dir)
        self.manifest: SimManifest = output.manifest
        self.gvp = GvpPair(output.gvp, ports=gvp_ports or self.manifest.gvp_ports,
                           username=self.manifest.gvp_username, password=output.gvp_password,
                           clock=clock)
        self.gateway = ConfigGatewayServer(
            output.timeline, clock=clock, control=self.gvp,
            port=self.manifest.gateway_port if gateway_port is None else gateway_port)

    @property
    def urls(self) -> SimUrls:
        return SimUrls(gateway=self.gateway.url, gvp_primary=self.gvp.primary_url,
                       gvp_backup=self.gvp.backup_url, control=self.gateway.control_url)

    def start(self) -> SimulatorServers:
        try:
            self.gvp.start()
            self.gateway.start()
        except OSError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self.gateway.stop()
        self.gvp.stop()

    def __enter__(self) -> SimulatorServers:
        return self.start()   # start() is idempotent: `with SimulatorServers(d).start()` works too

    def __exit__(self, *exc: object) -> None:
        self.stop()
