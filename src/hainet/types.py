"""The nouns every layer shares: what is asked of a model and what it answered.

``Request``/``Completion`` are frozen dataclasses: they sit on the hot path of every
generation and are never mutated.  ``ModelSpec``/``RunConfig`` are pydantic models
because they come from users (flags, TOML, the catalog) and must be validated.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Completion",
    "GenerationParams",
    "Message",
    "ModelSpec",
    "Request",
    "RunConfig",
    "Timing",
    "ToolCall",
    "canonical_json",
]

Role = Literal["system", "user", "assistant", "tool"]
Mode = Literal["prompt", "chat"]


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """How to sample.  ``temperature=0`` with a fixed ``seed`` is reproducible."""

    temperature: float = 0.0
    max_tokens: int = 128
    seed: int = 0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    json_schema: dict[str, Any] | None = None
    """Constrain the output to this JSON Schema (a llama.cpp grammar in-process)."""
    tools: tuple[dict[str, Any], ...] | None = None
    """Tool definitions in the OpenAI format."""

    def __post_init__(self) -> None:
        # NaN passes every comparison test, so finiteness is checked on its own.
        if not math.isfinite(self.temperature) or self.temperature < 0:
            raise ValueError(f"temperature must be a finite number >= 0, got {self.temperature}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

    def replace(self, **changes: Any) -> GenerationParams:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Request:
    """Either a raw ``prompt`` (completion mode) or chat ``messages``, never both."""

    prompt: str | None = None
    messages: tuple[Message, ...] | None = None
    params: GenerationParams = field(default_factory=GenerationParams)

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("a Request needs exactly one of prompt or messages")

    @property
    def mode(self) -> Mode:
        return "prompt" if self.prompt is not None else "chat"


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Timing:
    """Speed of one generation.  Rates are ``None`` when they cannot be measured."""

    wall_s: float
    ttft_s: float | None = None
    """Time to first token, from the request to the first generated token."""
    prefill_tps: float | None = None
    """Prompt tokens evaluated per second."""
    decode_tps: float | None = None
    """Generated tokens per second, after the first."""


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    timing: Timing
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    model: str | None = None


class ModelSpec(BaseModel):
    """What to load: a backend, a model (GGUF path or served name) and load options."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str = Field(description="Name users type, e.g. 'gemma-3-270m'.")
    # The one built-in name outside backends/: this layer cannot ask the registry,
    # and a spec written without a backend has always meant a GGUF file.
    backend: str = Field(default="llamacpp", description="Registered backend name.")
    path: str | None = Field(default=None, description="GGUF file for in-process backends.")
    url: str | None = Field(default=None, description="Base URL of an OpenAI-compatible server.")
    model: str | None = Field(default=None, description="Model name the server serves.")
    api_key: str | None = Field(default=None, description="API key for the server, if any.")
    mode: Mode = Field(default="prompt", description="'prompt' for base models, 'chat'.")
    chat_format: str | None = Field(
        default=None, description="llama.cpp chat format for GGUFs without a chat template."
    )
    quantization: str | None = None
    flash_attn: bool = False
    n_ctx: int = Field(default=2048, ge=128)
    n_threads: int | None = Field(default=None, ge=1)
    family: str | None = None
    parameters: int | None = None
    file_size: int | None = None
    sha256: str | None = None


class RunConfig(BaseModel):
    """One cell of a sweep: a model configuration and how to sample it.

    The sweep's planner resolves each cell into one ``RunConfig`` (the model's spec
    as the catalog gives it, and the cell's own settings on top), and it is what the
    runner receives; every other description of a cell (its key, its stored
    parameters) is derived from it.  ``None`` means "not set by the sweep": the
    model's own quantization and flash attention, each suite's own temperature and
    number of samples.
    """

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    model: ModelSpec
    ref: str | None = None
    """The model as the plan names it (a catalog name or a GGUF path); the cell key
    starts with it.  None: the spec's name."""
    quantization: str | None = None
    """A backend's quantization name (q4_k_m, 8bit ...) to make or load; None: as is."""
    flash_attn: bool | None = None
    temperature: float | None = Field(default=0.0, ge=0)
    max_tokens: int = 64
    seed: int = 0
    """Seed of the first sample of each case; sample i uses seed + i."""
    samples: int | None = Field(default=None, ge=1)
    """Completions per case (pass@k); None: each suite's own."""

    @staticmethod
    def key_of(
        ref: str, quantization: str | None, flash_attn: bool | None, temperature: float | None
    ) -> str:
        """``model|quantization|fa or nofa|t0.7``, ``-`` for what is not set: the
        cell's name in the store, which ``--resume`` matches on (never change it)."""
        fa = "-" if flash_attn is None else ("fa" if flash_attn else "nofa")
        temp = "-" if temperature is None else f"t{temperature:g}"
        return f"{ref}|{quantization or '-'}|{fa}|{temp}"

    @property
    def key(self) -> str:
        return self.key_of(
            self.ref or self.model.name, self.quantization, self.flash_attn, self.temperature
        )

    @property
    def load_key(self) -> tuple[str, str | None, bool | None]:
        """Configurations with the same load key share one model load."""
        return (self.ref or self.model.name, self.quantization, self.flash_attn)

    def params(self, **overrides: Any) -> GenerationParams:
        base = GenerationParams(
            temperature=self.temperature or 0.0, max_tokens=self.max_tokens, seed=self.seed
        )
        return base.replace(**overrides) if overrides else base


def canonical_json(data: Any, *, allow_nan: bool = True) -> str:
    """Sorted keys, no spaces, UTF-8: one text per value, for content hashes and
    signatures (agent specs, meta procedures, the store's integrity check, signed
    records, which pass ``allow_nan=False``)."""
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan
    )
