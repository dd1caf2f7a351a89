"""Performance history and self-evaluation beyond the task score.

:func:`self_evaluate` turns one evaluation's test report into what the archive keeps
next to the score: efficiency (tokens and latency per case), resources (peak
memory), decision quality (consistency of the answers across repeated runs/seeds;
calibration when the agent's answers carry a ``confidence``, otherwise marked not
measured).  :func:`trend` reads the archive's score series (improving, plateau,
degrading) and :func:`operator_payoff` says which operators produced accepted
children; the meta step uses both.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "OperatorPayoff",
    "improvement_rate",
    "operator_payoff",
    "self_evaluate",
    "trend",
]


class OutcomeLike(Protocol):
    @property
    def test_id(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def output(self) -> Any: ...
    @property
    def wall_s(self) -> float: ...
    @property
    def prompt_tokens(self) -> int: ...
    @property
    def completion_tokens(self) -> int: ...
    @property
    def peak_rss_mb(self) -> float | None: ...


class ReportLike(Protocol):
    @property
    def outcomes(self) -> Sequence[OutcomeLike]: ...


def _confidence(output: Any) -> float | None:
    if isinstance(output, str):
        try:
            output = json.loads(output)
        except ValueError:
            return None
    if isinstance(output, dict):
        value = output.get("confidence")
        if isinstance(value, int | float) and 0.0 <= float(value) <= 1.0:
            return float(value)
    return None


def _key(output: Any) -> str:
    return output if isinstance(output, str) else json.dumps(output, sort_keys=True, default=str)


def self_evaluate(report: ReportLike) -> dict[str, Any]:
    """Efficiency, resources and decision quality of one evaluation (JSON-able)."""
    outcomes = list(report.outcomes)
    if not outcomes:
        return {"cases": 0}
    n = len(outcomes)
    rss = [o.peak_rss_mb for o in outcomes if o.peak_rss_mb is not None]
    by_case: dict[str, list[str]] = defaultdict(list)
    for o in outcomes:
        by_case[o.test_id].append(_key(o.output))
    repeated = {k: v for k, v in by_case.items() if len(v) > 1}
    if repeated:
        agree = [max(v.count(x) for x in set(v)) / len(v) for v in repeated.values()]
        consistency: dict[str, Any] = {
            "measured": True,
            "agreement": round(statistics.fmean(agree), 4),
            "cases": len(repeated),
        }
    else:
        consistency = {"measured": False, "why": "one run per case (repeats=1)"}
    conf = [(c, o.score) for o in outcomes if (c := _confidence(o.output)) is not None]
    if conf:
        calibration: dict[str, Any] = {
            "measured": True,
            "brier": round(statistics.fmean((c - s) ** 2 for c, s in conf), 4),
            "cases": len(conf),
        }
    else:
        calibration = {"measured": False, "why": "the agent reports no confidence"}
    return {
        "cases": n,
        "tokens_per_case": round(
            sum(o.prompt_tokens + o.completion_tokens for o in outcomes) / n, 2
        ),
        "completion_tokens_per_case": round(sum(o.completion_tokens for o in outcomes) / n, 2),
        "latency_s_mean": round(statistics.fmean(o.wall_s for o in outcomes), 6),
        "latency_s_max": round(max(o.wall_s for o in outcomes), 6),
        "peak_rss_mb": round(max(rss), 1) if rss else None,
        "errors": sum(1 for o in outcomes if getattr(o, "error", None)),
        "consistency": consistency,
        "calibration": calibration,
    }


def trend(
    best: Sequence[float | None],
    children: Sequence[float | None],
    *,
    window: int,
    plateau_threshold: float,
    degradation_threshold: float,
) -> str:
    """``improving``, ``plateau``, ``degrading`` or ``warming_up`` (too little history).

    ``best`` is the best accepted score after each generation; ``children`` the score
    each generation's child got.  Degrading: the last window's children score clearly
    below the window before (the operators are making things worse); plateau: the
    best score moved less than the threshold over the window.
    """
    if len(best) < window + 1:
        return "warming_up"
    kids = [c for c in children if c is not None]
    if len(kids) >= 2 * window:
        recent, before = kids[-window:], kids[-2 * window : -window]
        if statistics.fmean(before) - statistics.fmean(recent) > degradation_threshold:
            return "degrading"
    start, end = best[-window - 1], best[-1]
    if start is None or end is None or end - start < plateau_threshold:
        return "plateau"
    return "improving"


def improvement_rate(best: Sequence[float | None]) -> dict[str, float]:
    """Gain of the best score and number of improvements, per generation of a window
    (``best`` includes the value just before the window as its first element)."""
    steps = max(len(best) - 1, 1)
    vals = [b if b is not None else 0.0 for b in best]
    gains = sum(1 for a, b in zip(vals, vals[1:], strict=False) if b > a)
    total = vals[-1] - vals[0] if vals else 0.0
    return {
        "gain_per_gen": round(total / steps, 6),
        "improvements_per_gen": round(gains / steps, 6),
        "generations": float(steps),
    }


@dataclass(frozen=True)
class OperatorPayoff:
    attempts: int
    accepted: int
    mean_delta: float


def operator_payoff(
    rows: Iterable[tuple[str | None, str, float | None]],
) -> dict[str, OperatorPayoff]:
    """Per operator: attempts, accepted children and mean score change over the parent,
    from ``(operator, status, delta)`` rows of the archive."""
    acc: dict[str, list[tuple[bool, float]]] = defaultdict(list)
    for op, status, delta in rows:
        if op is None or status in ("pending_approval", "proposed"):
            continue
        acc[op].append((status in ("accepted", "rolled_back"), delta or 0.0))
    return {
        op: OperatorPayoff(
            attempts=len(v),
            accepted=sum(1 for ok, _ in v if ok),
            mean_delta=round(statistics.fmean(d for _, d in v), 6),
        )
        for op, v in acc.items()
    }
