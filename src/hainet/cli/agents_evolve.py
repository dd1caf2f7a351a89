"""``hainet agents evolve`` and ``hainet agents cross``: improve agents on your data.

Both read an agent (a spec file, or a stored agent by name, ``name@version`` or id
prefix), a training and a validation set of test cases, run the
:class:`~hainet.agents.evolve.Evolver` on a model, and write the result: to
``--out``, to the store as a draft (unless ``--no-store``), and as YAML on stdout
when neither ``--out`` nor ``--json`` is given.  Progress goes to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import typer

from hainet.agents.evolve import OPERATORS, Budget, Evolver, load_cases
from hainet.agents.marketplace import Marketplace
from hainet.agents.spec import AgentSpec, dump_spec, load_spec, parse_spec
from hainet.agents.workflow import AgentRunner, open_runner
from hainet.backends import BUNDLED, Catalog
from hainet.cli._common import JsonOption, console, err_console, open_store, print_json, settings
from hainet.config import Settings
from hainet.errors import HainetError, ValidationError
from hainet.select import select as select_models
from hainet.store import AgentStore

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


def _load_agent(ref: str, cfg: Settings) -> AgentSpec:
    """A spec file when ``ref`` is one, else a stored agent."""
    path = Path(ref)
    if path.suffix in (".yaml", ".yml", ".json") or path.exists():
        return load_spec(path)
    with open_store(cfg) as store:
        record = AgentStore(store).find(ref)
    spec = parse_spec(record.spec, source=f"stored agent {ref}")
    spec.verify()
    return spec


def parse_operators(text: str | None) -> dict[str, float] | None:
    """``"few_shot=2,parser"`` -> ``{"few_shot": 2.0, "parser": 1.0}``."""
    if not text:
        return None
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition("=")
        if name not in OPERATORS:
            raise ValidationError(
                f"--operators: unknown operator {name!r}; known: {', '.join(OPERATORS)}"
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


@contextlib.asynccontextmanager
async def _runners(
    cfg: Settings, main: str, others: Sequence[str], seed: int
) -> AsyncIterator[tuple[AgentRunner, dict[str, AgentRunner]]]:
    catalog = Catalog(cfg)
    async with contextlib.AsyncExitStack() as stack:
        runner = await stack.enter_async_context(open_runner(catalog.resolve(main), seed=seed))
        extra = {}
        for name in others:
            if name != main and name not in extra:
                extra[name] = await stack.enter_async_context(
                    open_runner(catalog.resolve(name), seed=seed)
                )
        yield runner, extra


MAX_SWITCH_MODELS = 2  # each one is loaded for the whole evolution: bound the memory


def model_ranking(cfg: Settings, spec: AgentSpec, main: str) -> list[str]:
    """Models for ``switch_model`` when none are named, best first: the agent's
    stored compatibility matrix, then the selector's answer for its purpose.  Only
    models the catalog knows; nothing is measured here."""
    known = set(Catalog(cfg).names())
    ranked: list[str] = []
    with open_store(cfg) as store:
        for cell in Marketplace(store).recommend_model(spec.id, top=5):
            ranked.append(cell["model"])
        try:
            answer = select_models(store, describe=spec.purpose, top=3, home=cfg.home)
        except HainetError:  # nothing benchmarked yet: the matrix is all there is
            answer = None
    if answer is not None:
        ranked.append(answer["selected_model"])
        ranked.extend(a["selected_model"] for a in answer["alternatives"])
    out: list[str] = []
    for name in ranked:
        if name in known and name != main and name not in out:
            out.append(name)
    return out[:MAX_SWITCH_MODELS]


def _default_model(spec: AgentSpec, model: str | None) -> str:
    if model:
        return model
    return spec.requirements.models[0] if spec.requirements.models else BUNDLED.name


def _finish(
    cfg: Settings,
    parents: Sequence[AgentSpec],
    result: AgentSpec,
    events: list[tuple[str, dict[str, Any]]],
    *,
    out: Path | None,
    no_store: bool,
    as_json: bool,
) -> None:
    changed = all(result is not p for p in parents)
    stored = False
    if changed and not no_store:
        with open_store(cfg) as store:
            AgentStore(store).add(result.model_dump(mode="json"))
        stored = True
    if out is not None:
        dump_spec(result, out)
    # Validation means from each round's "done" (the "evaluated" events mix in the
    # training-set runs that collect failures).
    means: dict[str, float] = {}
    for e, d in events:
        if e == "done":
            means.update(d["val_means"])
    if as_json:
        print_json(
            {
                "changed": changed,
                "parents": [p.id for p in parents],
                "result": result.id,
                "name": result.name,
                "version": result.version,
                "lineage": result.lineage,
                "parent_scores": {p.id: means.get(p.id) for p in parents},
                "score": means.get(result.id),
                "stored": stored,
                "out": str(out) if out else None,
                "events": [{"event": e, **d} for e, d in events],
                "spec": result.model_dump(mode="json"),
            }
        )
        return
    if changed:
        console.print(
            f"[bold]{result.name} {result.version}[/bold] ({result.short_id}), "
            f"validation score {means.get(result.id, 0.0):.3f} (parents: "
            + ", ".join(f"{p.version} {means.get(p.id, 0.0):.3f}" for p in parents)
            + ")"
            + ("; stored as a draft" if stored else ""),
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
    cfg = settings()
    spec = _load_agent(agent, cfg)
    train, val = load_cases(trainset), load_cases(valset)
    weights = parse_operators(operators)
    budget = Budget(candidates=candidates, repeats=repeats, max_seconds=max_seconds)
    name = _default_model(spec, model)
    use_switch = weights is None or weights.get("switch_model", 0) > 0
    if not switch_to and use_switch:
        switch_to = model_ranking(cfg, spec, name)
    events: list[tuple[str, dict[str, Any]]] = []

    def on_event(event: str, data: dict[str, Any]) -> None:
        events.append((event, data))
        _log(event, data)

    async def run() -> AgentSpec:
        async with _runners(cfg, name, switch_to, seed) as (runner, extra):
            evolver = Evolver(
                runner,
                operators=weights,
                runners=extra,
                model_ranking=[name, *switch_to],
                seed=seed,
                on_event=on_event,
            )
            current = spec
            for i in range(rounds):
                if rounds > 1:
                    err_console.print(f"round {i + 1}/{rounds}", highlight=False)
                current = await evolver.evolve(current, trainset=train, valset=val, budget=budget)
            return current

    result = asyncio.run(run())
    _finish(cfg, [spec], result, events, out=out, no_store=no_store, as_json=as_json)


def cross(
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
    cfg = settings()
    if len(agents) < 2:
        raise ValidationError("cross needs at least two agents")
    specs = [_load_agent(a, cfg) for a in agents]
    train, val = load_cases(trainset), load_cases(valset)
    budget = Budget(candidates=candidates, repeats=repeats, max_seconds=max_seconds)
    name = _default_model(specs[0], model)
    events: list[tuple[str, dict[str, Any]]] = []

    def on_event(event: str, data: dict[str, Any]) -> None:
        events.append((event, data))
        _log(event, data)

    async def run() -> AgentSpec:
        async with _runners(cfg, name, [], seed) as (runner, _):
            evolver = Evolver(runner, seed=seed, on_event=on_event)
            return await evolver.cross(specs, trainset=train, valset=val, budget=budget)

    result = asyncio.run(run())
    _finish(cfg, specs, result, events, out=out, no_store=no_store, as_json=as_json)
