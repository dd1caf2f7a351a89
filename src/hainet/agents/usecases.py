"""What the ``hainet agents`` commands do, as functions: find an agent, rank models
for it, evolve or cross agents and keep the result, create one and keep it.

Each function takes :class:`~hainet.config.Settings` (where the store and the
catalog are) and plain values, loads the models it needs, and returns a result
object; it prints nothing and raises :class:`~hainet.errors.HainetError`.  The CLI
parses flags into these arguments and renders what comes back::

    from hainet.agents.usecases import EvolveConfig, evolve_agent
    outcome = asyncio.run(evolve_agent(
        "adder.yaml",
        EvolveConfig(trainset=Path("train.jsonl"), valset=Path("val.jsonl"),
                     operators={"few_shot": 1.0}),
        load_settings(),
    ))
    print(outcome.changed, outcome.score, outcome.result.version)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hainet.agents.create import CreateResult, create_agent
from hainet.agents.create_examples import load_examples
from hainet.agents.evolve import Budget, EventHook, Evolver, load_cases
from hainet.agents.marketplace import Marketplace
from hainet.agents.spec import AgentSpec, TestCase, load_spec
from hainet.agents.workflow import AgentRunner, open_runner
from hainet.backends import BUNDLED, Backend, Catalog, open_backend
from hainet.config import Settings
from hainet.errors import HainetError, ValidationError
from hainet.select import select as select_models
from hainet.store import AgentStore, Store

__all__ = [
    "MAX_SWITCH_MODELS",
    "CreateConfig",
    "CreateOutcome",
    "EvolveConfig",
    "EvolveOutcome",
    "create_and_store",
    "cross_agents",
    "default_model",
    "evolve_agent",
    "is_spec_file",
    "open_runners",
    "rank_models",
    "resolve_agent",
]

Progress = Callable[[str], None]
"""Receives one line of progress for a human (the CLI prints it on stderr)."""

MAX_SWITCH_MODELS = 2  # each one is loaded for the whole evolution: bound the memory


# -- finding an agent and its models ---------------------------------------------


def is_spec_file(ref: str | Path) -> bool:
    """Whether ``ref`` names a spec file (by its suffix, or because the file exists)
    rather than a stored agent."""
    path = Path(ref)
    return path.suffix in (".yaml", ".yml", ".json") or path.is_file()


def resolve_agent(ref: str | Path, where: Settings | Store) -> AgentSpec:
    """The spec ``ref`` refers to: a spec file (YAML or JSON), else a stored agent by
    id prefix, name (its newest published version, else its newest draft) or
    ``name@version``, re-parsed and verified against its id.

    ``where`` is an open :class:`~hainet.store.Store`, or the settings of one; then
    the store is opened only when ``ref`` is not a file.  Raises
    :class:`~hainet.errors.ValidationError` for a bad file and
    :class:`~hainet.errors.StoreError` for an unknown agent.
    """
    if is_spec_file(ref):
        return load_spec(ref)
    if isinstance(where, Store):
        return Marketplace(where).get(str(ref))
    with Store(where.db_url) as store:
        return Marketplace(store).get(str(ref))


def default_model(spec: AgentSpec, model: str | None = None) -> str:
    """``model`` when given, else the spec's first required model, else the bundled one."""
    if model:
        return model
    return spec.requirements.models[0] if spec.requirements.models else BUNDLED.name


def rank_models(cfg: Settings, spec: AgentSpec, main: str) -> list[str]:
    """Models for ``switch_model`` when none are named, best first: the agent's
    stored compatibility matrix, then the selector's answer for its purpose.  Only
    models the catalog knows, ``main`` left out, at most :data:`MAX_SWITCH_MODELS`;
    nothing is measured here."""
    known = set(Catalog(cfg).names())
    ranked: list[str] = []
    with Store(cfg.db_url) as store:
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


@contextlib.asynccontextmanager
async def open_runners(
    cfg: Settings, main: str, others: Sequence[str] = (), seed: int = 0
) -> AsyncIterator[tuple[AgentRunner, dict[str, AgentRunner]]]:
    """A runner on the catalog model ``main`` and one on each of ``others`` (by
    name, ``main`` and repeats left out), all closed on exit."""
    catalog = Catalog(cfg)
    async with contextlib.AsyncExitStack() as stack:
        runner = await stack.enter_async_context(open_runner(catalog.resolve(main), seed=seed))
        extra: dict[str, AgentRunner] = {}
        for name in others:
            if name != main and name not in extra:
                extra[name] = await stack.enter_async_context(
                    open_runner(catalog.resolve(name), seed=seed)
                )
        yield runner, extra


