"""`lrm simulate`: build and serve a simulated contact centre."""

from __future__ import annotations

import typer

simulate_app = typer.Typer(help="Simulated sources: IDBs, configuration gateway, GVP pair.")
