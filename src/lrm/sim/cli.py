"""`lrm simulate`: build and serve a simulated contact centre.

    lrm simulate --out DIR [--tenants N] [--agents-per-tenant M] [--days D] [--seed S] …
    lrm simulate serve --out DIR
"""

from __future__ import annotations

import signal
import sys
import threading
from datetime import date
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from lrm.sim.model import SimParams
from lrm.sim.output import SimManifest
from lrm.sim.run import (
    DEFAULT_DB_PREFIX,
    DEFAULT_GATEWAY_PORT,
    DEFAULT_GVP_PORTS,
    run_simulation,
)

simulate_app = typer.Typer(help=(
    "Simulated sources: IDBs, configuration gateway, GVP pair. Without a command, build a "
    "simulated contact centre in OUT (IDBs loaded into PostgreSQL, configuration document and "
    "timeline, GVP peaks, manifest.json and a matching lrm.toml); `serve` then serves its "
    "gateway and GVP pair."))


def _ports(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    try:
        first, second = (int(p) for p in parts)
    except ValueError:
        raise typer.BadParameter("give two ports separated by a comma, e.g. 9101,9102",
                                 param_hint="--gvp-ports") from None
    if not (0 <= first <= 65535 and 0 <= second <= 65535):
        raise typer.BadParameter("ports are 0 (pick a free one) to 65535",
                                 param_hint="--gvp-ports")
    return first, second


def _echo(message: str, *, err: bool = False) -> None:
    typer.echo(message, err=err)
    (sys.stderr if err else sys.stdout).flush()


def summary_lines(manifest: SimManifest) -> list[str]:
    """The human summary printed after a run."""
    c, s, p = manifest.counts, manifest.counts["sessions"], manifest.params
    lines = [
        f"Simulated contact centre in {manifest.out_dir} (seed {p.seed})",
        f"  days      {manifest.period['start']} .. {manifest.period['last_day']} "
        f"({p.timezone}; {manifest.period['start_utc']} to {manifest.period['end_utc']})",
        f"  config    {c['tenants']} tenants, {c['agents']} agents ({c['persons']} persons), "
        f"{c['places']} places, {c['dns']} DNs, {c['switches']} switches "
        f"({c['sip_switches']} SIP), {c['agent_groups']} agent groups, "
        f"{c['place_groups']} place groups, {c['config_changes']} timed changes",
        f"  sessions  {s['total']:,} ({s['voice']:,} voice, {s['multimedia']:,} multimedia): "
        f"{s['open']:,} open, {s['zero_length']:,} zero-length, "
        f"{s['across_local_midnight']:,} across local midnight, "
        f"{s['short_relogins']:,} short re-logins",
    ]
    outages = {o["idb"]: o for o in manifest.outages}
    for number, idb in enumerate(manifest.idbs):
        label = "  IDBs      " if number == 0 else "            "
        line = f"{label}{idb.name:9} {idb.database:24} {idb.rows:>10,} rows  {idb.url}"
        if idb.name in outages:
            o = outages[idb.name]
            line += (f"\n              outage {o['start']} to {o['end']}: "
                     f"{idb.missing_by_outage} sessions missing, "
                     f"{idb.end_lost_by_outage} without their end")
        lines.append(line)
    if p.bad_rows:
        kinds = ", ".join(k for k, v in manifest.idbs[0].bad_rows.items() if v)
        lines.append(f"  bad rows  {p.bad_rows} of each kind per pair ({kinds})")
    auth = (f", user {manifest.gvp_username} (password in {manifest.gvp_password_file.name})"
            if manifest.gvp_username else ", no authentication")
    lines += [
        f"  GVP       primary {manifest.gvp_primary_url}, backup {manifest.gvp_backup_url}{auth}",
        f"  gateway   {manifest.gateway_url} (control: {manifest.control_url})",
        f"  database  {'embedded server under ' + str(manifest.out_dir / '.lrm') if manifest.embedded_database else 'external server'}",  # noqa: E501
    ]
    t = manifest.timings
    if t:
        rows = sum(i.rows for i in manifest.idbs)
        lines.append(f"  timings   generated in {t['generate_s']:.2f} s, loaded "
                     f"{len(manifest.idbs)} IDBs ({rows:,} rows) in {t['load_s']:.2f} s, "
                     f"total {t['total_s']:.2f} s")
    lines += [
        "Next:",
        f"  lrm simulate serve --out {manifest.out_dir}",
        f"  lrm db upgrade --config {manifest.lrm_toml}",
        f"  lrm serve --config {manifest.lrm_toml}",
    ]
    return lines


@simulate_app.callback(invoke_without_command=True)
def simulate(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option("--out", help="Folder to write (config, GVP data, "
                                             "manifest.json, lrm.toml).", file_okay=False)] = None,
    tenants: Annotated[int, typer.Option(min=1, help="Number of tenants.")] = 3,
    agents_per_tenant: Annotated[int, typer.Option(min=5, help="Agents per tenant.")] = 20,
    days: Annotated[int, typer.Option(min=1, max=366, help="Simulated days.")] = 3,
    seed: Annotated[int, typer.Option(min=0, help="Random seed: same seed, same data.")] = 1,
    start: Annotated[str | None, typer.Option(
        help="First simulated day (YYYY-MM-DD); default: the DAYS days before today.")] = None,
    timezone: Annotated[str, typer.Option(
        help="IANA time zone of the shifts (and the report_timezone written).")] = "UTC",
    ha: Annotated[bool, typer.Option("--ha/--no-ha",
                                     help="Two IDBs (an HA pair) per ICON site.")] = True,
    icon_pairs: Annotated[int, typer.Option(min=1, max=64,
                                            help="ICON sites (IDB pairs).")] = 1,
    outage: Annotated[bool, typer.Option("--outage/--no-outage",
                                         help="An outage window in copy B of each pair.")] = True,
    bad_rows: Annotated[int, typer.Option(min=0, max=10_000,
                                          help="Bad rows of each kind per pair.")] = 0,
    pg_url: Annotated[str | None, typer.Option(
        help="Admin URL of the PostgreSQL server for the IDBs (default: the embedded server "
             "under OUT/.lrm, shared with lrm).")] = None,
    lrm_db_url: Annotated[str | None, typer.Option(
        help="LRM DB URL to write into lrm.toml as database_url (default: none, so lrm uses "
             "the embedded server).")] = None,
    db_prefix: Annotated[str, typer.Option(help="Prefix of the IDB database names.")] =
        DEFAULT_DB_PREFIX,
    gateway_port: Annotated[int, typer.Option(min=0, max=65535, help="Configuration gateway "
                                              "port (0: pick a free one).")] =
        DEFAULT_GATEWAY_PORT,
    gvp_ports: Annotated[str, typer.Option(help="GVP primary,backup ports.")] =
        f"{DEFAULT_GVP_PORTS[0]},{DEFAULT_GVP_PORTS[1]}",
    gvp_user: Annotated[str, typer.Option(help="GVP basic-auth user ('' for none).")] = "lrm",
    gvp_password: Annotated[str | None, typer.Option(
        help="GVP password (default: derived from the seed; written to OUT/gvp.pw).")] = None,
) -> None:
    """Build a simulated contact centre: IDBs (an HA pair by default), a configuration
    document and timeline, GVP peaks, and a matching lrm.toml in OUT."""
    if ctx.invoked_subcommand is not None:
        return
    if out is None:
        raise typer.BadParameter("--out is required", param_hint="--out")
    try:
        first_day = date.fromisoformat(start) if start else None
    except ValueError:
        raise typer.BadParameter(f"{start!r} is not a date (YYYY-MM-DD)",
                                 param_hint="--start") from None
    try:
        params = SimParams(tenants=tenants, agents_per_tenant=agents_per_tenant, days=days,
                           seed=seed, start=first_day, timezone=timezone, ha=ha,
                           icon_pairs=icon_pairs, outage=outage, bad_rows=bad_rows)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    ports = _ports(gvp_ports) or DEFAULT_GVP_PORTS
    try:
        manifest = run_simulation(
            params, out, pg_admin_url=pg_url, lrm_database_url=lrm_db_url, db_prefix=db_prefix,
            gateway_port=gateway_port, gvp_ports=ports, gvp_username=gvp_user or None,
            gvp_password=gvp_password, progress=lambda m: _echo(m, err=True))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    for line in summary_lines(manifest):
        _echo(line)