def _cases(source: Path | Sequence[TestCase]) -> list[TestCase]:
    return load_cases(source) if isinstance(source, (str, Path)) else list(source)


# -- evolve and cross --------------------------------------------------------------


@dataclass(frozen=True)
class EvolveConfig:
    """How ``hainet agents evolve`` and ``cross`` improve the agents they are given."""

    trainset: Path | Sequence[TestCase]
    """Cases the operators learn from (a JSON, JSONL or YAML file, or the cases)."""
    valset: Path | Sequence[TestCase]
    """Cases a child must beat its parent on; never learned from."""
    candidates: int = 3
    """Children proposed per round."""
    rounds: int = 1
    """Rounds, each on the last result (evolve only)."""
    model: str | None = None
    """Model to run the agents on [the spec's first model, else the bundled one]."""
    switch_to: tuple[str, ...] = ()
    """Models ``switch_model`` may move to [:func:`rank_models`] (evolve only)."""
    operators: Mapping[str, float] | None = None
    """Operator weights [all, equal] (evolve only)."""
    repeats: int = 1
    """Runs per case (seeds) per evaluation."""
    seed: int = 0
    """Seed of the operator draws and the runs."""
    max_seconds: float | None = None
    """Stop proposing and evaluating children after this long."""
    store: bool = True
    """Save a changed result in the store as a draft."""

    @property
    def budget(self) -> Budget:
        return Budget(
            candidates=self.candidates, repeats=self.repeats, max_seconds=self.max_seconds
        )


@dataclass(frozen=True)
class EvolveOutcome:
    """What :func:`evolve_agent` or :func:`cross_agents` made."""

    parents: tuple[AgentSpec, ...]
    """The agents it started from."""
    result: AgentSpec
    """The new agent, or the (best) parent itself when nothing beat it."""
    stored: bool
    """Whether ``result`` was saved in the store as a draft."""
    val_means: dict[str, float] = field(default_factory=dict)
    """Validation mean by spec id, from each round's ``done`` event."""
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """Every event of the evolver, in order."""

    @property
    def changed(self) -> bool:
        return all(self.result is not p for p in self.parents)

    @property
    def score(self) -> float | None:
        return self.val_means.get(self.result.id)

    @property
    def parent_scores(self) -> dict[str, float | None]:
        return {p.id: self.val_means.get(p.id) for p in self.parents}


def _recorder(events: list[tuple[str, dict[str, Any]]], on_event: EventHook | None) -> EventHook:
    def hook(event: str, data: dict[str, Any]) -> None:
        events.append((event, data))
        if on_event is not None:
            on_event(event, data)

    return hook


def _outcome(
    cfg: Settings,
    parents: Sequence[AgentSpec],
    result: AgentSpec,
    events: list[tuple[str, dict[str, Any]]],
    *,
    store: bool,
) -> EvolveOutcome:
    stored = False
    if store and all(result is not p for p in parents):
        with Store(cfg.db_url) as db:
            AgentStore(db).add(result.model_dump(mode="json"))
        stored = True
    # Validation means from each round's "done" (the "evaluated" events mix in the
    # training-set runs that collect failures).
    means: dict[str, float] = {}
    for e, d in events:
        if e == "done":
            means.update(d["val_means"])
    return EvolveOutcome(tuple(parents), result, stored, means, events)


def _spec(agent: str | Path | AgentSpec, cfg: Settings) -> AgentSpec:
    return agent if isinstance(agent, AgentSpec) else resolve_agent(agent, cfg)


async def evolve_agent(
    agent: str | Path | AgentSpec,
    config: EvolveConfig,
    cfg: Settings,
    *,
    on_event: EventHook | None = None,
    progress: Progress | None = None,
) -> EvolveOutcome:
    """Evolve ``agent`` (a spec file, a stored agent by id prefix, name or
    ``name@version``, or a spec) for ``config.rounds`` rounds on its model and keep a
    changed copy only if it beats the original; store it as a draft unless
    ``config.store`` is false.  The parent is never modified.

    ``on_event`` sees each evolver event as it happens (they are in the outcome
    too); ``progress`` gets a line per round when there are several.
    """
    spec = _spec(agent, cfg)
    train, val = _cases(config.trainset), _cases(config.valset)
    weights = config.operators
    name = default_model(spec, config.model)
    switch_to = list(config.switch_to)
    use_switch = weights is None or weights.get("switch_model", 0) > 0
    if not switch_to and use_switch:
        switch_to = rank_models(cfg, spec, name)
    events: list[tuple[str, dict[str, Any]]] = []
    async with open_runners(cfg, name, switch_to, config.seed) as (runner, extra):
        evolver = Evolver(
            runner,
            operators=weights,
            runners=extra,
            model_ranking=[name, *switch_to],
            seed=config.seed,
            on_event=_recorder(events, on_event),
        )
        current = spec
        for i in range(config.rounds):
            if config.rounds > 1 and progress is not None:
                progress(f"round {i + 1}/{config.rounds}")
            current = await evolver.evolve(
                current, trainset=train, valset=val, budget=config.budget
            )
    return _outcome(cfg, [spec], current, events, store=config.store)


