"""Match free text against task types, agent types and suite cases with embeddings.

The text and every type description are embedded with :mod:`hainet.embed` (the
bundled all-MiniLM-L6-v2); so are the inputs of each capability's suite cases, and a
capability's similarity is that of its closest case.  A type's confidence is
``0.5 * cos(text, description) + 0.5 * sum(w_t * case_similarity_t)`` over its
weighted terms (terms without suite cases, like speed, use the description's cosine),
clipped to [0, 1]; the top types are returned, best first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hainet.errors import HainetError
from hainet.select.taxonomy import Taxonomy
from hainet.suites.loader import CAPABILITIES, load_suite

__all__ = ["match_types"]

# Suite cases embedded per capability (the first ones; enough to characterize it).
_CASES_PER_SUITE = 40
_case_cache: dict[tuple[str, str], list[str]] = {}
_vector_cache: dict[tuple[str, ...], Any] = {}


def _suite_inputs(home: Path | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for cap in CAPABILITIES:
        key = (str(home), cap)
        if key not in _case_cache:
            try:
                suite = load_suite(cap, home)
            except HainetError:
                _case_cache[key] = []
            else:
                _case_cache[key] = [c.input for c in suite.cases[:_CASES_PER_SUITE] if c.input]
        if _case_cache[key]:
            out[cap] = _case_cache[key]
    return out


def match_types(
    text: str, taxonomy: Taxonomy, *, home: Path | None = None, top: int = 3
) -> list[dict[str, Any]]:
    """The ``top`` closest types: ``[{"kind", "name", "confidence"}]``, best first."""
    from hainet.embed import embed

    entries: list[tuple[str, str]] = []
    texts: list[str] = []
    for name, entry in taxonomy.task_types.items():
        entries.append(("task", name))
        texts.append(entry.description)
    for name, entry in taxonomy.agent_types.items():
        entries.append(("agent", name))
        texts.append(entry.description)
    cases = _suite_inputs(home)
    spans: list[tuple[str, int, int]] = []
    for cap, inputs in cases.items():
        spans.append((cap, len(texts), len(texts) + len(inputs)))
        texts.extend(inputs)
    key = tuple(texts)
    if key not in _vector_cache:
        _vector_cache.clear()
        _vector_cache[key] = embed(texts)
    sims = _vector_cache[key] @ embed([text])[0]
    case_sim = {cap: float(np.max(sims[a:b])) for cap, a, b in spans}
    scored = []
    for i, (kind, name) in enumerate(entries):
        desc = float(sims[i])
        weights = taxonomy.task_weights(name) if kind == "task" else taxonomy.agent_weights(name)
        # Terms without suite cases (speed, memory...) fall back to the description.
        via_cases = sum(w * case_sim.get(term, desc) for term, w in weights.items())
        scored.append((kind, name, 0.5 * desc + 0.5 * via_cases, desc))
    scored.sort(key=lambda x: -x[2])
    return [
        {
            "kind": kind,
            "name": name,
            "confidence": round(min(max(sim, 0.0), 1.0), 4),
            "description_cosine": round(desc, 4),
        }
        for kind, name, sim, desc in scored[:top]
    ]
