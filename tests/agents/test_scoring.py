"""The weighted agent score: components, normalisation, missing data, weights."""

from __future__ import annotations

import pytest

from hainet.agents.scoring import (
    REF_LATENCY_S,
    REF_RSS_MB,
    REF_TOKENS_PER_S,
    ScoreWeights,
    score_reports,
)
from hainet.agents.testing import CaseOutcome, TestReport
from hainet.errors import ValidationError


def outcome(test_id: str, score: float, **kw: object) -> CaseOutcome:
    base: dict[str, object] = {
        "explanation": "",
        "output": "",
        "wall_s": 1.0,
        "completion_tokens": 20,
        "peak_rss_mb": 512.0,
    }
    base.update(kw)
    return CaseOutcome(test_id=test_id, score=score, **base)  # type: ignore[arg-type]


def report(model: str, *outs: CaseOutcome) -> TestReport:
    return TestReport(agent_id="a" * 64, model=model, outcomes=tuple(outs), wall_s=1.0)


def test_every_component_and_its_reference_values() -> None:
    main = report(
        "m",
        outcome("t1", 1.0, seed=0),
        outcome("t2", 0.0, seed=0),
        outcome("t1", 1.0, seed=1),
        outcome("t2", 1.0, seed=1),
        outcome("h1", 0.5, holdout=True),
    )
    other = report("other", outcome("t1", 1.0), outcome("t2", 0.0))
    b = score_reports([main, other])
    c = b.components
    # Latency 1 s against 2 s reference; 20 tokens/s against 20.
    assert c["performance"]["parts"]["latency"] == pytest.approx(
        REF_LATENCY_S / (REF_LATENCY_S + 1.0)
    )
    assert c["performance"]["parts"]["throughput"] == pytest.approx(20 / (20 + REF_TOKENS_PER_S))
    assert c["accuracy"]["value"] == pytest.approx(0.75)  # 3 of 4 gate outcomes
    assert c["resources"]["value"] == pytest.approx(REF_RSS_MB / (REF_RSS_MB + 512))
    assert c["versatility"]["holdout_rate"] == 0.5
    assert c["versatility"]["other_models_rate"] == 0.5
    assert c["versatility"]["value"] == pytest.approx(0.5)
    # t1 scores (1, 1), t2 (0, 1): stdevs 0 and 0.5; h1 once (not repeated).
    assert c["stability"]["value"] == pytest.approx(1 - 2 * 0.25)
    assert b.missing == [] and b.note == ""
    expected = sum(c[n]["value"] * w for n, w in ScoreWeights().as_dict().items()) / sum(
        ScoreWeights().as_dict().values()
    )
    assert b.total == pytest.approx(expected, abs=1e-6)
    assert 0 < b.total < 1


def test_missing_components_are_reported_and_weights_renormalised() -> None:
    r = report("m", outcome("t1", 1.0, completion_tokens=0, peak_rss_mb=None))
    b = score_reports([r])
    assert set(b.missing) == {"resources", "versatility", "stability"}
    assert "missing" in b.note and "renormalised" in b.note
    eff = {n: c["effective_weight"] for n, c in b.components.items()}
    assert eff["performance"] == pytest.approx(0.5) and eff["accuracy"] == pytest.approx(0.5)
    assert eff["resources"] == 0.0
    # Throughput missing, latency present: performance is latency alone.
    perf = b.components["performance"]
    assert perf["parts"]["throughput"] is None
    assert perf["value"] == pytest.approx(perf["parts"]["latency"])
    assert b.total == pytest.approx(0.5 * perf["value"] + 0.5 * 1.0, abs=1e-6)


def test_weights_are_configurable_and_validated() -> None:
    r = report("m", outcome("t1", 1.0, wall_s=30.0), outcome("t2", 1.0, wall_s=30.0))
    only_accuracy = score_reports([r], weights=ScoreWeights(0, 1, 0, 0, 0))
    assert only_accuracy.total == pytest.approx(1.0)
    default = score_reports([r])
    assert default.total < only_accuracy.total  # slow: performance pulls it down
    with pytest.raises(ValidationError, match="weight accuracy: must be a number >= 0"):
        ScoreWeights(accuracy=-0.1)
    with pytest.raises(ValidationError, match="sum must be > 0"):
        ScoreWeights(0, 0, 0, 0, 0)
    with pytest.raises(ValidationError, match="unknown component"):
        ScoreWeights.from_dict({"speed": 1.0})
    # Weight only on a component without data: nothing to score with.
    b = score_reports([r], weights=ScoreWeights(0, 0, 0, 1, 0))
    assert b.total == 0.0 and "no data" in b.note


def test_faster_leaner_steadier_agents_score_higher() -> None:
    fast = report("m", outcome("t", 1.0, wall_s=0.2, peak_rss_mb=300.0))
    slow = report("m", outcome("t", 1.0, wall_s=8.0, peak_rss_mb=3000.0))
    assert score_reports([fast]).total > score_reports([slow]).total
    steady = report("m", outcome("t", 1.0, seed=0), outcome("t", 1.0, seed=1))
    shaky = report("m", outcome("t", 1.0, seed=0), outcome("t", 0.0, seed=1))
    assert (
        score_reports([steady]).components["stability"]["value"]
        > score_reports([shaky]).components["stability"]["value"]
    )
    with pytest.raises(ValidationError, match="without test reports"):
        score_reports([])
