"""What the commands share: settings from flags/env/TOML, the store, output helpers.

The options given before the command (``hainet --home X --db Y bench``) are not kept
in module state: the root callback puts a frozen :class:`GlobalOptions` in typer's
``ctx.obj``, and each command reads it back through :func:`settings`, so two
invocations in one process never share them.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

if TYPE_CHECKING:  # imported where used: `hainet --help` imports neither
    from hainet.config import Settings
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


@dataclass(frozen=True)
class GlobalOptions:
    """Options given before the command (``hainet --home X bench``), in ``ctx.obj``."""

    home: Path | None = None
    db: str | None = None


def settings(ctx: typer.Context, **flags: Any) -> Settings:
    """Settings for this invocation: the root's global options, then ``flags``.

    A sub-app invoked on its own (as tests do) has no root context, hence no
    :class:`GlobalOptions`: the environment and config.toml decide.
    """
    from hainet.config import load_settings

    opts = ctx.find_object(GlobalOptions) or GlobalOptions()
    return load_settings(home=opts.home, db=opts.db, **flags)


def open_store(cfg: Settings) -> Store:
    from hainet.store import Store

    return Store(cfg.db_url)


def print_json(data: Any) -> None:
    # Plain print, not rich: JSON output is for machines and must not be wrapped.
    typer.echo(json.dumps(data, indent=2, default=str))


def write_json(path: Path, data: Any) -> None:
    from hainet.config import atomic_write

    atomic_write(path, json.dumps(data, indent=2, default=str) + "\n")


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)
