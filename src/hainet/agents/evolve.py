"""Evolution: propose changed agents, keep a child only if it beats its parent.

::

    evolver = Evolver(runner, seed=0, on_event=print)
    child = await evolver.evolve(spec, trainset=train, valset=val, budget=Budget(candidates=3))
    child is spec          # True when no child beat the parent by more than noise

One :meth:`Evolver.evolve` round: evaluate the parent on the validation set, run it
on the training set to collect failures, draw ``budget.candidates`` operators by
weight (a seeded RNG, so a round is reproducible), let each propose a child
(:mod:`hainet.agents.operators`: hainet's operators or a plugin's, found by name in
the registry), evaluate every child on the validation set and
keep the best one that :meth:`Evolver.compare` accepts.

**More than noise.**  Parent and child are scored on the same validation cases, so
the comparison is paired: the per-case differences are resampled (paired bootstrap)
and a child is accepted only when the lower end of the two-sided ``confidence``
interval of the mean difference is above zero.  A tie, or one lucky case out of
ten, is rejected; ``repeats`` > 1 averages each case over several seeds first.

**Never mutates.**  Specs are frozen; every child is a new spec with its patch
version bumped, ``lineage = [parent ids]`` and ``created_by = "ai_generated"``.
**Events** (``on_event(name, data)``, for logs and audits): ``evaluated`` (a spec's
mean on some cases, ``cached`` when not re-run), ``proposed``, ``skipped`` (an
operator had nothing new to change), ``accepted`` / ``rejected`` (with the delta and
its interval) and ``done`` (the result and whether it changed).

The test set is never seen here: selection uses the validation set and failures
come from the training set only.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from hainet.agents import operators as ops
from hainet.agents.datafiles import read_items
from hainet.agents.operators import (
    DEFAULT_REWRITE_TEMPLATE,
    ProposalContext,
    bump_version,
    get_operator,
    operator_names,
)
from hainet.agents.spec import AgentSpec, TestCase, canonical_json, now
from hainet.agents.testing import CaseOutcome, TestReport, test_agent
from hainet.agents.workflow import AgentRunner
from hainet.backends.base import Backend
from hainet.errors import ValidationError

__all__ = [
    "DEFAULT_REWRITE_TEMPLATE",
    "OPERATORS",
    "Budget",
    "Evaluation",
    "Evolver",
    "Proposal",
    "Verdict",
    "load_cases",
    "paired_bootstrap",
]

# The operators an Evolver draws from when none are given.  Any registered operator
# (a plugin's too) may be named; a plugin's is opt-in, so installing a package does
# not change what an unconfigured run does or the default meta procedure's hash.
OPERATORS: tuple[str, ...] = (
    "rewrite_prompt",
    "few_shot",
    "params",
    "samples",
    "parser",
    "add_tool",
    "switch_model",
)

# Tries before an operator that keeps proposing nothing new is dropped for the round:
# a model call is expensive, a rule-based proposal is not.
_RETRIES_MODEL = 2
_RETRIES_RULE = 4

EventHook = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Budget:
    candidates: int = 3
    """Children proposed per evolve() call."""
    repeats: int = 1
    """Runs per case (different seeds) when evaluating."""
    bootstrap: int = 2000
    """Paired-bootstrap resamples."""
    confidence: float = 0.9
    """A child is kept only if the lower bound of the CI of (child - parent) > 0."""
    max_seconds: float | None = None
    """Stop proposing and evaluating children after this long (what is done counts)."""

    def __post_init__(self) -> None:
        if self.candidates < 1 or self.repeats < 1 or self.bootstrap < 1:
            raise ValidationError("budget: candidates, repeats and bootstrap must be >= 1")
        if not 0 < self.confidence < 1:
            raise ValidationError(f"budget: confidence must be in (0, 1), got {self.confidence}")


@dataclass(frozen=True)
class Evaluation:
    spec_id: str
    scores: tuple[float, ...]
    """Per case, in the order of the cases given (mean over repeats)."""
    mean: float
    report: TestReport
    case_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    delta: float
    """Mean of (child - parent) over the cases."""
    ci_low: float
    ci_high: float
    reason: str


@dataclass(frozen=True)
class Proposal:
    operator: str
    spec: AgentSpec
    """The child: already versioned, with lineage and created_by set."""
    rationale: str


def paired_bootstrap(
    diffs: Sequence[float], *, resamples: int, confidence: float, rng: random.Random
) -> tuple[float, float, float]:
    """Mean of ``diffs`` and its two-sided percentile bootstrap interval.

    hainet's one bootstrap: of per-case differences (paired, :meth:`Evolver.compare`)
    or of plain scores (the self-improving loop's test-set interval).  Each resample
    draws ``len(diffs)`` values with ``rng.randrange``; the bounds are the sorted
    means at ``int(tail * resamples)`` and ``int((1 - tail) * resamples) - 1``.
    """
    n = len(diffs)
    mean = statistics.fmean(diffs)
    if all(d == diffs[0] for d in diffs):
        return mean, mean, mean  # every resample has the same mean
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    tail = (1 - confidence) / 2
    low = means[min(resamples - 1, int(tail * resamples))]
    high = means[max(0, min(resamples - 1, int((1 - tail) * resamples) - 1))]
    return mean, low, high


def load_cases(path: str | Path) -> list[TestCase]:
    """Test cases from a JSON list, JSONL (one per line) or YAML list.

    Errors name the file, the line (JSONL) or item, and the field.
    """
    p = Path(path)
    items = read_items(p, what="test cases")
    cases: list[TestCase] = []
    for item, where in items:
        if not isinstance(item, dict):
            raise ValidationError(f"{where}: a test case is a mapping, got {type(item).__name__}")
        try:
            cases.append(TestCase.model_validate(item))
        except PydanticValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(x) for x in err["loc"])
            raise ValidationError(f"{where}: {field}: {err['msg']}") from None
    if not cases:
        raise ValidationError(f"{p}: no test cases")
    ids = [c.id for c in cases]
    dup = next((i for i in ids if ids.count(i) > 1), None)
    if dup is not None:
        raise ValidationError(f"{p}: duplicate test id {dup!r}")
    return cases


def _child(spec: AgentSpec, parents: Sequence[AgentSpec]) -> AgentSpec:
    """Version, lineage and authorship of an evolved spec."""
    base = max(parents, key=lambda s: tuple(int(x) for x in s.version.split(".")))
    return spec.derive(
        version=bump_version(base.version),
        lineage=[p.id for p in parents],
        created_by="ai_generated",
        created_at=now(),
        updated_at=None,
    )


class Evolver:
    """Proposes, evaluates and selects agent specs.  See the module docstring."""

    def __init__(
        self,
        runner: AgentRunner,
        *,
        proposer: Backend | None = None,
        operators: Mapping[str, float] | None = None,
        rewrite_template: str | None = None,
        runners: Mapping[str, AgentRunner] | None = None,
        model_ranking: Sequence[str] | None = None,
        seed: int = 0,
        on_event: EventHook | None = None,
        cache_evaluations: bool = True,
    ) -> None:
        weights = dict(operators) if operators is not None else dict.fromkeys(OPERATORS, 1.0)
        known = operator_names()
        unknown = sorted(set(weights) - set(known))
        if unknown:
            raise ValidationError(
                f"unknown operator(s) {', '.join(unknown)}; known: {', '.join(known)}"
            )
        if any(w < 0 for w in weights.values()) or not any(w > 0 for w in weights.values()):
            raise ValidationError("operator weights must be >= 0 with at least one > 0")
        self.runner = runner
        self.proposer = proposer or runner.backend
        self.weights = {k: float(v) for k, v in weights.items() if v > 0}
        self.rewrite_template = rewrite_template or DEFAULT_REWRITE_TEMPLATE
        self.runners = dict(runners or {})
        self.model_ranking = list(model_ranking or [])
        self.seed = seed
        self.rng = random.Random(seed)
        self._on_event = on_event
        # Runs are seeded and backends keep no state between requests, so the same
        # spec on the same cases, seeds and runner scores the same: a parent kept over
        # several rounds, or a child proposed again, is not run twice.
        self._cache: dict[tuple[str, int, str, int], Evaluation] | None = (
            {} if cache_evaluations else None
        )

    # -- plumbing ---------------------------------------------------------------

    def _emit(self, event: str, data: dict[str, Any]) -> None:
        if self._on_event is not None:
            self._on_event(event, data)

    def _emit_evaluated(
        self, spec: AgentSpec, evaluation: Evaluation, cases: int, *, cached: bool
    ) -> None:
        self._emit(
            "evaluated",
            {
                "spec_id": spec.id,
                "name": spec.name,
                "version": spec.version,
                "mean": evaluation.mean,
                "cases": cases,
                "model": evaluation.report.model,
                "cached": cached,
            },
        )

    def runner_for(self, spec: AgentSpec) -> AgentRunner:
        """``runners[model]`` for the spec's first required model if there is one."""
        models = spec.requirements.models
        if models and models[0] in self.runners:
            return self.runners[models[0]]
        return self.runner

    def _draw(self, available: Mapping[str, float]) -> str:
        names = sorted(available)  # sorted: the draw must not depend on dict order
        return self.rng.choices(names, weights=[available[n] for n in names])[0]

    # -- the four steps ---------------------------------------------------------

    async def propose(
        self,
        spec: AgentSpec,
        operator: str,
        *,
        trainset: Sequence[TestCase],
        failures: Sequence[CaseOutcome],
    ) -> Proposal | None:
        """One child of ``spec`` by ``operator``; None when it has nothing to change."""
        ctx = ProposalContext(
            rng=self.rng,
            proposer=self.proposer,
            trainset=trainset,
            failures=failures,
            rewrite_template=self.rewrite_template,
            current_model=self.runner.model_name,
            ranking=self.model_ranking,
            available={**self.runners, self.runner.model_name: self.runner},
        )
        change = await get_operator(operator).propose(spec, ctx)
        if change is None or change.spec.id == spec.id:
            return None
        return Proposal(operator, _child(change.spec, [spec]), change.rationale)

    async def evaluate(
        self, spec: AgentSpec, cases: Sequence[TestCase], *, repeats: int = 1
    ) -> Evaluation:
        """Score ``spec`` on ``cases``, each run ``repeats`` times (seeds seed..seed+n-1)."""
        if not cases:
            raise ValidationError(f"agent {spec.name}: no cases to evaluate on")
        runner = self.runner_for(spec)
        key = (
            spec.id,
            id(runner),
            canonical_json([c.model_dump(mode="json") for c in cases]),
            repeats,
        )
        cached = self._cache.get(key) if self._cache is not None else None
        if cached is not None:
            self._emit_evaluated(spec, cached, len(cases), cached=True)
            return cached
        seeds = tuple(self.seed + i for i in range(repeats))
        report = await test_agent(spec, runner, cases=cases, seeds=seeds)
        if report.unscored:
            # A case nobody could score is neither a pass nor a fail: a paired
            # comparison with it missing (or counted as 0) would not be fair.
            first = report.unscored[0]
            raise ValidationError(
                f"agent {spec.name}: {len(report.unscored)} run(s) could not be scored "
                f"(first: {first.test_id}: {first.error}); cannot evaluate",
                hint="fix the scorer's sandbox or judge, or drop those cases",
            )
        per_case = report.by_case()
        scores = tuple(statistics.fmean(per_case.get(c.id, [0.0])) for c in cases)
        evaluation = Evaluation(
            spec_id=spec.id,
            scores=scores,
            mean=statistics.fmean(scores),
            report=report,
            case_ids=tuple(c.id for c in cases),
        )
        if self._cache is not None:
            self._cache[key] = evaluation
        self._emit_evaluated(spec, evaluation, len(cases), cached=False)
        return evaluation

    def compare(self, parent: Evaluation, child: Evaluation, budget: Budget) -> Verdict:
        """Paired bootstrap over cases: accept only if the CI's lower bound is above 0."""
        if len(parent.scores) != len(child.scores) or not parent.scores:
            raise ValidationError(
                f"cannot compare evaluations on {len(parent.scores)} and "
                f"{len(child.scores)} cases: they must be scored on the same cases"
            )
        if parent.case_ids and child.case_ids and parent.case_ids != child.case_ids:
            raise ValidationError("cannot compare evaluations on different cases")
        diffs = [c - p for p, c in zip(parent.scores, child.scores, strict=True)]
        # A fixed seed per comparison: the same two evaluations always get the same verdict.
        rng = random.Random(f"{self.seed}:{parent.spec_id}:{child.spec_id}")
        delta, low, high = paired_bootstrap(
            diffs, resamples=budget.bootstrap, confidence=budget.confidence, rng=rng
        )
        ci = f"{budget.confidence:.0%} CI [{low:+.3f}, {high:+.3f}]"
        if low > 0:
            return Verdict(True, delta, low, high, f"better by {delta:+.3f}, {ci}")
        why = "no better" if delta <= 0 else "within noise"
        return Verdict(False, delta, low, high, f"{why}: {delta:+.3f}, {ci}")

    async def _select(
        self,
        parents: Sequence[AgentSpec],
        best: AgentSpec,
        best_eval: Evaluation,
        proposals: Sequence[Proposal],
        valset: Sequence[TestCase],
        budget: Budget,
        deadline: float | None,
        parent_means: Mapping[str, float],
    ) -> AgentSpec:
        """Evaluate proposals; the best accepted one, else ``best`` (same object).

        The ``done`` event carries ``val_means``: the validation mean of every parent
        and of the result, so a caller need not tell validation from training runs
        among the ``evaluated`` events.
        """
        winner: tuple[Proposal, Evaluation, Verdict] | None = None
        for prop in proposals:
            if deadline is not None and time.monotonic() > deadline:
                self._emit(
                    "rejected",
                    {
                        "spec_id": prop.spec.id,
                        "operator": prop.operator,
                        "reason": "budget.max_seconds reached before evaluation",
                    },
                )
                continue
            ev = await self.evaluate(prop.spec, valset, repeats=budget.repeats)
            verdict = self.compare(best_eval, ev, budget)
            data = {
                "spec_id": prop.spec.id,
                "operator": prop.operator,
                "mean": ev.mean,
                "parent_mean": best_eval.mean,
                "delta": verdict.delta,
                "ci_low": verdict.ci_low,
                "ci_high": verdict.ci_high,
                "reason": verdict.reason,
            }
            self._emit("accepted" if verdict.accepted else "rejected", data)
            if verdict.accepted and (winner is None or ev.mean > winner[1].mean):
                winner = (prop, ev, verdict)
        if winner is None:
            self._emit(
                "done",
                {
                    "spec_id": best.id,
                    "changed": False,
                    "parents": [p.id for p in parents],
                    "mean": best_eval.mean,
                    "val_means": dict(parent_means),
                    "reason": "no child beat the parent by more than noise",
                },
            )
            return best
        prop, ev, verdict = winner
        self._emit(
            "done",
            {
                "spec_id": prop.spec.id,
                "changed": True,
                "operator": prop.operator,
                "parents": [p.id for p in parents],
                "mean": ev.mean,
                "val_means": {**parent_means, prop.spec.id: ev.mean},
                "delta": verdict.delta,
                "reason": verdict.reason,
            },
        )
        return prop.spec

    # -- the loops --------------------------------------------------------------

    async def evolve(
        self,
        spec: AgentSpec,
        *,
        trainset: Sequence[TestCase],
        valset: Sequence[TestCase],
        budget: Budget = Budget(),  # noqa: B008 - frozen dataclass, safe as a default
    ) -> AgentSpec:
        """One round: a better child of ``spec``, or ``spec`` itself."""
        if not trainset or not valset:
            raise ValidationError("evolve needs a non-empty trainset and valset")
        start = time.monotonic()
        deadline = None if budget.max_seconds is None else start + budget.max_seconds
        parent_eval = await self.evaluate(spec, valset, repeats=budget.repeats)
        train = await self.evaluate(spec, trainset, repeats=1)
        failures = train.report.failures()
        available = dict(self.weights)
        proposals: list[Proposal] = []
        seen = {spec.id}
        misses: dict[str, int] = {}
        while len(proposals) < budget.candidates and available:
            if deadline is not None and time.monotonic() > deadline:
                break
            operator = self._draw(available)
            prop = await self.propose(spec, operator, trainset=trainset, failures=failures)
            if prop is None or prop.spec.id in seen:
                # None: this operator has nothing to change (a model may still answer
                # better on a retry).  A duplicate: a rule-based operator drew an option
                # already proposed; another draw of its RNG may give a new one.
                misses[operator] = misses.get(operator, 0) + 1
                self._emit(
                    "skipped",
                    {
                        "operator": operator,
                        "parent": spec.id,
                        "reason": "nothing to change" if prop is None else "same as an earlier one",
                    },
                )
                calls_model = get_operator(operator).calls_model
                limit = _RETRIES_MODEL if calls_model else _RETRIES_RULE
                if (prop is None and not calls_model) or misses[operator] >= limit:
                    available.pop(operator)
                continue
            seen.add(prop.spec.id)
            proposals.append(prop)
            self._emit(
                "proposed",
                {
                    "spec_id": prop.spec.id,
                    "parent": spec.id,
                    "operator": operator,
                    "rationale": prop.rationale,
                },
            )
        return await self._select(
            [spec],
            spec,
            parent_eval,
            proposals,
            valset,
            budget,
            deadline,
            {spec.id: parent_eval.mean},
        )

    async def cross(
        self,
        specs: Sequence[AgentSpec],
        *,
        trainset: Sequence[TestCase],
        valset: Sequence[TestCase],
        budget: Budget = Budget(),  # noqa: B008 - frozen dataclass, safe as a default
    ) -> AgentSpec:
        """Combine parts of several agents; a child must beat the best parent."""
        if len(specs) < 2:
            raise ValidationError("cross needs at least two agents")
        if not valset:
            raise ValidationError("cross needs a non-empty valset")
        start = time.monotonic()
        deadline = None if budget.max_seconds is None else start + budget.max_seconds
        evals = [await self.evaluate(s, valset, repeats=budget.repeats) for s in specs]
        order = sorted(range(len(specs)), key=lambda i: -evals[i].mean)
        best, best_eval = specs[order[0]], evals[order[0]]
        ranked = [specs[i] for i in order]
        proposals: list[Proposal] = []
        seen = {s.id for s in specs}
        for name, combined, why in ops.combinations(ranked):
            if len(proposals) >= budget.candidates:
                break
            if combined is None or combined.id in seen:
                continue
            seen.add(combined.id)
            prop = Proposal(name, _child(combined, specs), why)
            proposals.append(prop)
            self._emit(
                "proposed",
                {
                    "spec_id": prop.spec.id,
                    "parents": [s.id for s in specs],
                    "operator": name,
                    "rationale": why,
                },
            )
        means = {s.id: e.mean for s, e in zip(specs, evals, strict=True)}
        return await self._select(
            specs, best, best_eval, proposals, valset, budget, deadline, means
        )
