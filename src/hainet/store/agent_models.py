"""The marketplace's records as returned by :class:`~hainet.store.agents.AgentStore`:
versioned pydantic models with a docstring on each field, and the content hash the
store checks every agent row against."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from hainet.types import canonical_json

__all__ = [
    "AGENT_SCHEMA_VERSION",
    "AgentRecord",
    "AgentStatus",
    "CompatRecord",
    "IndexState",
    "Incompatibility",
    "RatingRecord",
    "ReportRecord",
    "ScoreRecord",
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


class ReportRecord(_Record):
    """A test report of an agent on one model (``TestReport.to_dict()``)."""

    id: int = Field(description="Row id, increasing with time.")
    agent_id: str = Field(description="The agent tested.")
    model: str = Field(description="Catalog name of the model it ran on.")
    purpose: str = Field(description="gate (the publish test), test, or compat.")
    report: dict[str, Any] = Field(description="The report: outcomes, rates, timings.")
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
