"""What the store hands out: versioned pydantic models, never rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hainet.store.records import Hardware, RunParams, RunSummary, StoredModel, StoredPlan

__all__ = [
    "SCHEMA_VERSION",
    "USABLE_STATUSES",
    "CaseResult",
    "Run",
    "RunStatus",
    "Sweep",
    "SweepStatus",
]

SCHEMA_VERSION = 2
"""2: a run's ``summary``, ``params``, ``model`` and ``hardware`` and a sweep's ``plan``
are typed records (``records.py``) instead of dicts.  Their stored JSON is the same, so
schema-1 rows load as they are (and keep ``schema_version`` 1)."""

RunStatus = Literal["running", "completed", "failed", "interrupted", "abandoned"]
SweepStatus = Literal["running", "completed", "incomplete", "interrupted", "abandoned"]
"""``abandoned``: its process died without closing it (killed, crashed, host lost);
the store marks it so when it finds the owner gone (``store/liveness.py``)."""
USABLE_STATUSES: tuple[RunStatus, ...] = ("completed", "interrupted", "abandoned")
"""Runs whose stored cases count in reports and selection: completed ones, and the
finished cases of one stopped by Ctrl-C or whose process died."""


class CaseResult(BaseModel):
    """The outcome of one case of one suite in one run."""

    model_config = ConfigDict(frozen=True)

    schema_version: int = Field(default=SCHEMA_VERSION, description="Version of this record.")
    suite: str = Field(description="Suite name, e.g. 'reasoning'.")
    suite_version: str = Field(default="", description="Version of the suite's data.")
    capability: str | None = Field(default=None, description="Capability the suite tests.")
    case_id: str = Field(description="Case id, unique within its suite.")
    prompt: str = Field(description="The exact prompt or rendered messages sent to the model.")
    output: str = Field(default="", description="The model's raw text.")
    score: float | None = Field(
        default=None, ge=0.0, le=1.0, description="0..1, or None when the case could not be scored."
    )
    explanation: str = Field(default="", description="Why the scorer gave this score.")
    error: str | None = Field(default=None, description="Generation or scoring error, if any.")
    ttft_s: float | None = Field(default=None, description="Time to first token, seconds.")
    prefill_tps: float | None = Field(default=None, description="Prompt tokens per second.")
    decode_tps: float | None = Field(default=None, description="Generated tokens per second.")
    wall_s: float | None = Field(default=None, description="Wall time of the generation.")
    prompt_tokens: int = Field(default=0, description="Tokens in the prompt.")
    completion_tokens: int = Field(default=0, description="Tokens generated.")
    details: dict[str, Any] | None = Field(
        default=None, description="Samples, sub-checks, pass@k: whatever the scorer kept."
    )


class Run(BaseModel):
    """One run of one or more suites under one model configuration."""

    model_config = ConfigDict(frozen=True)

    schema_version: int = Field(default=SCHEMA_VERSION, description="Version of this record.")
    id: str = Field(description="Run id (hex); any unique prefix finds it.")
    created_at: datetime = Field(description="When the run started (UTC).")
    finished_at: datetime | None = Field(default=None, description="When it ended (UTC).")
    status: RunStatus = Field(
        description="running, completed, failed, interrupted (Ctrl-C) or abandoned (its "
        "process died; the error says when and why)."
    )
    model_name: str = Field(description="Catalog name of the model.")
    backend: str = Field(description="Backend the model ran on.")
    model: StoredModel = Field(description="The full ModelSpec the run loaded, but its API key.")
    params: RunParams = Field(description="Generation parameters (temperature, seed...).")
    suites: list[str] = Field(description="Suites run, in order.")
    quick: bool = Field(default=False, description="Whether only the quick subset ran.")
    load_s: float | None = Field(default=None, description="Seconds to load the model.")
    peak_rss_mb: float | None = Field(
        default=None, description="Peak resident memory of the process while the model ran, MiB."
    )
    model_rss_mb: float | None = Field(
        default=None, description="Peak RSS minus RSS before loading: the model's share, MiB."
    )
    hardware: Hardware = Field(default_factory=Hardware, description="CPU, cores, RAM, GPU.")
    versions: dict[str, str] = Field(default_factory=dict, description="Library versions.")
    summary: RunSummary = Field(
        default_factory=RunSummary,
        description="Aggregates: mean score per suite and capability, mean speeds, profile; "
        "empty until the run ends.",
    )
    error: str | None = Field(default=None, description="Why the run failed, if it did.")
    sweep_id: str | None = Field(default=None, description="The sweep this run is a cell of.")
    cell: str | None = Field(
        default=None, description="Cell key in its sweep: model|quantization|flash|temperature."
    )
    owner_host: str | None = Field(default=None, description="Host of the process that ran it.")
    owner_pid: int | None = Field(default=None, description="Pid of the process that ran it.")
    owner_started: float | None = Field(
        default=None,
        description="Start time of that process (epoch seconds): a reused pid is not the owner.",
    )
    heartbeat_at: datetime | None = Field(
        default=None, description="Last sign of life of its process while running (UTC)."
    )
    superseded_by: str | None = Field(
        default=None,
        description="The run a resume started in its place, taking its finished cases.",
    )
    results: list[CaseResult] | None = Field(
        default=None, description="Per-case results, when asked for."
    )


class Sweep(BaseModel):
    """One ``hainet bench`` invocation: a plan of cells, each stored as a run."""

    model_config = ConfigDict(frozen=True)

    schema_version: int = Field(default=SCHEMA_VERSION, description="Version of this record.")
    id: str = Field(description="Sweep id (hex).")
    created_at: datetime = Field(description="When it started (UTC).")
    finished_at: datetime | None = Field(default=None, description="When it last ended (UTC).")
    status: SweepStatus = Field(
        description="running; completed (every cell completed); incomplete (some cell "
        "failed); interrupted (stopped before the end; resumable with --resume); "
        "abandoned (its process died; resumable with --resume)."
    )
    plan: StoredPlan = Field(
        description="Models, quantizations, flash attention, "
        "temperatures, suites and options that define the cells."
    )
    plan_hash: str = Field(description="sha256 of the canonical plan: --resume matches on it.")
    cells: int = Field(description="Number of cells in the plan.")
    loads: int = Field(description="Model loads so far, over every attempt of this sweep.")
    error: str | None = Field(default=None, description="Why it stopped, if it did.")
    owner_host: str | None = Field(default=None, description="Host of the process running it.")
    owner_pid: int | None = Field(default=None, description="Pid of the process running it.")
    owner_started: float | None = Field(
        default=None, description="Start time of that process (epoch seconds)."
    )
    heartbeat_at: datetime | None = Field(
        default=None, description="Last sign of life of its process while running (UTC)."
    )
