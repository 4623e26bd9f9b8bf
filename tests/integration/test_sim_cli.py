"""`lrm simulate` end to end: the command, its folder, the written lrm.toml and `serve`."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from typer.testing import CliRunner

from lrm.cli import app
from lrm.settings import load_settings
from lrm.sim import SimulatorServers, read_manifest
from lrm.sim.timeline import CONFIG_KEYS
from lrm.store.db import drop_database, libpq_url
from lrm.store.embedded import EmbeddedPostgres, free_tcp_ports


@pytest.fixture(scope="module")
def sim_dir(pg_server: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory,
            ) -> Iterator[Path]:
    """A folder written by `lrm simulate` through the real command line (CliRunner)."""
    out = tmp_path_factory.mktemp("cli") / "sim"
    prefix = f"idb_{uuid.uuid4().hex[:8]}_"
    result = CliRunner().invoke(app, [
        "simulate", "--out", str(out), "--tenants", "2", "--agents-per-tenant", "8",
        "--days", "2", "--seed", "5", "--start", "2026-11-20", "--timezone", "Europe/Paris",
        "--bad-rows", "1", "--pg-url", pg_server.url(), "--db-prefix", prefix,
        "--gateway-port", "0", "--gvp-ports", "0,0", "--gvp-user", "reporter",
        "--gvp-password", "pw-123"])
    assert result.exit_code == 0, result.output
    yield out
    for suffix in ("site1_a", "site1_b"):
        drop_database(pg_server.url(), prefix + suffix)


def test_simulate_command_prints_a_summary_and_writes_the_folder(sim_dir: Path) -> None:
    """The command writes every file named in the manifest and the IDBs hold its row counts."""
    manifest = read_manifest(sim_dir)
    assert manifest.params.tenants == 2
    assert manifest.period["start"] == "2026-11-20"
    assert manifest.period["start_utc"] == "2026-11-19T23:00:00Z"
    for name in manifest.files:
        assert (sim_dir / name).is_file(), name
    assert oct((sim_dir / "gvp.pw").stat().st_mode & 0o777) == "0o600"
    assert [i.database.rsplit("_", 2)[-2:] for i in manifest.idbs] == [["site1", "a"],
                                                                       ["site1", "b"]]
    for idb in manifest.idbs:
        with psycopg.connect(libpq_url(idb.url)) as conn:
            row = conn.execute("SELECT count(*) FROM g_login_session").fetchone()
        assert row is not None
        assert row[0] == idb.rows
    config = json.loads((sim_dir / "config.json").read_text())
    assert set(config) == set(CONFIG_KEYS)
    assert len(config["tenants"]) == 2


def test_written_lrm_toml_loads_with_the_settings_loader(sim_dir: Path) -> None:
    """lrm.toml passes `load_settings`: IDBs as an HA pair, GVP with the password file, the
    gateway as an http config source, the embedded data folder and no database_url."""
    manifest = read_manifest(sim_dir)
    settings = load_settings(sim_dir / "lrm.toml", environ={})
    assert settings.lrm.database_url is None
    assert settings.lrm.data_dir == (sim_dir / ".lrm").resolve()
    assert settings.lrm.report_timezone == "Europe/Paris"
    assert [(i.name, i.url, i.ha_pair) for i in settings.icon] == [
        (i.name, i.url, "site-1") for i in manifest.idbs]
    assert settings.gvp is not None
    assert (settings.gvp.primary_url, settings.gvp.backup_url) == (
        manifest.gvp_primary_url, manifest.gvp_backup_url)
    assert (settings.gvp.username, settings.gvp.password) == ("reporter", "pw-123")
    assert settings.config_source is not None
    assert settings.config_source.kind == "http"
    assert settings.config_source.url == manifest.gateway_url


def test_simulator_servers_serve_the_folder(sim_dir: Path) -> None:
    """SimulatorServers serves the folder's configuration (document = config.json after the
    period) and GVP data with the configured credentials on the manifest's ports."""
    settings = load_settings(sim_dir / "lrm.toml", environ={})
    assert settings.gvp is not None
    assert settings.config_source is not None
    config = json.loads((sim_dir / "config.json").read_text())
    with SimulatorServers(sim_dir) as servers, httpx.Client(timeout=5) as client:
        assert servers.urls.gateway == settings.config_source.url
        document = client.get(f"{servers.urls.gateway}/document").json()
        assert document == config
        peaks = client.get(f"{settings.gvp.primary_url}/operations/peaks/RM", params={
            "granularity": "FIVE_MINUTES", "from": "2026-11-20T00:00:00Z",
            "to": "2026-11-21T00:00:00Z"},
            auth=(settings.gvp.username or "", settings.gvp.password or ""))
        assert peaks.status_code == 200
        assert peaks.text.count("<peak ") == 288


def test_bad_options_are_refused_with_a_message(tmp_path: Path) -> None:
    """Invalid options fail with a usage error naming the problem, before anything is made."""
    runner = CliRunner()
    result = runner.invoke(app, ["simulate", "--out", str(tmp_path / "x"), "--timezone",
                                 "Nowhere/City"])
    assert result.exit_code == 2
    assert "Nowhere/City" in result.output
    result = runner.invoke(app, ["simulate", "--out", str(tmp_path / "x"), "--gvp-ports", "1"])
    assert result.exit_code == 2
    assert "--gvp-ports" in result.output
    assert not (tmp_path / "x").exists()


def _read_until(process: subprocess.Popen[bytes], marker: str, timeout: float) -> str:
    """The process's output up to `marker` (raw reads: no buffering hides data from select)."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    selector = selectors.DefaultSelector()
    selector.register(fd, selectors.EVENT_READ)
    seen = b""
    deadline = time.monotonic() + timeout
    while marker.encode() not in seen and time.monotonic() < deadline:
        if selector.select(timeout=0.2):
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            seen += chunk
    selector.close()
    text = seen.decode()
    assert marker in text, text
    return text


def test_serve_subcommand_runs_until_interrupted(sim_dir: Path) -> None:
    """`lrm simulate serve --out DIR` prints the URLs, serves them and stops cleanly on
    Ctrl-C (SIGINT)."""
    gateway, primary, backup = free_tcp_ports(3)
    process = subprocess.Popen(
        [sys.executable, "-c", "from lrm.cli import main; main()", "simulate", "serve",
         "--out", str(sim_dir), "--gateway-port", str(gateway),
         "--gvp-ports", f"{primary},{backup}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        banner = _read_until(process, "Press Ctrl-C", timeout=30)
        assert f"http://127.0.0.1:{gateway}/cfg" in banner
        assert f"http://127.0.0.1:{primary}/ems-rs" in banner
        with httpx.Client(timeout=5) as client:
            tenants = client.get(f"http://127.0.0.1:{gateway}/cfg/tenants").json()
            assert [t["DBID"] for t in tenants] == [101, 102]
            assert client.get(f"http://127.0.0.1:{backup}/ems-rs/operations/peaks/RM"
                              ).status_code == 401
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 0, output
        assert b"stopped" in output
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
