"""The `lrm` command line (SPEC §9). Each command builds the settings once and hands them on;
errors lrm understands are printed as one clear message with the SPEC's exit code."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

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


def main() -> None:
    """Entry point: run the app and turn lrm errors into messages and exit codes."""
    try:
        app()
    except LrmError as exc:
        typer.echo(f"lrm: error: {exc}", err=True)
        sys.exit(exc.exit_code)
