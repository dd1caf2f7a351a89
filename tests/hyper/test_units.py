"""Pieces of the hyper loop on their own: selection, trends, self-evaluation, procedure."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest

from hainet.agents.evolve import paired_bootstrap
from hainet.agents.testing import CaseOutcome, TestReport
from hainet.errors import ValidationError
from hainet.hyper.archive import parent_weights, select_parent
from hainet.hyper.control import Policy, needs_approval, risk_of
from hainet.hyper.history import OperatorPayoff, self_evaluate, trend
from hainet.hyper.procedure import (
    MetaProcedure,
    ProcedureChange,
    apply_change,
    judge_trial,
    propose_change,
)
from hainet.store.hyper import GenerationRecord

from .conftest import root_spec


def _gen(i: int, score: float | None, parent: str | None = None, status: str = "accepted"):
    return GenerationRecord(
        id=f"{i:032x}", run_id="r", number=i, parent_id=parent, spec_id=f"s{i}", spec_json="{}",
        procedure_id="p", procedure_json="{}", score=score, status=status,  # type: ignore[arg-type]
        created_at=datetime.now(UTC),
    )  # fmt: skip


def test_parent_weights_follow_dgm_formula() -> None:
    gens = [_gen(0, 0.2), _gen(1, 0.8, _gen(0, 0).id), _gen(2, 0.8, _gen(0, 0).id),
            _gen(3, 0.9, _gen(1, 0).id, status="rejected")]  # fmt: skip
    w = parent_weights(gens, k=10.0)
    assert set(w) == {gens[0].id, gens[1].id, gens[2].id}  # rejected is not a parent
    mid = (0.8 + 0.8 + 0.2) / 3
    import math

    assert w[gens[0].id] == pytest.approx(1 / (1 + math.exp(-10 * (0.2 - mid))) / 3)
    assert w[gens[1].id] == pytest.approx(1 / (1 + math.exp(-10 * (0.8 - mid))) / 2)
    assert w[gens[2].id] == pytest.approx(1 / (1 + math.exp(-10 * (0.8 - mid))))
    picks = [select_parent(gens, k=10.0, rng=random.Random(s)).id for s in range(300)]
    assert picks.count(gens[2].id) > picks.count(gens[1].id) > picks.count(gens[0].id)
    again = [select_parent(gens, k=10.0, rng=random.Random(s)).id for s in range(300)]
    assert picks == again


def test_trend_detects_plateau_degradation_and_improvement() -> None:
    kw = {"window": 3, "plateau_threshold": 0.01, "degradation_threshold": 0.05}
    assert trend([0.1, 0.2], [None, 0.2], **kw) == "warming_up"
    assert trend([0.1, 0.2, 0.3, 0.4], [None, 0.2, 0.3, 0.4], **kw) == "improving"
    assert trend([0.5] * 5, [None, 0.5, 0.5, 0.5, 0.5], **kw) == "plateau"
    kids = [None, 0.6, 0.6, 0.6, 0.2, 0.2, 0.2]
    assert trend([0.6] * 7, kids, **kw) == "degrading"


def test_self_evaluation_consistency_calibration_and_efficiency() -> None:
    def outcome(test_id: str, score: float, output: str, **kw: Any) -> CaseOutcome:
        # A pydantic model since TestReport became one: keyword arguments only.
        return CaseOutcome(test_id=test_id, score=score, explanation="", output=output, **kw)

    out = [
        outcome("a", 1.0, '{"answer": 1, "confidence": 0.9}', wall_s=0.5,
                prompt_tokens=10, completion_tokens=5, peak_rss_mb=300.0, seed=0),
        outcome("a", 1.0, '{"answer": 1, "confidence": 0.9}', wall_s=0.7,
                prompt_tokens=10, completion_tokens=5, peak_rss_mb=320.0, seed=1),
        outcome("b", 0.0, '{"answer": 2, "confidence": 0.8}', wall_s=0.3,
                prompt_tokens=10, completion_tokens=5, peak_rss_mb=310.0, seed=0),
        outcome("b", 1.0, '{"answer": 3, "confidence": 0.8}', wall_s=0.3,
                prompt_tokens=10, completion_tokens=5, peak_rss_mb=310.0, seed=1),
    ]  # fmt: skip
    se = self_evaluate(
        TestReport(agent_id="x", model="m", outcomes=tuple(out), wall_s=1.0, seeds=(0, 1))
    )
    assert se["consistency"] == {"measured": True, "agreement": 0.75, "cases": 2}
    assert se["calibration"]["measured"] is True
    assert se["calibration"]["brier"] == pytest.approx(((0.1**2) * 2 + 0.8**2 + 0.2**2) / 4)
    assert se["tokens_per_case"] == 15 and se["peak_rss_mb"] == 320.0
    assert se["latency_s_mean"] == pytest.approx(0.45)
    plain = self_evaluate(
        TestReport(agent_id="x", model="m", outcomes=(outcome("a", 1.0, "yes"),), wall_s=1.0)
    )
    assert plain["consistency"]["measured"] is False
    assert plain["calibration"] == {"measured": False, "why": "the agent reports no confidence"}


def bootstrap_ci(scores: list[float], *, n: int = 2000) -> tuple[float, float]:
    # hyper's own bootstrap_ci was merged into the evolver's (one bootstrap); the loop
    # calls it with its seed, as here.
    _, lo, hi = paired_bootstrap(scores, resamples=n, confidence=0.9, rng=random.Random(0))
    return lo, hi


def test_bootstrap_ci_brackets_the_mean() -> None:
    lo, hi = bootstrap_ci([0, 1, 1, 0, 1, 1, 1, 0], n=500)
    assert lo < 0.625 < hi
    assert bootstrap_ci([1.0] * 5) == (1.0, 1.0)


def test_procedure_is_content_hashed_and_only_editable_fields_change() -> None:
    p = MetaProcedure()
    assert p.id == p.content_hash() and MetaProcedure.from_json(p.to_json()) == p
    q = apply_change(p, ProcedureChange("more", {"candidates": 3}, "why"), max_candidates=4)
    assert q.candidates == 3 and q.version == 2 and q.id != p.id
    for bad in ({"evaluator": "lenient"}, {"budget": {}}, {"valset": []}, {"policy": {}}):
        with pytest.raises(ValidationError, match="outside the meta procedure"):
            apply_change(p, ProcedureChange("grab", bad, "why"), max_candidates=4)
    with pytest.raises(ValidationError, match="above the budget"):
        apply_change(p, ProcedureChange("more", {"candidates": 9}, "why"), max_candidates=4)
    tampered = p.to_json().replace('"candidates":2', '"candidates":5')
    with pytest.raises(ValidationError, match="hash mismatch"):
        MetaProcedure.from_json(tampered)


def test_reweight_follows_payoff_and_trial_judgement() -> None:
    import asyncio

    p = MetaProcedure(operators={"few_shot": 1.0, "params": 1.0, "samples": 1.0})
    payoff = {"few_shot": OperatorPayoff(3, 3, 0.2), "params": OperatorPayoff(3, 0, 0.0)}
    change = asyncio.run(propose_change(p, payoff, trend="improving"))
    assert change is not None and change.kind == "reweight"
    w = change.changes["operators"]
    assert w["few_shot"] > w["samples"] > w["params"]  # untried keeps more than failed
    assert asyncio.run(propose_change(p, {}, trend="improving")) is None
    more = asyncio.run(propose_change(p, {}, trend="plateau"))
    assert more is not None and more.changes == {"candidates": 3}
    keep = judge_trial([0.1, 0.1, 0.2], [0.2, 0.4, 0.6], accepted_before=1, accepted_after=2)
    assert keep.keep and "better" in keep.reason
    revert = judge_trial([0.1, 0.3, 0.5], [0.5, 0.5, 0.6], accepted_before=2, accepted_after=1)
    assert not revert.keep


def test_risk_levels_and_approval_threshold() -> None:
    spec = root_spec()
    step = spec.workflow[0].model_dump()
    tuned = spec.derive(workflow=[{**step, "temperature": 0.3}])
    assert risk_of("params", spec, tuned) == "low"
    prompt = spec.derive(workflow=[{**step, "template": "Q: {input}\nA:"}])
    assert risk_of("rewrite_prompt", spec, prompt) == "medium"
    tool = spec.derive(tools=[{"name": "calc", "builtin": "calculator"}])
    assert risk_of("params", spec, tool) == "high"  # what it changes, not what it claims
    assert needs_approval("high", Policy(risk_approval="high"))
    assert not needs_approval("medium", Policy(risk_approval="high"))
    assert needs_approval("low", Policy(risk_approval="low"))
    assert not needs_approval("high", Policy(risk_approval="never"))
