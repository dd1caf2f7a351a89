"""The ``hainet`` command line: thin commands over the library.

Library code raises :class:`~hainet.errors.HainetError`; only :func:`main` turns it
into a one-line message on stderr and a non-zero exit code.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from difflib import get_close_matches
from importlib import import_module
from pathlib import Path
from typing import Any

import typer

# typer 0.29 vendors its own click (pinned in pyproject): its group API takes these types.
from typer import _click as click
from typer.core import TyperCommand, TyperGroup

from hainet.cli._common import DbOption, GlobalOptions, HomeOption, err_console
from hainet.errors import HainetError

__all__ = ["COMMANDS", "app", "main"]


@dataclass(frozen=True)
class Lazy:
    """A command whose module is imported only when it runs (or its own help is asked
    for): `hainet bench` never imports the report's matplotlib or the agents' rooms."""

    target: str  # "module:attribute": a command function or a typer group
    help: str  # the one line `hainet --help` shows; a test keeps it equal to the command's

    def load(self) -> typer.Typer | Callable[..., Any]:
        module, _, attribute = self.target.partition(":")
        loaded: typer.Typer | Callable[..., Any] = getattr(import_module(module), attribute)
        return loaded


# In the order `hainet --help` lists them.
COMMANDS: dict[str, Lazy] = {
    "bench": Lazy(
        "hainet.cli.bench:bench",
        "Run capability suites on models and configurations; store speed, memory and scores.",
    ),
    "select": Lazy(
        "hainet.cli.select:select",
        "Recommend a stored model configuration (reads measurements, runs nothing).",
    ),
    "report": Lazy(
        "hainet.cli.report:report",
        "Write charts (PNG), analysis.json and a self-contained report.html.",
    ),
    "models": Lazy("hainet.cli.models:app", "Known models: the bundled one and yours."),
    "runs": Lazy("hainet.cli.runs:app", "Stored runs."),
    "sandbox": Lazy("hainet.cli.sandbox:app", "The sandbox for untrusted code."),
    "agents": Lazy(
        "hainet.cli.agents_app:app", "Agents: validate, run, test, publish, discover, rate."
    ),
    "hyper": Lazy("hainet.cli.hyper:app", "Self-improving agents (HyperAgents)."),
    "hub": Lazy("hainet.cli.hub:app", "Run a hub where agents are shared as signed records."),
    "results": Lazy("hainet.cli.results:app", "Share bench results with a hub."),
    "net": Lazy("hainet.cli.net:app", "Ask the network of hubs (its DHT)."),
}


def load_command(name: str) -> click.Command:
    """The click command ``name`` of :data:`COMMANDS`, its module imported now."""
    target = COMMANDS[name].load()
    command: click.Command
    if isinstance(target, typer.Typer):
        command = typer.main.get_group(target)
    else:
        single = typer.Typer(add_completion=False)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


class _LazyGroup(TyperGroup):
    _help_only = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        loaded = super().list_commands(ctx)
        return [*COMMANDS, *(n for n in loaded if n not in COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in COMMANDS:
            return command
        if self._help_only:  # the list in `hainet --help`: name and one line, no import
            return TyperCommand(cmd_name, help=COMMANDS[cmd_name].help)
        loaded = load_command(cmd_name)
        self.add_command(loaded, cmd_name)
        return loaded

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._help_only = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._help_only = False

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and args[0] not in COMMANDS:
            # typer suggests among the commands already loaded; offer every one
            matches = get_close_matches(args[0], self.list_commands(ctx))
            if matches and not ctx.resilient_parsing:
                hint = ", ".join(repr(m) for m in matches)
                ctx.fail(f"No such command {args[0]!r}. Did you mean {hint}?")
        return super().resolve_command(ctx, args)


app = typer.Typer(
    name="hainet",
    cls=_LazyGroup,
    help="Test, compare and select LLMs on your own hardware.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(ctx: typer.Context, home: Path | None = HomeOption, db: str | None = DbOption) -> None:
    ctx.obj = GlobalOptions(home=home, db=db)


# Options that take several values: `--models A B` as well as `--models A --models B`.
MULTI_VALUE = {
    "--models",
    "-m",
    "--suites",
    "-s",
    "--quantizations",
    "-q",
    "--flash-attention",
    "--temperatures",
    "-t",
    "--runs",
}


def expand_multi(args: list[str]) -> list[str]:
    out: list[str] = []
    current: str | None = None
    for arg in args:
        if arg.startswith("-") and not _is_number(arg):
            current = arg if arg in MULTI_VALUE else None
            out.append(arg)
        elif current is not None and out and out[-1] != current:
            out.extend([current, arg])
        else:
            out.append(arg)
    return out


def _is_number(arg: str) -> bool:
    try:
        float(arg)
    except ValueError:
        return False
    return True


def main(argv: list[str] | None = None) -> None:
    args = expand_multi(list(sys.argv[1:] if argv is None else argv))
    try:
        # Standalone mode: typer prints usage errors itself and exits with 2.
        app(args=args, prog_name="hainet")
    except HainetError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