@simulate_app.command("serve")
def serve(
    out: Annotated[Path, typer.Option("--out", help="A folder written by `lrm simulate`.",
                                      exists=True, file_okay=False)],
    gateway_port: Annotated[int | None, typer.Option(
        min=0, max=65535, help="Override the manifest's gateway port.")] = None,
    gvp_ports: Annotated[str | None, typer.Option(
        help="Override the manifest's GVP ports (primary,backup).")] = None,
) -> None:
    """Serve the configuration gateway and the GVP pair of OUT until Ctrl-C."""
    from lrm.sim.servers import SimulatorServers

    try:
        servers = SimulatorServers(out, gateway_port=gateway_port, gvp_ports=_ports(gvp_ports))
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint="--out") from None
    try:
        servers.start()
    except OSError as exc:
        _echo(f"lrm simulate serve: {exc}", err=True)
        raise typer.Exit(1) from None
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Ctrl-C (SIGINT) and SIGTERM only set `stop`: a KeyboardInterrupt could land anywhere,
    # before the wait below or inside a lock's wait, and the servers would not stop in order.
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    urls = servers.urls
    for line in (f"Serving the simulated sources of {out.resolve()}",
                 f"  configuration gateway  {urls.gateway}",
                 f"  GVP primary            {urls.gvp_primary}",
                 f"  GVP backup             {urls.gvp_backup}",
                 f"  failure switches       {urls.control}  "
                 "(POST ?target=primary|backup|both&mode=ok|refuse|unavailable|slow"
                 "[&delay_s=N])",
                 "Press Ctrl-C to stop."):
        _echo(line)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        servers.stop()
        _echo("stopped")
