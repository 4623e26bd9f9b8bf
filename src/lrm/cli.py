"""The `lrm` command line (SPEC §9). Each command builds the settings once and hands them on;
errors lrm understands are printed as one clear message with the SPEC's exit code."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer

from lrm import __version__
from lrm.domain.errors import LrmError
from lrm.settings import Settings, load_settings
from lrm.sim.cli import simulate_app

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="lrm: License Reporting Manager for contact-centre platforms.")
db_app = typer.Typer(no_args_is_help=True, help="The LRM database schema.")
app.add_typer(db_app, name="db")
app.add_typer(simulate_app, name="simulate")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML configuration file (default: $LRM_CONFIG, "
                 "else ./lrm.toml if it exists, else built-in defaults).",
                 dir_okay=False),
]


def resolve_config_path(config: Path | None) -> Path | None:
    if config is not None:
        return config
    from_env = os.environ.get("LRM_CONFIG")
    if from_env:
        return Path(from_env)
    default = Path("lrm.toml")
    return default if default.exists() else None


def settings_from(config: Path | None, instance_id: str | None = None) -> Settings:
    return load_settings(resolve_config_path(config), instance_id=instance_id)


@contextmanager
def _engine(settings: Settings) -> Iterator[sa.Engine]:
    """The LRM DB for one command, checked to be at this version's schema, closed after."""
    from lrm.app import open_database

    database = open_database(settings)
    try:
        yield database.engine
    finally:
        database.engine.dispose()


