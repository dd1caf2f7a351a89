"""The marketplace's records as returned by :class:`~hainet.store.agents.AgentStore`:
versioned pydantic models with a docstring on each field, and the content hash the
store checks every agent row against.

:class:`TestReport` and its :class:`CaseOutcome` are defined here rather than in the
agents layer that makes them, so that a stored report is one typed model on both
sides (``hainet.agents`` re-exports them).  A report's stored JSON is its
``model_dump()``: the fields, and the ``summary`` computed from them (kept for SQL
readers; ignored on reading).  Reports stored before it was a model (no
``schema_version``) have the same fields and load as schema 1.
"""

from __future__ import annotations

import hashlib
import statistics
from datetime import datetime
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, computed_field

from hainet.types import canonical_json

__all__ = [
    "AGENT_SCHEMA_VERSION",
    "AgentRecord",
    "AgentStatus",
    "CaseOutcome",
    "CompatRecord",
    "IndexState",
    "Incompatibility",
    "RatingRecord",
    "ReportRecord",
    "ReportSummary",
    "ScoreRecord",
    "TestReport",
    "agent_content_hash",
]

AGENT_SCHEMA_VERSION = 1

AgentStatus = Literal["draft", "published"]
Incompatibility = Literal["context_overflow", "no_tool_support", "load_failure", "crash"]

# What the content hash leaves out (AgentSpec.content()).
_NOT_CONTENT = ("id", "created_at", "updated_at")