async def cross_agents(
    agents: Sequence[str | Path | AgentSpec],
    config: EvolveConfig,
    cfg: Settings,
    *,
    on_event: EventHook | None = None,
) -> EvolveOutcome:
    """Cross ``agents`` (a prompt from one, tools from another, all examples) on the
    first one's model; keep the result only if it beats the best of them, and store
    it as a draft unless ``config.store`` is false.  ``config.rounds``,
    ``switch_to`` and ``operators`` are not used."""
    if len(agents) < 2:
        raise ValidationError("cross needs at least two agents")
    specs = [_spec(a, cfg) for a in agents]
    train, val = _cases(config.trainset), _cases(config.valset)
    name = default_model(specs[0], config.model)
    events: list[tuple[str, dict[str, Any]]] = []
    async with open_runners(cfg, name, [], config.seed) as (runner, _):
        evolver = Evolver(runner, seed=config.seed, on_event=_recorder(events, on_event))
        result = await evolver.cross(specs, trainset=train, valset=val, budget=config.budget)
    return _outcome(cfg, specs, result, events, store=config.store)


# -- create ------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateConfig:
    """What ``hainet agents create`` is asked."""

    purpose: str
    """What the agent does, in one sentence."""
    examples: Path
    """Examples of ``{input, output}`` (JSON list, JSONL or YAML)."""
    creator_model: str = BUNDLED.name
    """Model that proposes the agents."""
    model: str | None = None
    """Model the agent runs and is tested on [the creator model]."""
    candidates: int = 3
    """Model proposals (the baseline comes on top)."""
    author: str | None = None
    """Key id recorded as the author."""
    seed: int = 0
    """Seed of the split and the first proposal."""
    max_tests: int = 24
    """Test at most this many examples per candidate."""
    store: bool = True
    """Save the best agent (and its test report) in the store as a draft."""
    unsafe_no_sandbox: bool = False
    """Run proposed tools without the sandbox."""

    @property
    def agent_model(self) -> str:
        return self.model or self.creator_model


@dataclass(frozen=True)
class CreateOutcome:
    """What :func:`create_and_store` made and where it went."""

    result: CreateResult
    """Every candidate and its measurement; ``result.spec`` is the best."""
    stored: str | None
    """The stored agent's status (``"draft"``), or None when not stored."""


@contextlib.asynccontextmanager
async def _creator_and_runner(
    cfg: Settings, creator: str, model: str, *, unsafe_no_sandbox: bool
) -> AsyncIterator[tuple[Backend, AgentRunner]]:
    """The creator backend and a runner on the agent's model; one load when they are
    the same model."""
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


async def create_and_store(
    config: CreateConfig, cfg: Settings, *, progress: Progress | None = None
) -> CreateOutcome:
    """Have ``config.creator_model`` propose agents for ``config.purpose``, test
    each (see :func:`~hainet.agents.create.create_agent`), and store the best with its
    test report as a draft unless ``config.store`` is false."""
    examples = load_examples(config.examples)
    say = progress or (lambda _msg: None)
    creator_model, agent_model = config.creator_model, config.agent_model
    both = "" if agent_model == creator_model else f" and {agent_model}"
    say(f"loading {creator_model}{both}")
    async with _creator_and_runner(
        cfg, creator_model, agent_model, unsafe_no_sandbox=config.unsafe_no_sandbox
    ) as (creator, runner):
        result = await create_agent(
            config.purpose,
            examples,
            creator=creator,
            runner=runner,
            model_name=agent_model,
            candidates=config.candidates,
            author=config.author,
            seed=config.seed,
            max_tests=config.max_tests,
            progress=progress,
        )
    stored: str | None = None
    if config.store:
        with Store(cfg.db_url) as store:
            market = Marketplace(store)
            stored = market.add(result.spec).status
            report = result.best.report
            if report is not None:
                market.agents.add_report(
                    result.spec.id,
                    model=report.model,
                    report=report,
                    success_rate=report.success_rate,
                    purpose="create",
                )
    return CreateOutcome(result, stored)