@app.command()
def version() -> None:
    """Print lrm's version."""
    typer.echo(__version__)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Create or upgrade the LRM database schema (Alembic) to the newest revision."""
    from lrm.store import migrate
    from lrm.store.db import create_engine, resolve_database_url

    settings = settings_from(config)
    url = resolve_database_url(settings.lrm.database_url, settings.lrm.data_dir)
    engine = create_engine(url)
    try:
        migrate.upgrade(engine)
        with engine.connect() as connection:
            revision = migrate.current_revision(connection)
    finally:
        engine.dispose()
    typer.echo(f"LRM database at revision {revision}")


# ============================================================================ job
job_app = typer.Typer(no_args_is_help=True, help="The nightly statistics job.")
app.add_typer(job_app, name="job")


def _parse_day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date in YYYY-MM-DD form",
                                 param_hint=option) from None


@job_app.command("run")
def job_run(
    date_: Annotated[str, typer.Option("--date", help="Business date (YYYY-MM-DD).")],
    to: Annotated[str | None, typer.Option("--to", help="Last date of a range (inclusive).")]
        = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Also recompute dates whose job already succeeded.")] = False,
    config: ConfigOption = None,
) -> None:
    """Run the job for DATE (or DATE..TO) now. Exit 0 when every date succeeded, 1 when one
    failed, 3 when another run holds the job lock."""
    import threading

    from lrm.cli_progress import job_progress
    from lrm.job.runner import NightlyJob
    from lrm.observability import configure_logging
    from lrm.store import job_runs

    first = _parse_day(date_, "--date")
    last = _parse_day(to, "--to") if to else first
    if last < first:
        raise typer.BadParameter(f"{last} is before --date {first}", param_hint="--to")
    settings = settings_from(config)
    configure_logging()
    with _engine(settings) as engine:
        dates = [date.fromordinal(d) for d in range(first.toordinal(), last.toordinal() + 1)]
        if not force:
            with engine.connect() as connection:
                done = job_runs.succeeded_dates(connection, first, last)
            for skipped in sorted(done):
                typer.echo(f"{skipped}: already succeeded (use --force to recompute)")
            dates = [d for d in dates if d not in done]
        with job_progress(len(dates)) as progress:
            job = NightlyJob(settings, engine, under_lease=False, progress=progress)
            outcomes = job.run_dates(dates, trigger="manual", epoch=0, cancel=threading.Event())
        for outcome in outcomes:
            detail = f": {outcome.error}" if outcome.error else ""
            typer.echo(f"{outcome.business_date}: {outcome.status} (run {outcome.run_id})"
                       f"{detail}")
        if any(o.status != "succeeded" for o in outcomes) or len(outcomes) < len(dates):
            raise typer.Exit(1)


@job_app.command("status")
def job_status(
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many runs.")] = 20,
    config: ConfigOption = None,
) -> None:
    """Recent job runs, newest first."""
    from lrm.store import job_runs

    _check_format(output, ("table", "json"))
    with _engine(settings_from(config)) as engine, engine.connect() as connection:
        runs = job_runs.recent_runs(connection, limit)
    if output == "json":
        typer.echo(json.dumps([r.as_dict() for r in runs], indent=2))
        return
    from lrm.cli_progress import print_table

    print_table(["id", "business_date", "status", "trigger", "instance", "epoch", "started",
                 "seconds", "read", "dup", "set aside", "error"],
                [[r.id, r.business_date, r.status, r.trigger, r.instance_id, r.epoch,
                  r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                  f"{(r.finished_at - r.started_at).total_seconds():.1f}" if r.finished_at
                  else "", r.sessions_read, r.sessions_deduplicated,
                  sum(r.sessions_set_aside.values()), (r.error or "")[:60]] for r in runs])


def _check_format(value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}",
                                 param_hint="--format")


# ============================================================================ report
@app.command("report")
def report(
    kind: Annotated[str, typer.Argument(help="tenant, system, agent-group or place-group.")],
    from_: Annotated[str, typer.Option("--from", help="First date (YYYY-MM-DD).")],
    to: Annotated[str, typer.Option("--to", help="Last date (YYYY-MM-DD), inclusive.")],
    tenant: Annotated[list[int] | None, typer.Option("--tenant", help="Tenant DBID "
                      "(repeatable; default: every tenant).")] = None,
    group: Annotated[int | None, typer.Option("--group", help="Group DBID (group reports).")]
        = None,
    granularity: Annotated[str, typer.Option(help="detailed, day, week or month.")] = "day",
    week_start: Annotated[str, typer.Option(help="First day of a week (monday … sunday).")]
        = "monday",
    item: Annotated[list[int] | None, typer.Option("--item", help="Item or bundle id "
                    "(repeatable; default: all).")] = None,
    output: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
    config: ConfigOption = None,
) -> None:
    """A SPEC §7 report, read straight from the LRM DB (the same rows as the HTTP API)."""
    from lrm.reporting import ReportRequest, as_csv, as_document, build_report, parse_date

    _check_format(output, ("table", "json", "csv"))
    if kind not in ("tenant", "system", "agent-group", "place-group"):
        raise typer.BadParameter(f"{kind!r} is not tenant, system, agent-group or place-group",
                                 param_hint="KIND")
    request = ReportRequest(
        kind=kind,  # type: ignore[arg-type]
        start=parse_date(from_, "from"), end=parse_date(to, "to"),
        granularity=granularity,  # type: ignore[arg-type]
        week_start=week_start, tenants=tuple(tenant or ()), group=group,
        items=tuple(item or ()))
    settings = settings_from(config)
    with _engine(settings) as engine, engine.connect() as connection:
        result = build_report(connection, request, settings.lrm.zone)
    if output == "json":
        typer.echo(json.dumps(as_document(result), indent=2))
    elif output == "csv":
        sys.stdout.write(as_csv(result))
    else:
        from lrm.cli_progress import print_report

        print_report(result)


# ============================================================================ serve and HA
@app.command("serve")
def serve_command(
    config: ConfigOption = None,
    instance_id: Annotated[str | None, typer.Option(
        "--instance-id", help="This instance's id (overrides [lrm] instance_id).")] = None,
) -> None:
    """Run one instance of the primary/backup pair until SIGTERM/Ctrl-C."""
    from lrm.app import serve
    from lrm.observability import configure_logging

    configure_logging()
    serve(settings_from(config, instance_id))


ha_app = typer.Typer(no_args_is_help=True, help="The primary/backup pair.")
app.add_typer(ha_app, name="ha")


@ha_app.command("status")
def ha_status(
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    config: ConfigOption = None,
) -> None:
    """Who holds the primary lease, with which epoch, for how long."""
    from lrm.store import coordination

    _check_format(output, ("table", "json"))
    with _engine(settings_from(config)) as engine, engine.connect() as connection:
        lease = coordination.read_lease(connection)
        lock = coordination.read_job_lock(connection)
    document = {
        "holder": lease.holder if lease else None,
        "epoch": lease.epoch if lease else 0,
        "expires_at": lease.expires_at.isoformat() if lease and lease.expires_at else None,
        "expires_in_s": round(lease.expires_in_s, 3) if lease else 0.0,
        "released_by": lease.released_by if lease else None,
        "job_lock_holder": lock.holder if lock else None,
    }
    if output == "json":
        typer.echo(json.dumps(document, indent=2))
        return
    for key, value in document.items():
        typer.echo(f"{key:16} {value if value is not None else '-'}")


@ha_app.command("switchover")
def ha_switchover(
    timeout_s: Annotated[float, typer.Option(help="How long to wait for the handover.")] = 15.0,
    config: ConfigOption = None,
) -> None:
    """Ask the primary to hand over to the backup now; waits until the lease changes holder."""
    import time

    from lrm.ha.instance import request_switchover
    from lrm.store import coordination

    with _engine(settings_from(config)) as engine:
        with engine.connect() as connection:
            before = coordination.read_lease(connection)
        if before is None or before.holder is None or before.expires_in_s <= 0:
            typer.echo("no instance holds the lease: nothing to hand over", err=True)
            raise typer.Exit(1)
        request_switchover(engine)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                now = coordination.read_lease(connection)
            if now is not None and now.holder not in (None, before.holder):
                typer.echo(f"switched over: {before.holder} (epoch {before.epoch}) → "
                           f"{now.holder} (epoch {now.epoch})")
                return
            time.sleep(0.1)
        typer.echo(f"{before.holder} still holds the lease after {timeout_s:.0f}s "
                   "(is a backup instance running?)", err=True)
        raise typer.Exit(1)


@app.command("demo")
def demo(
    folder: Annotated[Path, typer.Option("--dir", help="Where the demo keeps its data "
                                         "(embedded PostgreSQL, simulation, lrm.toml).",
                                         file_okay=False)] = Path("demo-data"),
    once: Annotated[bool, typer.Option("--once", help="Set everything up, run the job, print "
                                       "the reports and the URLs, then stop.")] = False,
    tenants: Annotated[int, typer.Option(min=1, max=500)] = 3,
    agents_per_tenant: Annotated[int, typer.Option(min=5, max=5000)] = 20,
    days: Annotated[int, typer.Option(min=1, max=60)] = 3,
    seed: Annotated[int, typer.Option(min=0)] = 42,
) -> None:
    """The whole system on this machine: embedded PostgreSQL, simulated sources, the nightly
    job, sample reports and a primary/backup pair. Runs until Ctrl-C (or --once)."""
    from lrm.demo import DemoOptions, run_demo
    from lrm.observability import configure_logging

    configure_logging(json_output=False, level=30)

    def show(report: object) -> None:
        from lrm.cli_progress import print_report
        from lrm.reporting import Report

        assert isinstance(report, Report)
        print_report(report)

    options = DemoOptions(folder=folder, tenants=tenants, agents_per_tenant=agents_per_tenant,
                          days=days, seed=seed, once=once)
    raise typer.Exit(run_demo(options, typer.echo, show))


# ============================================================================ tokens
token_app = typer.Typer(no_args_is_help=True, help="API tokens for the report API.")
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="provider (everything) or tenant (its tenants).")],
    tenant: Annotated[list[int] | None, typer.Option(
        "--tenant", help="Tenant DBID a tenant token may see (repeatable).")] = None,
    description: Annotated[str, typer.Option(help="What the token is for.")] = "",
    config: ConfigOption = None,
) -> None:
    """Create a token and print it once (only its SHA-256 digest is stored)."""
    from lrm.store import tokens

    if role not in ("provider", "tenant"):
        raise typer.BadParameter("role is provider or tenant", param_hint="--role")
    if role == "tenant" and not tenant:
        raise typer.BadParameter("a tenant token needs at least one --tenant",
                                 param_hint="--tenant")
    if role == "provider" and tenant:
        raise typer.BadParameter("a provider token sees every tenant: drop --tenant",
                                 param_hint="--tenant")
    with _engine(settings_from(config)) as engine, engine.begin() as connection:
        token_id, secret = tokens.create_token(connection, role, list(tenant or []),
                                               description)
    typer.echo(secret)
    scope = "every tenant" if role == "provider" else "tenant(s) " + ", ".join(
        map(str, tenant or []))
    typer.echo(f"token {token_id} ({role}, {scope}) created: it is shown only this once",
               err=True)


@token_app.command("revoke")
def token_revoke(
    key: Annotated[str, typer.Argument(help="Token id, or the prefix shown by `token list`.")],
    config: ConfigOption = None,
) -> None:
    """Revoke a token (it stops working within seconds)."""
    from lrm.store import tokens

    with _engine(settings_from(config)) as engine, engine.begin() as connection:
        revoked = tokens.revoke_token(connection, key)
    if not revoked:
        typer.echo(f"no live token matches {key!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {revoked} token(s)")


@token_app.command("list")
def token_list(config: ConfigOption = None) -> None:
    """Tokens (never their secrets)."""
    from lrm.cli_progress import print_table
    from lrm.store import tokens

    with _engine(settings_from(config)) as engine, engine.connect() as connection:
        rows = tokens.list_tokens(connection)
    print_table(["id", "prefix", "role", "tenants", "description", "created", "revoked"],
                [[t.id, t.prefix, t.role, ",".join(map(str, t.tenant_ids)), t.description,
                  t.created_at.strftime("%Y-%m-%d %H:%M"),
                  t.revoked_at.strftime("%Y-%m-%d %H:%M") if t.revoked_at else ""]
                 for t in rows])


def main() -> None:
    """Entry point: run the app and turn lrm errors into messages and exit codes."""

    from lrm.allocator import limit_malloc_arenas
    from lrm.store.db import database_errors

    limit_malloc_arenas()  # before any thread starts: see lrm.allocator

    try:
        with database_errors():
            app()
    except LrmError as exc:
        typer.echo(f"lrm: error: {exc}", err=True)
        sys.exit(exc.exit_code)