def agent_content_hash(spec: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a dumped spec without its id and timestamps:
    the same definition as ``hainet.agents.spec.content_hash`` (a test holds the two
    together), so the store can check a row without importing the agents layer."""
    content = {k: v for k, v in spec.items() if k not in _NOT_CONTENT}
    return hashlib.sha256(canonical_json(content).encode()).hexdigest()


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)

    schema_version: int = Field(default=AGENT_SCHEMA_VERSION, description="Version of this record.")


class AgentRecord(_Record):
    """One exact version of an agent, as stored."""

    id: str = Field(description="sha256 of the spec's content; any unique prefix finds it.")
    name: str = Field(description="The spec's name.")
    version: str = Field(description="The spec's semantic version.")
    spec: dict[str, Any] = Field(description="The full spec as dumped by the agents layer.")
    status: AgentStatus = Field(description="draft (added) or published (passed the gate).")
    author: str | None = Field(default=None, description="Pseudonymous key id of the author.")
    created_by: str = Field(default="human", description="human or ai_generated.")
    created_at: datetime = Field(description="When it was first stored (UTC).")
    published_at: datetime | None = Field(default=None, description="When it was published.")

    @property
    def purpose(self) -> str:
        return str(self.spec.get("purpose", ""))


class CaseOutcome(BaseModel):
    """One test case of an agent on one seed."""

    model_config = ConfigDict(frozen=True)

    test_id: str = Field(description="The test case's id in the spec.")
    score: float = Field(description="0..1 from the case's scorer; 0 for a failed run.")
    explanation: str = Field(description="Why the scorer gave this score.")
    output: str = Field(description="The agent's final output text.")
    error: str | None = Field(default=None, description="Why the run failed or was unscored.")
    error_kind: str | None = Field(
        default=None, description="Kind of failure (backend, tool, sandbox, unscored...)."
    )
    wall_s: float = Field(default=0.0, description="Wall time of the agent's run, seconds.")
    prompt_tokens: int = Field(default=0, description="Prompt tokens over every step.")
    completion_tokens: int = Field(default=0, description="Generated tokens over every step.")
    peak_rss_mb: float | None = Field(
        default=None, description="Peak RSS while it ran, MiB, if measured."
    )
    holdout: bool = Field(default=False, description="A held-out case (not in the gate).")
    seed: int = Field(default=0, description="The seed it ran with.")
    scored: bool = Field(
        default=True,
        description="False when the scorer could not decide (error says why): then score "
        "means nothing and the outcome is neither a pass nor a fail.",
    )


class ReportSummary(BaseModel):
    """The rates and timings of a :class:`TestReport`, computed from its outcomes."""

    model_config = ConfigDict(frozen=True)

    success_rate: float = Field(description="Mean score over the scored gate cases.")
    holdout_rate: float | None = Field(description="Mean score over the scored held-out cases.")
    passed: int = Field(description="Gate cases scoring 1.")
    total: int = Field(description="Scored gate cases.")
    mean_latency_s: float | None = Field(description="Mean wall time per outcome, seconds.")
    tokens_per_s: float | None = Field(description="Generated tokens per second of wall time.")
    peak_rss_mb: float | None = Field(description="Highest peak RSS of any outcome, MiB.")
    unscored: int = Field(description="Outcomes the scorer could not decide.")


class TestReport(BaseModel):
    """An agent's test set on one model."""

    __test__ = False  # not a pytest class

    model_config = ConfigDict(frozen=True)

    schema_version: int = Field(default=AGENT_SCHEMA_VERSION, description="Version of this record.")
    agent_id: str = Field(description="Id (content hash) of the agent tested.")
    model: str = Field(description="Catalog name of the model it ran on.")
    outcomes: tuple[CaseOutcome, ...] = Field(description="One per test case per seed.")
    wall_s: float = Field(description="Wall time of the whole test set, seconds.")
    seeds: tuple[int, ...] = Field(default=(0,), description="Seeds every case ran with.")
    extra: dict[str, Any] = Field(
        default_factory=dict, description="Free-form notes of whoever made the report."
    )

    @property
    def gate(self) -> list[CaseOutcome]:
        """The scored gate (not held-out) outcomes."""
        return [o for o in self.outcomes if not o.holdout and o.scored]

    @property
    def unscored(self) -> list[CaseOutcome]:
        """Outcomes the scorer could not decide (neither passes nor fails)."""
        return [o for o in self.outcomes if not o.scored]

    @property
    def success_rate(self) -> float:
        """Mean score over the gate cases (0 when there are none)."""
        gate = self.gate
        return statistics.fmean(o.score for o in gate) if gate else 0.0

    @property
    def holdout_rate(self) -> float | None:
        held = [o for o in self.outcomes if o.holdout and o.scored]
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

    @computed_field  # type: ignore[prop-decorator]
    @property
    def summary(self) -> ReportSummary:
        """The rates and timings, in the dumped (and stored) report."""
        return ReportSummary(
            success_rate=self.success_rate,
            holdout_rate=self.holdout_rate,
            passed=self.passed,
            total=self.total,
            mean_latency_s=self.mean_latency_s,
            tokens_per_s=self.tokens_per_s,
            peak_rss_mb=self.peak_rss_mb,
            unscored=len(self.unscored),
        )

    def failures(self) -> list[CaseOutcome]:
        return [o for o in self.outcomes if o.scored and o.score < 1.0]

    def by_case(self) -> dict[str, list[float]]:
        """Scores per test id, one per seed, in seed order (scored outcomes only)."""
        out: dict[str, list[float]] = {}
        for o in self.outcomes:
            if o.scored:
                out.setdefault(o.test_id, []).append(o.score)
        return out


class ReportRecord(_Record):
    """A test report of an agent on one model, as stored."""

    id: int = Field(description="Row id, increasing with time.")
    agent_id: str = Field(description="The agent tested.")
    model: str = Field(description="Catalog name of the model it ran on.")
    purpose: str = Field(description="gate (the publish test), test, or compat.")
    report: TestReport = Field(description="The report: outcomes, rates, timings.")
    success_rate: float = Field(description="Mean score over the gate cases, 0..1.")
    created_at: datetime = Field(description="When it was stored (UTC).")


class ScoreRecord(_Record):
    """A weighted score of an agent with its breakdown."""

    id: int = Field(description="Row id, increasing with time.")
    agent_id: str = Field(description="The agent scored.")
    weights: dict[str, float] = Field(description="Weight per component, as given.")
    components: dict[str, Any] = Field(
        description="Per component: value 0..1 or null when missing, effective weight, "
        "inputs; plus a note when weights were renormalised."
    )
    total: float = Field(description="The weighted score, 0..1.")
    created_at: datetime = Field(description="When it was computed (UTC).")


class RatingRecord(_Record):
    """One signed rating of one agent version by one pseudonymous key."""

    agent_id: str = Field(description="The agent version rated.")
    key_id: str = Field(description="Key id of the rater (one rating per key per version).")
    stars: int = Field(ge=1, le=5, description="1 to 5.")
    text: str = Field(default="", description="The review.")
    signature: bytes = Field(description="Ed25519 signature over the rating payload.")
    public_key: bytes = Field(description="The rater's raw public key.")
    created_at: datetime = Field(description="When it was stored (UTC).")


class CompatRecord(_Record):
    """One cell of the agent x model compatibility matrix."""

    id: int = Field(description="Row id, increasing with time.")
    agent_id: str = Field(description="The agent.")
    model_name: str = Field(description="Name of the model configuration.")
    model_config_: dict[str, Any] = Field(
        alias="model_config", description="The ModelSpec and settings it ran with."
    )
    score: float | None = Field(default=None, description="Success rate 0..1 (None if none ran).")
    passed: int = Field(description="Test cases passed (score 1).")
    total: int = Field(description="Test cases run.")
    seconds: float = Field(description="Wall time of the whole cell.")
    status: Literal["ok", "incompatible"] = Field(description="ok or incompatible.")
    incompatibility: Incompatibility | None = Field(
        default=None,
        description="context_overflow, no_tool_support, load_failure or crash.",
    )
    message: str | None = Field(default=None, description="What went wrong, as reported.")
    created_at: datetime = Field(description="When it was stored (UTC).")

    model_config = ConfigDict(frozen=True, populate_by_name=True)


class IndexState(NamedTuple):
    """Changes whenever a search vector or a score is written (cheap to read)."""

    last_vector: int
    last_score: int
