"""Run a hyper loop from one configuration object: what ``hainet hyper run`` does.

:func:`run_hyper` resolves the agent and the model, loads the data sets, assembles
the :class:`~hainet.hyper.control.Controls` (evaluator, data, policy, budget), the
proposer factory and the :class:`~hainet.hyper.loop.HyperLoop`, and runs or resumes
it::

    from hainet.hyper.session import HyperConfig, run_hyper
    run = asyncio.run(run_hyper(
        HyperConfig(agent="adder.yaml", trainset=Path("train.jsonl"),
                    valset=Path("val.jsonl"), testset=Path("test.jsonl"),
                    generations=10, risk_approval="high"),
        load_settings(),
    ))
    print(run.status, run.final)

For anything the configuration does not cover (your own proposer, meta proposer or
evaluator) build the :class:`~hainet.hyper.loop.HyperLoop` yourself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from hainet.agents.evolve import Budget, Evolver, load_cases
from hainet.agents.usecases import default_model, open_runners, resolve_agent
from hainet.config import Settings
from hainet.errors import ValidationError
from hainet.hyper.control import ApprovalLevel, Controls, Policy
from hainet.hyper.loop import EventHook, HyperLoop
from hainet.hyper.procedure import MetaProcedure, model_rewriter
from hainet.store import Store
from hainet.store.hyper import HyperRun, HyperStore

__all__ = ["APPROVAL_LEVELS", "HyperConfig", "run_hyper"]

APPROVAL_LEVELS: tuple[str, ...] = get_args(ApprovalLevel)
"""Values of :attr:`HyperConfig.risk_approval`, lowest first."""


@dataclass(frozen=True)
class HyperConfig:
    """What ``hainet hyper run`` is asked; each field is one of its flags."""

    agent: str | Path
    """A spec file (YAML/JSON) or a stored agent (id prefix, name, ``name@version``)."""
    trainset: Path
    """Cases to learn from."""
    valset: Path
    """Cases that select generations (never learned from)."""
    testset: Path
    """Cases for the final report only."""
    generations: int = 10
    """Generations to make (in all, when resuming)."""
    model: str | None = None
    """Model to run on [the spec's first required model, else the bundled one]."""
    risk_approval: ApprovalLevel = "high"
    """Changes at or above this risk wait for a human (low, medium, high, never)."""
    candidates: int = 2
    """Candidates per step, at the start (the meta procedure may change it)."""
    repeats: int = 1
    """Runs per case per evaluation."""
    allowed_tools: frozenset[str] = frozenset()
    """Built-in tools a spec may add [none]."""
    max_memory_mb: float | None = None
    """Reject generations whose peak RSS exceeds this."""
    max_latency_s: float | None = None
    """Reject generations slower than this per case."""
    max_seconds: float | None = None
    """Wall-time budget of the whole run."""
    seed: int = 0
    """Seed of the loop, the proposers and the runs."""
    resume: str | None = None
    """Continue this run (id or prefix) instead of starting one."""

    def __post_init__(self) -> None:
        if self.risk_approval not in APPROVAL_LEVELS:
            raise ValidationError(f"--risk-approval must be one of {', '.join(APPROVAL_LEVELS)}")

    @property
    def policy(self) -> Policy:
        return Policy(
            allowed_tools=self.allowed_tools,
            max_memory_mb=self.max_memory_mb,
            max_latency_s=self.max_latency_s,
            risk_approval=self.risk_approval,
        )

    @property
    def budget(self) -> Budget:
        return Budget(
            candidates=self.candidates, repeats=self.repeats, max_seconds=self.max_seconds
        )


async def run_hyper(
    config: HyperConfig, cfg: Settings, *, on_event: EventHook | None = None
) -> HyperRun:
    """Run (or, with ``config.resume``, continue) a hyper loop and return the run as
    stored.  Every generation is stored as it is made; ``on_event`` sees the loop's
    events (``run``, ``generation``, ``pending``, ``procedure``, ``stopped``)."""
    spec = resolve_agent(config.agent, cfg)
    train, val, test = (
        load_cases(config.trainset),
        load_cases(config.valset),
        load_cases(config.testset),
    )
    name = default_model(spec, config.model)
    seed = config.seed
    async with open_runners(cfg, name, [], seed) as (runner, _extra):
        controls = Controls(
            evaluator=Evolver(runner, seed=seed),
            valset=tuple(val),
            testset=tuple(test),
            policy=config.policy,
            budget=config.budget,
        )

        def proposers(proc: MetaProcedure) -> Evolver:
            return Evolver(
                runner,
                operators=proc.operators,
                rewrite_template=proc.rewrite_template,
                model_ranking=[name],
                seed=seed + proc.version,
            )

        with Store(cfg.db_url) as store:
            loop = HyperLoop(
                store,
                controls,
                proposers,
                trainset=train,
                procedure=MetaProcedure(candidates=config.candidates),
                seed=seed,
                rewriter=model_rewriter(runner.backend),
                on_event=on_event,
            )
            if config.resume:
                return await loop.resume(
                    HyperStore(store).resolve_run(config.resume),
                    generations=config.generations,
                )
            recorded = {
                "model": name,
                "agent_source": str(config.agent),
                "trainset": str(config.trainset),
                "valset": str(config.valset),
                "testset": str(config.testset),
            }
            return await loop.run(spec, generations=config.generations, config=recorded)
