"""The ``hainet`` command line: thin commands over the library.

Library code raises :class:`~hainet.errors.HainetError`; only :func:`main` turns it
into a one-line message on stderr and a non-zero exit code.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from hainet.cli import agents as _agents
from hainet.cli import agents_create as _agents_create
from hainet.cli import agents_evolve as _agents_evolve
from hainet.cli import agents_hub as _agents_hub
from hainet.cli import bench as _bench
from hainet.cli import hub as _hub
from hainet.cli import hyper as _hyper
from hainet.cli import models as _models
from hainet.cli import report as _report
from hainet.cli import results as _results
from hainet.cli import runs as _runs
from hainet.cli import sandbox as _sandbox
from hainet.cli import select as _select
from hainet.cli._common import DbOption, GlobalOptions, HomeOption, err_console
from hainet.errors import HainetError

__all__ = ["app", "main"]

app = typer.Typer(
    name="hainet",
    help="Test, compare and select LLMs on your own hardware.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(ctx: typer.Context, home: Path | None = HomeOption, db: str | None = DbOption) -> None:
    ctx.obj = GlobalOptions(home=home, db=db)


app.command("bench")(_bench.bench)
app.command("select")(_select.select)
app.command("report")(_report.report)
app.add_typer(_models.app, name="models")
app.add_typer(_runs.app, name="runs")
app.add_typer(_sandbox.app, name="sandbox")
app.add_typer(_agents.app, name="agents")
app.add_typer(_hyper.app, name="hyper")
app.add_typer(_hub.app, name="hub")
app.add_typer(_results.app, name="results")
_agents.app.command("create")(_agents_create.create)
_agents.app.command("evolve")(_agents_evolve.evolve)
_agents.app.command("cross")(_agents_evolve.cross)
_agents.app.command("push")(_agents_hub.push)
_agents.app.command("pull")(_agents_hub.pull)

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
