"""The simulation folder: what `lrm simulate` writes and `lrm simulate serve` reads back.

- `config.json`: the configuration after every change, the `[config_source] kind = "file"`
  document (SPEC §4.2);
- `config_initial.json`, `config_changes.json`: the configuration before the simulated days and
  the timed changes (what the gateway replays to answer `as_of`);
- `gvp.json`, `gvp_counts.npy`: GVP 5-minute peaks, metadata and counts[kind, tenant, bin]
  for kinds RM, ASR, TTS (little-endian int32, `numpy.load`);
- `gvp.pw`: the GVP basic-auth password (mode 600);
- `manifest.json`: what was made: parameters, counts, IDBs, outage windows, bad rows, ports, URLs;
- `lrm.toml`: a ready lrm configuration for these sources (SPEC §3).

Every file is a function of the parameters, ports and database names only (no timestamps), so a
run with the same seed writes the same bytes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lrm.sim.copies import BAD_KINDS
from lrm.sim.gvpdata import BIN_S, GVP_KINDS, GvpData
from lrm.sim.idb import LoadedIdb
from lrm.sim.model import SimDataset, SimParams
from lrm.sim.timeline import CONFIG_KEYS, ConfigChange, ConfigDocument, ConfigTimeline, iso_utc

CONFIG_FILE = "config.json"
CONFIG_INITIAL_FILE = "config_initial.json"
CONFIG_CHANGES_FILE = "config_changes.json"
GVP_META_FILE = "gvp.json"
GVP_COUNTS_FILE = "gvp_counts.npy"
GVP_PASSWORD_FILE = "gvp.pw"  # noqa: S105 - a file name, not a password
MANIFEST_FILE = "manifest.json"
LRM_TOML_FILE = "lrm.toml"
DATA_DIR = ".lrm"


@dataclass(frozen=True)
class IdbInfo:
    """One IDB as created (the `idbs` entries of manifest.json)."""

    name: str
    database: str
    url: str
    ha_pair: str | None
    copy: str
    rows: int
    open: int
    zero_length: int
    missing_by_outage: int
    end_lost_by_outage: int
    bad_rows: dict[str, int]
    bad_guids: dict[str, list[str]]


@dataclass(frozen=True)
class SimManifest:
    """What a simulation made; `manifest.json` holds all of it except `out_dir` and
    `timings` (which would make the file differ between identical runs)."""

    params: SimParams
    period: dict[str, str]
    counts: dict[str, Any]
    idbs: tuple[IdbInfo, ...]
    outages: tuple[dict[str, Any], ...]
    gateway_port: int
    gvp_ports: tuple[int, int]
    gvp_username: str | None
    embedded_database: bool
    lrm_database_url: str | None
    files: tuple[str, ...]
    out_dir: Path = field(compare=False)
    timings: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}/cfg"

    @property
    def gvp_primary_url(self) -> str:
        return f"http://127.0.0.1:{self.gvp_ports[0]}/ems-rs"

    @property
    def gvp_backup_url(self) -> str:
        return f"http://127.0.0.1:{self.gvp_ports[1]}/ems-rs"

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}/_control/gvp"

    @property
    def lrm_toml(self) -> Path:
        return self.out_dir / LRM_TOML_FILE

    @property
    def gvp_password_file(self) -> Path:
        return self.out_dir / GVP_PASSWORD_FILE

    def to_json(self) -> dict[str, Any]:
        return {
            "params": self.params.to_json(),
            "period": self.period,
            "counts": self.counts,
            "idbs": [vars(i) for i in self.idbs],
            "outages": list(self.outages),
            "gateway": {"port": self.gateway_port, "url": self.gateway_url,
                        "control_url": self.control_url},
            "gvp": {"primary_port": self.gvp_ports[0], "backup_port": self.gvp_ports[1],
                    "primary_url": self.gvp_primary_url, "backup_url": self.gvp_backup_url,
                    "username": self.gvp_username, "password_file": GVP_PASSWORD_FILE},
            "database": {"embedded": self.embedded_database,
                         "embedded_data_dir": DATA_DIR if self.embedded_database else None,
                         "lrm_database_url": self.lrm_database_url},
            "files": list(self.files),
        }

    @staticmethod
    def from_json(data: dict[str, Any], out_dir: Path) -> SimManifest:
        return SimManifest(
            params=SimParams.from_json(data["params"]), period=data["period"],
            counts=data["counts"], idbs=tuple(IdbInfo(**i) for i in data["idbs"]),
            outages=tuple(data["outages"]), gateway_port=int(data["gateway"]["port"]),
            gvp_ports=(int(data["gvp"]["primary_port"]), int(data["gvp"]["backup_port"])),
            gvp_username=data["gvp"]["username"],
            embedded_database=bool(data["database"]["embedded"]),
            lrm_database_url=data["database"]["lrm_database_url"],
            files=tuple(data["files"]), out_dir=out_dir)


# --------------------------------------------------------------------------- writing
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def _dump_document(document: ConfigDocument | list[Any]) -> str:
    """Compact JSON with one object per line (readable, diffable, small)."""
    compact = _COMPACT.encode

    if isinstance(document, list):
        return "[\n" + ",\n".join(compact(o) for o in document) + "\n]\n"
    parts = []
    for key in CONFIG_KEYS:
        body = ",\n".join(compact(o) for o in document[key])
        parts.append(f"{compact(key)}: [\n{body}\n]")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def _toml_str(value: str) -> str:
    return json.dumps(value)


def lrm_toml_text(manifest: SimManifest) -> str:
    p = manifest.params
    lines = [
        f"# Written by `lrm simulate`: seed {p.seed}, {p.tenants} tenants x "
        f"{p.agents_per_tenant} agents, {p.days} days from {manifest.period['start']} "
        f"({p.timezone}).",
        "# Start the simulated sources first: lrm simulate serve --out <this folder>",
        "",
        "[lrm]",
        'instance_id = "lrm-a"',
    ]
    if manifest.lrm_database_url:
        lines.append(f"database_url = {_toml_str(manifest.lrm_database_url)}")
    lines += [
        f"data_dir = {_toml_str(DATA_DIR)}",
        f"report_timezone = {_toml_str(p.timezone)}",
        "excluded_time = []",
        "",
        "[job]",
        'nightly_job_time = "02:00"',
        "recompute_days = 2",
        f"catch_up_days = {max(7, p.days)}",
        "minute_retention_days = 90",
        "",
        "[http]",
        'report_host = "127.0.0.1"',
        "report_port = 8080",
        "admin_port = 8081",
        "",
        "[ha]",
        "lease_ttl_s = 10",
        "renew_interval_s = 2",
        "renew_deadline_s = 6",
        "exit_on_lease_loss = false",
    ]
    for idb in manifest.idbs:
        lines += ["", "[[icon]]", f"name = {_toml_str(idb.name)}", f"url = {_toml_str(idb.url)}"]
        if idb.ha_pair:
            lines.append(f"ha_pair = {_toml_str(idb.ha_pair)}")
    lines += [
        "",
        "[gvp]",
        f"primary_url = {_toml_str(manifest.gvp_primary_url)}",
        f"backup_url = {_toml_str(manifest.gvp_backup_url)}",
    ]
    if manifest.gvp_username:
        lines += [f"username = {_toml_str(manifest.gvp_username)}",
                  f"password_file = {_toml_str(GVP_PASSWORD_FILE)}"]
    lines += [
        "timeout_s = 10",
        "",
        "[config_source]",
        'kind = "http"',
        f"url = {_toml_str(manifest.gateway_url)}",
        "",
    ]
    return "\n".join(lines)


def build_manifest(dataset: SimDataset, loaded: list[LoadedIdb], out_dir: Path, *,
                   gateway_port: int, gvp_ports: tuple[int, int], gvp_username: str | None,
                   embedded_database: bool, lrm_database_url: str | None) -> SimManifest:
    idbs = []
    for idb, info in zip(dataset.idbs, loaded, strict=True):
        summary = dataset.idb_summary(idb)
        bad_guids = {kind: sorted(g.decode() for g in idb.rows.guid[idb.rows.bad_kind == i + 1])
                     for i, kind in enumerate(BAD_KINDS)}
        idbs.append(IdbInfo(
            name=info.name, database=info.database, url=info.url, ha_pair=info.ha_pair,
            copy=idb.copy, rows=summary["rows"], open=summary["open"],
            zero_length=summary["zero_length"], missing_by_outage=summary["missing_by_outage"],
            end_lost_by_outage=summary["end_lost_by_outage"], bad_rows=summary["bad_rows"],
            bad_guids=bad_guids))
    copy_b = {idb.pair: info.name for idb, info in zip(dataset.idbs, idbs, strict=True)
              if idb.copy == "b"}
    outages = tuple(
        {"ha_pair": f"site-{w.pair + 1}", "idb": copy_b[w.pair],
         "start": iso_utc(w.start_ts), "end": iso_utc(w.end_ts),
         "start_ts": w.start_ts, "end_ts": w.end_ts}
        for w in dataset.outages)
    period = dataset.period
    return SimManifest(
        params=dataset.params,
        period={"start": period.start.isoformat(), "last_day": period.last_day.isoformat(),
                "timezone": period.timezone, "start_utc": iso_utc(period.start_ts),
                "end_utc": iso_utc(period.end_ts)},
        counts=dataset.summary(), idbs=tuple(idbs), outages=outages,
        gateway_port=gateway_port, gvp_ports=gvp_ports, gvp_username=gvp_username,
        embedded_database=embedded_database, lrm_database_url=lrm_database_url,
        files=(CONFIG_FILE, CONFIG_INITIAL_FILE, CONFIG_CHANGES_FILE, GVP_META_FILE,
               GVP_COUNTS_FILE, GVP_PASSWORD_FILE, MANIFEST_FILE, LRM_TOML_FILE),
        out_dir=out_dir)


def write_output(dataset: SimDataset, manifest: SimManifest, *, gvp_password: str) -> None:
    """Write every file of the simulation folder."""
    out = manifest.out_dir
    out.mkdir(parents=True, exist_ok=True)
    timeline = dataset.timeline
    (out / CONFIG_FILE).write_text(_dump_document(timeline.final()), encoding="utf-8")
    (out / CONFIG_INITIAL_FILE).write_text(_dump_document(timeline.initial), encoding="utf-8")
    (out / CONFIG_CHANGES_FILE).write_text(_dump_document(timeline.changes_json()),
                                           encoding="utf-8")
    gvp = dataset.gvp
    meta = {"kinds": list(GVP_KINDS), "bin_s": BIN_S, "start": iso_utc(gvp.start_ts),
            "start_ts": gvp.start_ts, "bins": gvp.bins, "tenant_ids": list(gvp.tenant_ids),
            "counts_file": GVP_COUNTS_FILE, "counts_shape": list(gvp.counts.shape)}
    (out / GVP_META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    np.save(out / GVP_COUNTS_FILE, np.ascontiguousarray(gvp.counts, dtype="<i4"),
            allow_pickle=False)
    password_path = out / GVP_PASSWORD_FILE
    password_path.write_text(gvp_password + "\n", encoding="utf-8")
    password_path.chmod(0o600)
    (out / MANIFEST_FILE).write_text(json.dumps(manifest.to_json(), indent=2) + "\n",
                                     encoding="utf-8")
    (out / LRM_TOML_FILE).write_text(lrm_toml_text(manifest), encoding="utf-8")


# --------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class SimOutput:
    manifest: SimManifest
    timeline: ConfigTimeline
    gvp: GvpData
    gvp_password: str | None


def read_manifest(out_dir: Path) -> SimManifest:
    path = out_dir / MANIFEST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist: run `lrm simulate --out {out_dir}` "
                                "first") from None
    return SimManifest.from_json(data, out_dir)


def read_output(out_dir: Path) -> SimOutput:
    """Everything the simulators need to serve a folder written by `write_output`."""
    manifest = read_manifest(out_dir)
    initial = json.loads((out_dir / CONFIG_INITIAL_FILE).read_text(encoding="utf-8"))
    changes = [ConfigChange.from_json(c) for c in
               json.loads((out_dir / CONFIG_CHANGES_FILE).read_text(encoding="utf-8"))]
    meta = json.loads((out_dir / GVP_META_FILE).read_text(encoding="utf-8"))
    counts = np.load(out_dir / GVP_COUNTS_FILE, allow_pickle=False).astype(np.int32)
    if list(meta["kinds"]) != list(GVP_KINDS) or int(meta["bin_s"]) != BIN_S:
        raise ValueError(f"{out_dir / GVP_META_FILE}: unsupported GVP data layout")
    gvp = GvpData(start_ts=int(meta["start_ts"]),
                  tenant_ids=tuple(int(t) for t in meta["tenant_ids"]), counts=counts)
    password_path = out_dir / GVP_PASSWORD_FILE
    password = (password_path.read_text(encoding="utf-8").strip()
                if manifest.gvp_username and password_path.exists() else None)
    return SimOutput(manifest=manifest, timeline=ConfigTimeline(initial, changes), gvp=gvp,
                     gvp_password=password)


def is_simulation_folder(path: Path) -> bool:
    return (path / MANIFEST_FILE).is_file() and os.access(path / MANIFEST_FILE, os.R_OK)
