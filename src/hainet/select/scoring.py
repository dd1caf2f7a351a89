"""Scoring stored configurations against a set of term weights.

Every term value lies in [0, 1]:

* a capability: its stored mean score (newest run wins), as the bench measured it;
* ``quality``: the mean of every capability the configuration was measured on;
* ``speed``: decode tokens/s divided by the best decode speed among the candidates;
* ``ttft``: the best (lowest) time to first token among the candidates divided by this
  one's;
* ``memory``: the lowest peak RSS among the candidates divided by this one's.

The score is ``sum(w_t * v_t) / sum(w_t)`` over the weighted terms, so it lies in
[0, 1].  A term a configuration was never measured on contributes 0 and is listed in
its ``missing``: nothing is guessed.  Only a speed/ttft/memory term that *no*
candidate has a measurement for (an analysis file carries no ttft) is dropped from
the weights, and the answer's ``basis`` says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hainet.bench.categorize import Profile, config_key
from hainet.select.taxonomy import MEASURE_TERMS
from hainet.store import USABLE_STATUSES, Run

__all__ = ["Candidate", "Scored", "candidates_from_runs", "score_all"]


@dataclass(frozen=True)
class Candidate:
    """One stored configuration and the measurements the selector may use."""

    profile: Profile
    ttft_s: float | None = None
    origin: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    """None: measured here.  Otherwise where the figures came from, e.g. the
    network's medians (``{"source": "network", "signers", "hardware_class", ...}``),
    gathered above this layer and passed in as data."""

    @property
    def key(self) -> tuple[Any, ...]:
        p = self.profile
        source = "" if self.origin is None else str(self.origin.get("source", "other"))
        return (p.model, p.quantization or "", p.flash_attn, p.temperature or 0.0, source)

    def config(self) -> dict[str, Any]:
        p = self.profile
        return {
            "quantization": p.quantization,
            "flash_attention": p.flash_attn,
            "temperature": p.temperature,
        }

    def measured(self) -> dict[str, Any]:
        p = self.profile
        return {
            "model": p.model,
            **self.config(),
            "capabilities": dict(sorted(p.capabilities.items())),
            "decode_tps": p.decode_tps,
            "ttft_s": self.ttft_s,
            "peak_rss_mb": p.peak_rss_mb,
            "runs": list(p.runs),
            **({} if self.origin is None else {"origin": self.origin}),
        }


@dataclass
class Scored:
    candidate: Candidate
    score: float
    terms: dict[str, float | None]
    missing: list[str] = field(default_factory=list)


def candidates_from_runs(runs: Iterable[Run]) -> list[Candidate]:
    """Profiles of the runs, each with the newest measured time to first token."""
    from hainet.bench.categorize import profiles

    runs = list(runs)
    ttft: dict[tuple[Any, ...], float] = {}
    for run in sorted(runs, key=lambda r: r.created_at):
        value = run.summary.ttft_s
        if run.status in USABLE_STATUSES and value is not None:
            ttft[config_key(run)] = float(value)
    out = []
    for p in profiles(runs):
        key = (p.model, p.quantization, p.flash_attn, p.temperature)
        out.append(Candidate(p, ttft.get(key)))
    return out


def _relative(values: Sequence[float | None], *, higher_is_better: bool) -> list[float | None]:
    known = [v for v in values if v is not None and v > 0]
    if not known:
        return [None] * len(values)
    best = max(known) if higher_is_better else min(known)
    out: list[float | None] = []
    for v in values:
        if v is None or v <= 0:
            out.append(None)
        else:
            out.append(v / best if higher_is_better else best / v)
    return out


def score_all(
    candidates: Sequence[Candidate], weights: dict[str, float]
) -> tuple[list[Scored], dict[str, float], list[str]]:
    """Score every candidate; returns (scored best first, weights used, dropped terms)."""
    measures = {
        "speed": _relative([c.profile.decode_tps for c in candidates], higher_is_better=True),
        "ttft": _relative([c.ttft_s for c in candidates], higher_is_better=False),
        "memory": _relative([c.profile.peak_rss_mb for c in candidates], higher_is_better=False),
    }
    dropped = [t for t in MEASURE_TERMS if t in weights and all(v is None for v in measures[t])]
    used = {t: w for t, w in weights.items() if t not in dropped}
    total = sum(used.values())
    used = {t: w / total for t, w in used.items()} if total > 0 else used
    scored = []
    for i, cand in enumerate(candidates):
        caps = cand.profile.capabilities
        terms: dict[str, float | None] = {}
        for term in used:
            if term in measures:
                terms[term] = measures[term][i]
            elif term == "quality":
                terms[term] = sum(caps.values()) / len(caps) if caps else None
            else:
                terms[term] = caps.get(term)
        value = sum(w * (terms[t] or 0.0) for t, w in used.items())
        missing = [t for t, v in terms.items() if v is None]
        scored.append(Scored(cand, round(min(max(value, 0.0), 1.0), 4), terms, missing))
    scored.sort(key=lambda s: (-s.score, len(s.missing), s.candidate.key))
    return scored, used, dropped
