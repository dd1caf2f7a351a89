"""``hainet agents create``: a model proposes an agent from a purpose and examples.

Parses the options into a :class:`~hainet.agents.usecases.CreateConfig` and calls
:func:`~hainet.agents.usecases.create_and_store` (which loads the creator and the
agent's model, once when they are the same, and stores the best spec as a draft
unless ``--no-store``); writes the spec to ``--out`` or stdout.  Progress goes to
stderr; ``--json`` prints the whole measurement (every candidate's rate) for scripts.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from hainet.agents.create import CreateResult
from hainet.agents.spec import dump_spec
from hainet.agents.usecases import CreateConfig, create_and_store
from hainet.backends import BUNDLED
from hainet.cli._common import JsonOption, console, err_console, print_json, settings

__all__ = ["create"]


def _fmt(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.2f}"


def _table(result: CreateResult) -> Table:
    table = Table(title=f"candidates ({result.scorer} scorer, {result.n_tests} test cases)")
    for col in ("candidate", "valid", "name", "success", "held out", "note"):
        table.add_column(col)
    for c in result.candidates:
        note = c.error or (f"same spec as {c.duplicate_of}" if c.duplicate_of else "")
        if c.source == "baseline":
            note = "built from the examples, no model input"
        elif c.constrained and c.valid:
            note = "needed the grammar"
        mark = " *" if c is result.best else ""
        table.add_row(
            c.label + mark,
            "yes" if c.valid else "no",
            c.spec.name if c.spec else "-",
            _fmt(c.success_rate),
            _fmt(c.holdout_rate),
            note[:70],
        )
    return table


def create(
    ctx: typer.Context,
    purpose: str = typer.Option(..., "--purpose", help="What the agent does, in one sentence."),
    examples: Path = typer.Option(
        ..., "--examples", help="Examples of {input, output} (JSON list, JSONL or YAML)."
    ),
    creator_model: str = typer.Option(
        BUNDLED.name, "--creator-model", help="Model that proposes the agents."
    ),
    candidates: int = typer.Option(
        3, "--candidates", min=0, help="Model proposals (the baseline comes on top)."
    ),
    model: str | None = typer.Option(
        None, "--model", help="Model the agent runs and is tested on [the creator model]."
    ),
    author: str | None = typer.Option(
        None, "--author", envvar="HAINET_AUTHOR", help="Your key id, recorded as the author."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the split and the first proposal."),
    max_tests: int = typer.Option(
        24, "--max-tests", min=1, help="Test at most this many examples per candidate."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Write the best spec here (.yaml or .json)."
    ),
    no_store: bool = typer.Option(
        False, "--no-store", help="Do not save the agent in the store as a draft."
    ),
    unsafe_no_sandbox: bool = typer.Option(
        False, "--unsafe-no-sandbox", help="Run proposed tools without the sandbox."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Create an agent: a model proposes candidates, each is tested, the best is kept."""
    config = CreateConfig(
        purpose=purpose,
        examples=examples,
        creator_model=creator_model,
        model=model,
        candidates=candidates,
        author=author,
        seed=seed,
        max_tests=max_tests,
        store=not no_store,
        unsafe_no_sandbox=unsafe_no_sandbox,
    )

    def progress(message: str) -> None:
        err_console.print(message, highlight=False, soft_wrap=True)

    outcome = asyncio.run(create_and_store(config, settings(ctx), progress=progress))
    result, spec, stored = outcome.result, outcome.result.spec, outcome.stored
    if out is not None:
        dump_spec(spec, out)
    if as_json:
        answer: dict[str, Any] = result.to_dict()
        answer.update(stored=stored, out=str(out) if out else None)
        answer["spec"] = spec.model_dump(mode="json")
        print_json(answer)
        return
    err_console.print(_table(result))
    # With the YAML on stdout, the summary goes to stderr so a pipe gets only the spec.
    say = console if out is not None else err_console
    say.print(
        f"[bold]{spec.name}[/bold] ({spec.short_id}) from {result.best.label}: success rate "
        f"{result.best_rate:.2f} on {result.n_tests} test cases"
        + (
            f", {_fmt(result.best.holdout_rate)} on {result.n_holdout} held out"
            if result.n_holdout
            else ""
        )
        + f"; {result.proposals_valid}/{result.proposals} proposals valid"
        + ("; stored as a draft" if stored else ""),
        highlight=False,
        soft_wrap=True,
    )
    for note in result.notes:
        say.print(f"note: {note}", highlight=False, soft_wrap=True)
    if out is not None:
        console.print(f"wrote {out}", highlight=False)
    else:
        # Not to the console: YAML must reach a pipe unwrapped.
        typer.echo(dump_spec(spec), nl=False)
