"""``hainet agents evolve`` and ``hainet agents cross``: improve agents on your data.

Both take an agent (a spec file, or a stored agent by name, ``name@version`` or id
prefix), a training and a validation set of test cases, and call
:func:`~hainet.agents.usecases.evolve_agent` or
:func:`~hainet.agents.usecases.cross_agents` (which run the
:class:`~hainet.agents.evolve.Evolver` on a model and store a changed result as a
draft unless ``--no-store``); the result goes to ``--out``, and as YAML on stdout
when neither ``--out`` nor ``--json`` is given.  Progress goes to stderr.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer

from hainet.agents.operators import operator_names
from hainet.agents.spec import dump_spec
from hainet.agents.usecases import EvolveConfig, EvolveOutcome, cross_agents, evolve_agent
from hainet.cli._common import JsonOption, console, err_console, print_json, settings
from hainet.errors import ValidationError

__all__ = ["cross", "evolve"]

TrainOption = typer.Option(..., "--trainset", help="Test cases to learn from (JSON/JSONL/YAML).")
ValOption = typer.Option(
    ..., "--valset", help="Test cases a child must beat its parent on (JSON/JSONL/YAML)."
)
CandidatesOption = typer.Option(3, "--candidates", min=1, help="Children proposed per round.")
ModelOption = typer.Option(
    None,
    "--model",
    help="Model to run the agents on (default: the spec's first model, else the bundled one).",
)
RepeatsOption = typer.Option(1, "--repeats", min=1, help="Runs per case (seeds) per evaluation.")
SeedOption = typer.Option(0, "--seed", help="Seed of the operator draws and the runs.")
MaxSecondsOption = typer.Option(
    None, "--max-seconds", help="Stop proposing and evaluating children after this long."
)
OutOption = typer.Option(None, "--out", help="Write the resulting spec here (.yaml or .json).")
NoStoreOption = typer.Option(
    False, "--no-store", help="Do not save an evolved agent in the store as a draft."
)


def parse_operators(text: str | None) -> dict[str, float] | None:
    """``"few_shot=2,parser"`` -> ``{"few_shot": 2.0, "parser": 1.0}``."""
    if not text:
        return None
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition("=")
        known = operator_names()  # hainet's and installed plugins'
        if name not in known:
            raise ValidationError(
                f"--operators: unknown operator {name!r}; known: {', '.join(known)}"
            )
        try:
            weights[name] = float(weight) if weight else 1.0
        except ValueError:
            raise ValidationError(f"--operators: weight of {name} is not a number") from None
    return weights


def _log(event: str, data: dict[str, Any]) -> None:
    sid = str(data.get("spec_id", ""))[:12]
    if event == "evaluated":
        err_console.print(
            f"evaluated {data['name']} {data['version']} ({sid}) on {data['cases']} cases "
            f"with {data['model']}: {data['mean']:.3f}"
            + (" (cached)" if data.get("cached") else ""),
            highlight=False,
            soft_wrap=True,
        )
    elif event == "proposed":
        err_console.print(
            f"proposed {sid} by {data['operator']}: {data['rationale']}",
            highlight=False,
            soft_wrap=True,
        )
    elif event == "skipped":
        err_console.print(f"skipped {data['operator']}: {data['reason']}", highlight=False)
    elif event in ("accepted", "rejected"):
        err_console.print(
            f"{event} {sid} ({data.get('operator')}): {data['reason']}",
            highlight=False,
            soft_wrap=True,
        )


def _progress(message: str) -> None:
    err_console.print(message, highlight=False)


def _render(outcome: EvolveOutcome, *, out: Path | None, as_json: bool) -> None:
    result, parents, means = outcome.result, outcome.parents, outcome.val_means
    if out is not None:
        dump_spec(result, out)
    if as_json:
        print_json(
            {
                "changed": outcome.changed,
                "parents": [p.id for p in parents],
                "result": result.id,
                "name": result.name,
                "version": result.version,
                "lineage": result.lineage,
                "parent_scores": outcome.parent_scores,
                "score": outcome.score,
                "stored": outcome.stored,
                "out": str(out) if out else None,
                "events": [{"event": e, **d} for e, d in outcome.events],
                "spec": result.model_dump(mode="json"),
            }
        )
        return
    if outcome.changed:
        console.print(
            f"[bold]{result.name} {result.version}[/bold] ({result.short_id}), "
            f"validation score {means.get(result.id, 0.0):.3f} (parents: "
            + ", ".join(f"{p.version} {means.get(p.id, 0.0):.3f}" for p in parents)
            + ")"
            + ("; stored as a draft" if outcome.stored else ""),
            highlight=False,
        )
    else:
        console.print(
            f"no change: {result.name} {result.version} ({result.short_id}) stays; "
            "no candidate beat it by more than noise",
            highlight=False,
        )
    if out is not None:
        console.print(f"wrote {out}", highlight=False)
    else:
        # Not to the console: YAML must reach a pipe unwrapped.
        typer.echo(dump_spec(result), nl=False)


def evolve(
    ctx: typer.Context,
    agent: str = typer.Argument(..., help="Spec file (YAML/JSON) or stored agent."),
    trainset: Path = TrainOption,
    valset: Path = ValOption,
    candidates: int = CandidatesOption,
    rounds: int = typer.Option(1, "--rounds", min=1, help="Rounds, each on the last result."),
    model: str | None = ModelOption,
    switch_to: list[str] = typer.Option(
        [],
        "--switch-to",
        help="Another model the switch_model operator may move to (repeat); default: "
        "the agent's stored compatibility matrix, then the selector's answer for its purpose.",
    ),
    operators: str | None = typer.Option(
        None,
        "--operators",
        help="Operators and weights, e.g. 'few_shot=2,parser' (default: all, equal).",
    ),
    repeats: int = RepeatsOption,
    seed: int = SeedOption,
    max_seconds: float | None = MaxSecondsOption,
    out: Path | None = OutOption,
    no_store: bool = NoStoreOption,
    as_json: bool = JsonOption,
) -> None:
    """Evolve an agent: keep a changed copy only if it beats the original."""
    config = EvolveConfig(
        trainset=trainset,
        valset=valset,
        candidates=candidates,
        rounds=rounds,
        model=model,
        switch_to=tuple(switch_to),
        operators=parse_operators(operators),
        repeats=repeats,
        seed=seed,
        max_seconds=max_seconds,
        store=not no_store,
    )
    cfg = settings(ctx)
    outcome = asyncio.run(evolve_agent(agent, config, cfg, on_event=_log, progress=_progress))
    _render(outcome, out=out, as_json=as_json)


def cross(
    ctx: typer.Context,
    agents: list[str] = typer.Argument(..., help="Two or more spec files or stored agents."),
    trainset: Path = TrainOption,
    valset: Path = ValOption,
    candidates: int = CandidatesOption,
    model: str | None = ModelOption,
    repeats: int = RepeatsOption,
    seed: int = SeedOption,
    max_seconds: float | None = MaxSecondsOption,
    out: Path | None = OutOption,
    no_store: bool = NoStoreOption,
    as_json: bool = JsonOption,
) -> None:
    """Cross agents (a prompt from one, tools from another, all examples); keep the
    result only if it beats the best of them."""
    config = EvolveConfig(
        trainset=trainset,
        valset=valset,
        candidates=candidates,
        model=model,
        repeats=repeats,
        seed=seed,
        max_seconds=max_seconds,
        store=not no_store,
    )
    outcome = asyncio.run(cross_agents(agents, config, settings(ctx), on_event=_log))
    _render(outcome, out=out, as_json=as_json)
