"""What the commands share: settings from flags/env/TOML, the store, output helpers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from hainet.config import Settings, atomic_write, load_settings
from hainet.store import Store

# Rich assumes 80 columns when output is not a terminal; the runs table needs more.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)

HomeOption = typer.Option(
    None, "--home", envvar="HAINET_HOME", help="Where hainet keeps its files [~/.hainet]."
)
DbOption = typer.Option(
    None, "--db", envvar="HAINET_DB", help="SQLAlchemy URL of the store [SQLite in home]."
)
JsonOption = typer.Option(False, "--json", help="Print JSON instead of tables.")


class State:
    """Options given before the command (``hainet --home X bench``)."""

    home: Path | None = None
    db: str | None = None


state = State()


def settings(**flags: Any) -> Settings:
    return load_settings(home=state.home, db=state.db, **flags)


def open_store(cfg: Settings) -> Store:
    return Store(cfg.db_url)


def print_json(data: Any) -> None:
    # Plain print, not rich: JSON output is for machines and must not be wrapped.
    typer.echo(json.dumps(data, indent=2, default=str))


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, json.dumps(data, indent=2, default=str) + "\n")


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)
