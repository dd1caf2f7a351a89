"""Run an agent's test set and score it with the suites' scorers.

::

    report = await test_agent(spec, runner)           # the spec's own tests
    report.success_rate, report.passed, report.total, report.failures()

Each test case's output (``AgentRun.text``) is scored by the scorer the case names
(``exact``, ``numeric``, ``regex``, ``json_schema``... the same registry the suites
use, so a user's registered scorer works too).  A run that failed (a crashing tool,
code killed by the sandbox, an unparsable answer) scores 0 with its error kept.
``success_rate`` is over the gate cases only; held-out cases (``holdout: true``) are
reported separately as ``holdout_rate`` and feed the versatility score.  With several
``seeds`` every case runs once per seed (stability).
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from hainet.agents.spec import AgentSpec, TestCase, canonical_json
from hainet.agents.workflow import AgentRun, AgentRunner
from hainet.errors import SuiteError, ValidationError
from hainet.suites.base import Case
from hainet.suites.scorers import Score, Scorers, ScoringContext, ScoringUnavailable, scorer_known
from hainet.types import Completion, Timing

__all__ = ["CaseOutcome", "TestReport", "score_run", "test_agent"]


@dataclass(frozen=True, slots=True)
class CaseOutcome:
    """One test case on one seed."""

    test_id: str
    score: float
    explanation: str
    output: str
    error: str | None = None
    error_kind: str | None = None
    wall_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    peak_rss_mb: float | None = None
    holdout: bool = False
    seed: int = 0


@dataclass(frozen=True, slots=True)
class TestReport:
    """An agent's test set on one model."""

    __test__ = False  # not a pytest class

    agent_id: str
    model: str
    outcomes: tuple[CaseOutcome, ...]
    wall_s: float
    seeds: tuple[int, ...] = (0,)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def gate(self) -> list[CaseOutcome]:
        return [o for o in self.outcomes if not o.holdout]

    @property
    def success_rate(self) -> float:
        """Mean score over the gate cases (0 when there are none)."""
        gate = self.gate
        return statistics.fmean(o.score for o in gate) if gate else 0.0

    @property
    def holdout_rate(self) -> float | None:
        held = [o for o in self.outcomes if o.holdout]
        return statistics.fmean(o.score for o in held) if held else None

    @property
    def passed(self) -> int:
        return sum(1 for o in self.gate if o.score >= 1.0)

    @property
    def total(self) -> int:
        return len(self.gate)

    @property
    def mean_latency_s(self) -> float | None:
        return statistics.fmean(o.wall_s for o in self.outcomes) if self.outcomes else None

    @property
    def tokens_per_s(self) -> float | None:
        """Generated tokens per second of agent wall time (steps included)."""
        wall = sum(o.wall_s for o in self.outcomes)
        tokens = sum(o.completion_tokens for o in self.outcomes)
        return tokens / wall if wall > 0 and tokens else None

    @property
    def peak_rss_mb(self) -> float | None:
        peaks = [o.peak_rss_mb for o in self.outcomes if o.peak_rss_mb is not None]
        return max(peaks) if peaks else None

    def failures(self) -> list[CaseOutcome]:
        return [o for o in self.outcomes if o.score < 1.0]

    def by_case(self) -> dict[str, list[float]]:
        """Scores per test id, one per seed, in seed order."""
        out: dict[str, list[float]] = {}
        for o in self.outcomes:
            out.setdefault(o.test_id, []).append(o.score)
        return out

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcomes"] = [asdict(o) for o in self.outcomes]
        data["summary"] = {
            "success_rate": self.success_rate,
            "holdout_rate": self.holdout_rate,
            "passed": self.passed,
            "total": self.total,
            "mean_latency_s": self.mean_latency_s,
            "tokens_per_s": self.tokens_per_s,
            "peak_rss_mb": self.peak_rss_mb,
        }
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TestReport:
        return cls(
            agent_id=data["agent_id"],
            model=data["model"],
            outcomes=tuple(CaseOutcome(**o) for o in data["outcomes"]),
            wall_s=data["wall_s"],
            seeds=tuple(data.get("seeds", (0,))),
            extra=dict(data.get("extra", {})),
        )


def _case(test: TestCase) -> Case:
    text = test.input if isinstance(test.input, str) else canonical_json(test.input)
    return Case(
        id=test.id,
        input=text,
        target=test.target,
        scorer=test.scorer,
        options=test.options,
        json_schema=test.options.get("schema"),
    )


async def score_run(test: TestCase, run: AgentRun, scorers: Scorers) -> Score:
    """Score one run's output with the test's scorer (0 for a failed run)."""
    if not run.ok:
        return Score(0.0, f"run failed: {run.error}")
    scorer = scorers.get(test.scorer)
    completion = Completion(text=run.text, timing=Timing(wall_s=run.wall_s))
    case = _case(test)
    if hasattr(scorer, "ascore"):
        result: Score = await scorer.ascore(case, completion)
        return result
    if getattr(scorer, "blocking", True):
        return await asyncio.to_thread(scorer.score, case, completion)
    return scorer.score(case, completion)


async def test_agent(
    spec: AgentSpec,
    runner: AgentRunner,
    *,
    cases: Sequence[TestCase] | None = None,
    seeds: Sequence[int] = (0,),
    scorers: Scorers | None = None,
) -> TestReport:
    """Run ``cases`` (default: all the spec's tests) once per seed and score them."""
    cases = list(spec.tests if cases is None else cases)
    if not cases:
        raise ValidationError(f"agent {spec.name}: no test cases to run")
    for test in cases:
        if not scorer_known(test.scorer):
            raise ValidationError(
                f"agent {spec.name}: test {test.id}: unknown scorer {test.scorer!r}"
            )
    scorers = scorers or Scorers(ScoringContext(unsafe_no_sandbox=runner.unsafe_no_sandbox))
    outcomes: list[CaseOutcome] = []
    loop = asyncio.get_running_loop()
    start = loop.time()
    # Cases run one after another: the model is one resource, and order must not matter
    # (backends clear their caches per request), so nothing is gained by interleaving.
    for seed in seeds:
        for test in cases:
            run = await runner.run(spec, test.input, seed=seed)
            try:
                score = await score_run(test, run, scorers)
            except (ScoringUnavailable, SuiteError) as exc:
                score = Score(0.0, f"could not score: {exc}")
            outcomes.append(
                CaseOutcome(
                    test_id=test.id,
                    score=score.value,
                    explanation=score.explanation,
                    output=run.text,
                    error=run.error,
                    error_kind=run.error_kind,
                    wall_s=run.wall_s,
                    prompt_tokens=run.prompt_tokens,
                    completion_tokens=run.completion_tokens,
                    peak_rss_mb=run.peak_rss_mb,
                    holdout=test.holdout,
                    seed=seed,
                )
            )
    return TestReport(
        agent_id=spec.id,
        model=runner.model_name,
        outcomes=tuple(outcomes),
        wall_s=loop.time() - start,
        seeds=tuple(seeds),
    )


test_agent.__test__ = False  # type: ignore[attr-defined]  # a library function, not a pytest test
