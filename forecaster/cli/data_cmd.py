"""`forecaster data ...`: fetch, show and export the point-in-time panel (filled in below)."""
from __future__ import annotations

import typer

app = typer.Typer(help="Fetch, inspect and export the point-in-time market/macro panel.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="data")
