"""Categories and size tiers of a model configuration, from stored measurements.

Categories (thresholds as the project's seed defines them):

* ``generalist``: every one of the eight capabilities scores above 0.7;
* ``creative`` / ``analytical`` / ``coding`` / ``conversational``: creativity /
  reasoning / coding / conversation above 0.85;
* ``lightweight``: peak RAM while the model ran below 4000 MB;
* ``efficient``: decode above 50 tokens/s.

Tiers by parameter count: tiny < 1B, small 1-7B, medium 7-30B, large > 30B.

A configuration is (model, quantization, flash attention, temperature).  Over several
runs, the newest score of each capability counts.  What was not measured is listed
in ``missing`` rather than guessed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, Field

from hainet.store import USABLE_STATUSES, Run
from hainet.suites.loader import CAPABILITIES  # the eight capabilities, defined once

__all__ = [
    "CAPABILITIES",
    "CAPABILITY_THRESHOLD",
    "GENERALIST_THRESHOLD",
    "Profile",
    "categorize",
    "config_key",
    "profiles",
    "tier",
]

GENERALIST_THRESHOLD = 0.7
CAPABILITY_THRESHOLD = 0.85
SPECIALISTS = {
    "creative": "creativity",
    "analytical": "reasoning",
    "coding": "coding",
    "conversational": "conversation",
}
LIGHTWEIGHT_MB = 4000.0
EFFICIENT_TPS = 50.0


def tier(parameters: int | None) -> str | None:
    if not parameters:
        return None
    if parameters < 1e9:
        return "tiny"
    if parameters < 7e9:
        return "small"
    if parameters <= 30e9:
        return "medium"
    return "large"


class Profile(BaseModel):
    """What one model configuration is good at, with the numbers behind it."""

    schema_version: int = 1
    model: str = Field(description="Model name.")
    quantization: str | None = None
    flash_attn: bool = False
    temperature: float | None = None
    capabilities: dict[str, float] = Field(
        default_factory=dict, description="Mean score per capability (newest run wins)."
    )
    peak_rss_mb: float | None = None
    decode_tps: float | None = None
    parameters: int | None = None
    categories: list[str] = Field(default_factory=list)
    tier: str | None = Field(default=None, description="tiny, small, medium or large.")
    missing: list[str] = Field(
        default_factory=list, description="Capabilities with no measurement yet."
    )
    runs: list[str] = Field(default_factory=list, description="Run ids it was built from.")


def config_key(run: Run) -> tuple[Any, ...]:
    model = run.model
    return (
        run.model_name,
        model.quantization,
        bool(model.flash_attn),
        run.params.temperature,
    )


def categorize(profile: Profile) -> Profile:
    """Fill ``categories``, ``tier`` and ``missing`` from the measurements."""
    caps = profile.capabilities
    found: list[str] = []
    if all(c in caps for c in CAPABILITIES) and all(
        caps[c] > GENERALIST_THRESHOLD for c in CAPABILITIES
    ):
        found.append("generalist")
    for category, capability in SPECIALISTS.items():
        if caps.get(capability, 0.0) > CAPABILITY_THRESHOLD:
            found.append(category)
    if profile.peak_rss_mb is not None and profile.peak_rss_mb < LIGHTWEIGHT_MB:
        found.append("lightweight")
    if profile.decode_tps is not None and profile.decode_tps > EFFICIENT_TPS:
        found.append("efficient")
    return profile.model_copy(
        update={
            "categories": found,
            "tier": tier(profile.parameters),
            "missing": [c for c in CAPABILITIES if c not in caps],
        }
    )


def profiles(runs: Iterable[Run]) -> list[Profile]:
    """One profile per configuration, from completed (or interrupted, abandoned) runs."""
    by_key: dict[tuple[Any, ...], list[Run]] = {}
    for run in runs:
        if run.status in USABLE_STATUSES:
            by_key.setdefault(config_key(run), []).append(run)
    out = []
    for (model, quant, flash, temp), group in by_key.items():
        group.sort(key=lambda r: r.created_at)
        caps: dict[str, float] = {}
        peak = decode = None
        for run in group:  # oldest first, so newer values overwrite
            caps.update(capability_scores(run))
            peak = run.peak_rss_mb if run.peak_rss_mb is not None else peak
            decode = run.summary.decode_tps or decode
        newest = group[-1]
        out.append(
            categorize(
                Profile(
                    model=model,
                    quantization=quant,
                    flash_attn=flash,
                    temperature=temp,
                    capabilities=caps,
                    peak_rss_mb=peak,
                    decode_tps=decode,
                    parameters=newest.model.parameters,
                    runs=[r.id for r in group],
                )
            )
        )
    return out


def capability_scores(run: Run) -> dict[str, float]:
    caps = run.summary.capabilities
    return {name: float(info.score) for name, info in caps.items() if info.score is not None}
