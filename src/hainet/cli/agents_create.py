"""``hainet agents create``: a model proposes an agent from a purpose and examples.

Parses the options, loads the creator and the agent's model (once when they are the
same), calls :func:`hainet.agents.create.create_agent`, and writes the best spec: to
``--out``, and to the store as a draft (unless ``--no-store``).  Progress goes to
stderr; ``--json`` prints the whole measurement (every candidate's rate) for scripts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from hainet.agents.create import CreateResult, create_agent, load_examples
from hainet.agents.marketplace import Marketplace
from hainet.agents.spec import dump_spec
from hainet.agents.workflow import AgentRunner, open_runner
from hainet.backends import BUNDLED, Backend, Catalog, open_backend
from hainet.cli._common import JsonOption, console, err_console, open_store, print_json, settings
from hainet.config import Settings

__all__ = ["create"]


@contextlib.asynccontextmanager
async def _models(
    cfg: Settings, creator: str, model: str, *, unsafe_no_sandbox: bool
) -> AsyncIterator[tuple[Backend, AgentRunner]]:
    """The creator backend and a runner on the agent's model; one load when they are
    the same model (tests replace this with mocks)."""
    catalog = Catalog(cfg)
    async with open_runner(catalog.resolve(model), unsafe_no_sandbox=unsafe_no_sandbox) as runner:
        if creator == model:
            yield runner.backend, runner
            return
        backend = await asyncio.to_thread(open_backend, catalog.resolve(creator))
        try:
            yield backend, runner
        finally:
            await backend.aclose()


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
    cfg = settings()
    loaded = load_examples(examples)
    agent_model = model or creator_model

    def progress(message: str) -> None:
        err_console.print(message, highlight=False, soft_wrap=True)

    async def run() -> CreateResult:
        both = "" if agent_model == creator_model else f" and {agent_model}"
        progress(f"loading {creator_model}{both}")
        async with _models(
            cfg, creator_model, agent_model, unsafe_no_sandbox=unsafe_no_sandbox
        ) as (creator, runner):
            return await create_agent(
                purpose,
                loaded,
                creator=creator,
                runner=runner,
                model_name=agent_model,
                candidates=candidates,
                author=author,
                seed=seed,
                max_tests=max_tests,
                progress=progress,
            )

    result = asyncio.run(run())
    spec = result.spec
    stored: str | None = None
    if not no_store:
        with open_store(cfg) as store:
            market = Marketplace(store)
            stored = market.add(spec).status
            if result.best.report is not None:
                report = result.best.report
                market.agents.add_report(
                    spec.id,
                    model=report.model,
                    report=report.to_dict(),
                    success_rate=report.success_rate,
                    purpose="create",
                )
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
