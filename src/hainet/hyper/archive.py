"""The archive of generations and Darwin-Gödel-Machine parent selection.

Every generation the loop makes is kept (accepted or not) in the store; an accepted
one can be a parent.  A parent is drawn with weight
``sigmoid(k * (score - midpoint)) / (1 + n_children)``: good generations are
preferred, but each child a generation already has makes it less likely again, so
the search keeps exploring side branches (DGM, Zhang et al. 2025).  The midpoint is
the mean of the three best eligible scores.
"""

from __future__ import annotations

import difflib
import json
import math
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import yaml

from hainet.agents.spec import AgentSpec, canonical_json, parse_spec
from hainet.store.hyper import GenerationRecord

__all__ = [
    "ELIGIBLE",
    "best_generation",
    "parent_weights",
    "select_parent",
    "spec_diff",
    "spec_from_record",
    "spec_json",
]

ELIGIBLE = ("accepted",)


def spec_json(spec: AgentSpec) -> str:
    """The exact text stored for a spec: canonical JSON of every field, id included."""
    return canonical_json(spec.model_dump(mode="json"))


def spec_from_record(gen: GenerationRecord) -> AgentSpec:
    """The stored spec, checked against its content id."""
    spec = parse_spec(json.loads(gen.spec_json), source=f"generation {gen.id[:8]}")
    spec.verify()
    return spec


def _yaml(spec: AgentSpec) -> list[str]:
    data = spec.model_dump(
        mode="json", exclude={"id", "created_at", "updated_at"}, exclude_none=True
    )
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100).splitlines(True)


def spec_diff(parent: AgentSpec, child: AgentSpec) -> str:
    """Unified diff of the two specs' YAML (ids and timestamps left out)."""
    return "".join(
        difflib.unified_diff(
            _yaml(parent), _yaml(child), f"spec/{parent.short_id}", f"spec/{child.short_id}"
        )
    )


def parent_weights(gens: Sequence[GenerationRecord], *, k: float) -> dict[str, float]:
    """Selection weight of every eligible generation (see the module docstring)."""
    children = Counter(g.parent_id for g in gens if g.parent_id is not None)
    eligible = [g for g in gens if g.status in ELIGIBLE and g.score is not None]
    if not eligible:
        return {}
    top = sorted((g.score for g in eligible if g.score is not None), reverse=True)[:3]
    midpoint = sum(top) / len(top)
    out: dict[str, float] = {}
    for g in eligible:
        assert g.score is not None
        x = max(-60.0, min(60.0, k * (g.score - midpoint)))
        out[g.id] = 1.0 / (1.0 + math.exp(-x)) / (1 + children[g.id])
    return out


def select_parent(
    gens: Sequence[GenerationRecord], *, k: float, rng: random.Random
) -> GenerationRecord:
    weights = parent_weights(gens, k=k)
    if not weights:
        raise ValueError("no eligible parent in the archive")
    # Ordered by generation, not by id: ids are random and the draw must be reproducible.
    pool = sorted((g for g in gens if g.id in weights), key=lambda g: (g.number, g.spec_id))
    return rng.choices(pool, weights=[weights[g.id] for g in pool], k=1)[0]


def best_generation(gens: Sequence[GenerationRecord]) -> GenerationRecord | None:
    """The eligible generation with the highest valset score (earliest on ties)."""
    eligible = [g for g in gens if g.status in ELIGIBLE and g.score is not None]
    if not eligible:
        return None
    return max(eligible, key=lambda g: (g.score, -g.number))


def best_by_step(gens: Sequence[GenerationRecord], last: int) -> list[float | None]:
    """Best eligible score after each step 0..last (the archive as it stands now)."""
    out: list[float | None] = []
    best: float | None = None
    by_number: dict[int, list[float]] = {}
    for g in gens:
        if g.status in ELIGIBLE and g.score is not None:
            by_number.setdefault(g.number, []).append(g.score)
    for n in range(last + 1):
        for s in by_number.get(n, []):
            best = s if best is None else max(best, s)
        out.append(best)
    return out


def summarize(gen: GenerationRecord) -> dict[str, Any]:
    """One line of ``hainet hyper status``."""
    return {
        "id": gen.id,
        "number": gen.number,
        "parent": gen.parent_id,
        "operator": gen.operator,
        "status": gen.status,
        "risk": gen.risk,
        "score": gen.score,
        "spec_id": gen.spec_id,
        "procedure_id": gen.procedure_id,
        "reason": gen.reason,
    }
