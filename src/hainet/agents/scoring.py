"""An agent's weighted score, from its test reports.

Five components, each normalised to 0..1 (1 is best), weighted (defaults from the
marketplace issue; configurable through :class:`ScoreWeights`)::

    performance  0.3   latency and throughput of the agent's runs
    accuracy     0.3   mean success rate on the gate cases
    resources    0.2   peak resident memory while it ran
    versatility  0.1   held-out cases, and the success rate on other models
    stability    0.1   spread of a case's score over repeated runs / seeds

Normalisation uses reference values, chosen so that a reference value scores 0.5 and
the curve never reaches 0 or 1 on real data (``x_ref / (x_ref + x)`` for costs,
``x / (x + x_ref)`` for rates)::

    latency     REF_LATENCY_S   = 2.0 s per case    (2 s -> 0.5, 0.5 s -> 0.8)
    throughput  REF_TOKENS_PER_S = 20 tokens/s      (20 -> 0.5, 60 -> 0.75)
    memory      REF_RSS_MB      = 1024 MiB peak    (1 GiB -> 0.5, 400 MiB -> 0.72)
    stability   1 - 2 x mean standard deviation of a case's scores over runs
                (scores are in 0..1, so the deviation is at most 0.5)

A component without data (no holdout cases and one model: versatility; one run per
case: stability; a backend that reports no tokens: throughput) is reported as
missing and the remaining weights are renormalised to sum to 1; the breakdown says
so in ``note``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hainet.agents.testing import TestReport
from hainet.errors import ValidationError

__all__ = [
    "COMPONENTS",
    "REF_LATENCY_S",
    "REF_RSS_MB",
    "REF_TOKENS_PER_S",
    "ScoreBreakdown",
    "ScoreWeights",
    "score_reports",
]

COMPONENTS = ("performance", "accuracy", "resources", "versatility", "stability")
REF_LATENCY_S = 2.0
REF_TOKENS_PER_S = 20.0
REF_RSS_MB = 1024.0


@dataclass(frozen=True)
class ScoreWeights:
    """Weight of each component; each >= 0, their sum > 0 (they need not sum to 1)."""

    performance: float = 0.3
    accuracy: float = 0.3
    resources: float = 0.2
    versatility: float = 0.1
    stability: float = 0.1

    def __post_init__(self) -> None:
        for name in COMPONENTS:
            w = getattr(self, name)
            if not isinstance(w, int | float) or math.isnan(w) or w < 0:
                raise ValidationError(f"score weight {name}: must be a number >= 0, got {w!r}")
        if sum(self.as_dict().values()) <= 0:
            raise ValidationError("score weights: their sum must be > 0")

    def as_dict(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in COMPONENTS}

    @classmethod
    def from_dict(cls, data: dict[str, float]) -> ScoreWeights:
        unknown = set(data) - set(COMPONENTS)
        if unknown:
            raise ValidationError(
                f"score weights: unknown component(s) {sorted(unknown)}; known: {list(COMPONENTS)}"
            )
        return cls(**data)


@dataclass(frozen=True)
class ScoreBreakdown:
    """The total and, per component, its value (None = missing) and inputs."""

    total: float
    weights: dict[str, float]
    components: dict[str, dict[str, Any]] = field(default_factory=dict)
    note: str = ""

    @property
    def missing(self) -> list[str]:
        return [n for n, c in self.components.items() if c["value"] is None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "weights": self.weights,
            "components": self.components,
            "note": self.note,
        }


def _cost(x: float, ref: float) -> float:
    return ref / (ref + max(x, 0.0))


def _rate(x: float, ref: float) -> float:
    return max(x, 0.0) / (max(x, 0.0) + ref)


def _mean(xs: Sequence[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return statistics.fmean(vals) if vals else None


def score_reports(
    reports: Sequence[TestReport],
    *,
    primary_model: str | None = None,
    weights: ScoreWeights | None = None,
) -> ScoreBreakdown:
    """Score an agent from its reports.

    ``primary_model`` is the model the agent is published for (default: the model
    of the first report); accuracy, performance and resources come from its
    reports, and the other models' success rates feed versatility.
    """
    if not reports:
        raise ValidationError("cannot score an agent without test reports")
    weights = weights or ScoreWeights()
    primary = primary_model or reports[0].model
    main = [r for r in reports if r.model == primary] or list(reports)
    others = [r for r in reports if r.model != primary]

    comps: dict[str, dict[str, Any]] = {}

    latency = _mean([r.mean_latency_s for r in main])
    tps = _mean([r.tokens_per_s for r in main])
    parts = {
        "latency": None if latency is None else _cost(latency, REF_LATENCY_S),
        "throughput": None if tps is None else _rate(tps, REF_TOKENS_PER_S),
    }
    comps["performance"] = {
        "value": _mean(list(parts.values())),
        "mean_latency_s": latency,
        "tokens_per_s": tps,
        "parts": parts,
        "reference": {"latency_s": REF_LATENCY_S, "tokens_per_s": REF_TOKENS_PER_S},
    }

    comps["accuracy"] = {
        "value": statistics.fmean(r.success_rate for r in main),
        "success_rate": [r.success_rate for r in main],
    }

    rss = max((r.peak_rss_mb for r in main if r.peak_rss_mb is not None), default=None)
    comps["resources"] = {
        "value": None if rss is None else _cost(rss, REF_RSS_MB),
        "peak_rss_mb": rss,
        "reference": {"rss_mb": REF_RSS_MB},
    }

    holdout = _mean([r.holdout_rate for r in reports])
    other_rate = _mean([r.success_rate for r in others]) if others else None
    comps["versatility"] = {
        "value": _mean([holdout, other_rate]),
        "holdout_rate": holdout,
        "other_models_rate": other_rate,
        "other_models": sorted({r.model for r in others}),
    }

    # Spread of each case's score over its runs (seeds and repeated reports).
    per_case: dict[str, list[float]] = {}
    for r in main:
        for o in r.outcomes:
            per_case.setdefault(o.test_id, []).append(o.score)
    spreads = [statistics.pstdev(s) for s in per_case.values() if len(s) > 1]
    mean_sd = statistics.fmean(spreads) if spreads else None
    comps["stability"] = {
        "value": None if mean_sd is None else max(0.0, 1.0 - 2.0 * mean_sd),
        "mean_stdev": mean_sd,
        "cases_repeated": len(spreads),
    }

    given = weights.as_dict()
    present = {n: w for n, w in given.items() if comps[n]["value"] is not None}
    wsum = sum(present.values())
    note = ""
    missing = [n for n in COMPONENTS if comps[n]["value"] is None]
    if wsum <= 0:
        # Only components without data carry weight: nothing to score with.
        for n in COMPONENTS:
            comps[n]["effective_weight"] = 0.0
        return ScoreBreakdown(
            total=0.0,
            weights=given,
            components=comps,
            note=f"no data for the weighted components ({', '.join(missing)}): total 0",
        )
    for n in COMPONENTS:
        comps[n]["effective_weight"] = present.get(n, 0.0) / wsum
    if missing:
        note = (
            f"missing: {', '.join(missing)} (no data); the other weights were "
            "renormalised to sum to 1"
        )
    total = sum(comps[n]["value"] * comps[n]["effective_weight"] for n in present)
    return ScoreBreakdown(
        total=round(min(1.0, max(0.0, total)), 6), weights=given, components=comps, note=note
    )
