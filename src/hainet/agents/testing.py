"""Run an agent's test set and score it with the suites' scorers.

::

    report = await test_agent(spec, runner)           # the spec's own tests
    report.success_rate, report.passed, report.total, report.failures()

Each test case's output (``AgentRun.text``) is scored by the scorer the case names
(``exact``, ``numeric``, ``regex``, ``json_schema``... the same registry the suites
use, so a user's registered scorer works too), through the bench's own
:func:`~hainet.suites.scoring.score_completions`.  A run that failed (a crashing tool,
code killed by the sandbox, an unparsable answer) scores 0 with its error kept.  A
case the scorer cannot decide (``ScoringUnavailable``: its sandbox or judge is down;
a malformed case) is *not scored*, as in the bench: ``scored`` is False, the error
says why, and it counts neither as a pass nor as a fail (it is left out of the rates
and listed in ``unscored``); the marketplace's gate refuses to decide on a report
with unscored gate cases, and the evolver refuses to compare on one.
``success_rate`` is over the scored gate cases only; held-out cases (``holdout: true``) are
reported separately as ``holdout_rate`` and feed the versatility score.  With several
``seeds`` every case runs once per seed (stability).

:class:`TestReport` and :class:`CaseOutcome` are pydantic models defined with the
store's records (``hainet.store.agent_models``), so that a stored report loads as one:
``TestReport.model_validate(report.model_dump())`` round-trips.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from hainet.agents.spec import AgentSpec, TestCase, canonical_json
from hainet.agents.workflow import AgentRun, AgentRunner
from hainet.errors import SuiteError, ValidationError
from hainet.store.agent_models import CaseOutcome, TestReport
from hainet.suites.base import Case
from hainet.suites.scorers import Score, Scorers, ScoringContext, ScoringUnavailable, scorer_known
from hainet.suites.scoring import score_completions
from hainet.types import Completion, Timing

__all__ = ["CaseOutcome", "TestReport", "score_run", "test_agent"]


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
    """Score one run's output with the test's scorer (0 for a failed run).

    Raises :class:`ScoringUnavailable` or :class:`SuiteError` as the scorer does.
    """
    if not run.ok:
        return Score(0.0, f"run failed: {run.error}")
    completion = Completion(text=run.text, timing=Timing(wall_s=run.wall_s))
    return await score_completions(scorers.get(test.scorer), _case(test), [completion])


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
            error, error_kind, scored = run.error, run.error_kind, True
            try:
                score = await score_run(test, run, scorers)
            except (ScoringUnavailable, SuiteError) as exc:
                # As the bench records it: an error on the case, never a 0.
                what = "could not score" if isinstance(exc, ScoringUnavailable) else "bad case"
                score = Score(0.0, f"{what}: {exc}")
                error, error_kind, scored = score.explanation, "unscored", False
            outcomes.append(
                CaseOutcome(
                    test_id=test.id,
                    score=score.value,
                    explanation=score.explanation,
                    output=run.text,
                    error=error,
                    error_kind=error_kind,
                    wall_s=run.wall_s,
                    prompt_tokens=run.prompt_tokens,
                    completion_tokens=run.completion_tokens,
                    peak_rss_mb=run.peak_rss_mb,
                    holdout=test.holdout,
                    seed=seed,
                    scored=scored,
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
