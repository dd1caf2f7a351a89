"""The typed parts of a stored run and sweep: summary, parameters, model, hardware, plan.

Each is stored as one JSON column.  Until schema 2 they were plain dicts read by
string keys; now they are pydantic models with a description on each field, and a
:class:`Record` keeps them readable as the dicts they replace:

* its dict form (``model_dump``, what the store writes, what ``--json`` prints) has
  exactly the keys that were given or read, so rows and JSON output keep the shape
  they had (a running run's summary is still ``{}``; a summary without a profile
  has no ``categories`` key), and schema-1 rows load as they are;
* ``r["key"]``, ``r.get("key")``, ``"key" in r``, ``r.keys()``/``items()``/``values()``
  and ``r == {...}`` read that dict form, so scripts written against the dicts keep
  working.  Attributes (``r.key``) always answer, with the field's default when the
  key was not given: that is what hainet's own code reads.

Unknown keys are kept (``extra="allow"``) rather than dropped or refused: the store
is lenient on reading, and a key a newer writer adds survives a round trip.
"""

from __future__ import annotations

from collections.abc import ItemsView, KeysView, Mapping, ValuesView
from typing import Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)

from hainet.errors import StoreError
from hainet.types import ModelSpec

__all__ = [
    "GroupScore",
    "Hardware",
    "Record",
    "RunParams",
    "RunSummary",
    "StoredModel",
    "StoredPlan",
    "coerce",
]

R = TypeVar("R", bound="Record")


class Record(BaseModel):
    """A typed JSON column that reads like the dict it replaces (module docstring)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    def _given(self) -> dict[str, Any]:
        keys = self.model_fields_set | set(self.model_extra or {})
        return {k: getattr(self, k) for k in keys}

    @model_serializer(mode="wrap")
    def _as_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        given = self.model_fields_set | set(self.model_extra or {})
        return {k: v for k, v in data.items() if k in given}

    def __getitem__(self, key: str) -> Any:
        given = self._given()
        if key not in given:
            raise KeyError(key)
        return given[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._given().get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._given()

    def keys(self) -> KeysView[str]:
        return self._given().keys()

    def items(self) -> ItemsView[str, Any]:
        return self._given().items()

    def values(self) -> ValuesView[Any]:
        return self._given().values()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._given() == dict(other)
        return super().__eq__(other)


class GroupScore(Record):
    """Scores of the cases of one suite, or of one capability, in one run."""

    score: float | None = Field(
        default=None, description="Mean score 0..1 of the scored cases; None if none was scored."
    )
    cases: int = Field(default=0, description="Cases stored, errors included.")
    scored: int = Field(default=0, description="Cases with a score.")
    errors: int = Field(default=0, description="Cases that ended in an error (not scored).")


class RunSummary(Record):
    """Aggregates of a run, written when it ends (``bench.runner.summarize``)."""

    suites: dict[str, GroupScore] = Field(
        default_factory=dict, description="Per suite name, in the order the suites ran."
    )
    capabilities: dict[str, GroupScore] = Field(
        default_factory=dict, description="Per capability the suites test."
    )
    ttft_s: float | None = Field(
        default=None, description="Mean time to first token of the error-free cases, seconds."
    )
    prefill_tps: float | None = Field(
        default=None, description="Mean prompt tokens per second of the error-free cases."
    )
    decode_tps: float | None = Field(
        default=None, description="Mean generated tokens per second of the error-free cases."
    )
    prompt_tokens: int = Field(default=0, description="Prompt tokens over every case.")
    completion_tokens: int = Field(default=0, description="Generated tokens over every case.")
    categories: list[str] | None = Field(
        default=None,
        description="Categories this run alone supports (generalist, coding, lightweight...); "
        "only on completed runs, None otherwise.",
    )
    tier: str | None = Field(
        default=None, description="Size tier (tiny, small, medium, large); None if unknown."
    )


class RunParams(Record):
    """How a run sampled and was executed."""

    temperature: float | None = Field(
        default=None, description="Temperature of every case; None: each suite's own."
    )
    seed: int = Field(default=0, description="Seed of the first sample of each case.")
    max_concurrent: int | None = Field(
        default=None, description="Requests in flight at most; None if not recorded."
    )
    judge: str | None = Field(default=None, description="Model judging open-ended answers.")
    samples: int | None = Field(
        default=None, description="Completions per case for every suite; None: each suite's own."
    )
    prefix_reuse: bool | None = Field(
        default=None,
        description="Whether each suite's shared prompt prefix was evaluated once and reused "
        "(in-process llama.cpp); False: a full prefill per case; None: not recorded (older runs, "
        "which were full prefill).",
    )
    prefix_tokens: dict[str, int] | None = Field(
        default=None,
        description="Length in tokens of each suite's reused prefix (0: that suite's prompts "
        "share too little and got a full prefill); only with prefix_reuse.",
    )


class Hardware(Record):
    """The machine a run ran on (``bench.profile.hardware_fingerprint``)."""

    cpu: str | None = Field(default=None, description="CPU model name.")
    cores_logical: int | None = Field(default=None, description="Logical cores.")
    cores_physical: int | None = Field(default=None, description="Physical cores.")
    cpus_usable: int | None = Field(
        default=None, description="Cores this process may run on (its affinity)."
    )
    ram_mb: int | None = Field(default=None, description="Total RAM, MiB.")
    gpus: list[str] = Field(default_factory=list, description="GPUs as nvidia-smi -L lists them.")
    machine: str | None = Field(default=None, description="Architecture, e.g. x86_64.")
    system: str | None = Field(default=None, description="Operating system and release.")
    python: str | None = Field(default=None, description="Python version.")


class StoredModel(Record):
    """The :class:`~hainet.types.ModelSpec` a run loaded, without its API key.

    Every field is optional so that any row loads; a test holds the fields to
    ModelSpec's.  An ``api_key`` is dropped whatever the writer passed."""

    name: str | None = Field(default=None, description="Name users type, e.g. 'gemma-3-270m'.")
    backend: str | None = Field(default=None, description="Registered backend name.")
    path: str | None = Field(default=None, description="GGUF file for in-process backends.")
    url: str | None = Field(default=None, description="Base URL of an OpenAI-compatible server.")
    model: str | None = Field(default=None, description="Model name the server serves.")
    mode: str | None = Field(default=None, description="'prompt' for base models, 'chat'.")
    chat_format: str | None = Field(default=None, description="llama.cpp chat format, if set.")
    quantization: str | None = Field(default=None, description="Quantization, e.g. Q4_K_M.")
    flash_attn: bool | None = Field(default=None, description="Whether flash attention was on.")
    n_ctx: int | None = Field(default=None, description="Context size, tokens.")
    n_threads: int | None = Field(default=None, description="Threads; None: the backend's own.")
    family: str | None = Field(default=None, description="Model family, e.g. gemma.")
    parameters: int | None = Field(default=None, description="Parameter count.")
    file_size: int | None = Field(default=None, description="Size of the model file, bytes.")
    sha256: str | None = Field(default=None, description="sha256 of the model file, if known.")

    @model_validator(mode="before")
    @classmethod
    def _no_key(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "api_key" in data:
            return {k: v for k, v in data.items() if k != "api_key"}
        return data

    @classmethod
    def of(cls, spec: ModelSpec) -> StoredModel:
        """What a run stores of ``spec``: every field but the API key."""
        return cls.model_validate(spec.model_dump(mode="json", exclude={"api_key"}))


class StoredPlan(Record):
    """What defines a sweep's cells (``bench.cells.SweepPlan.canonical``): the store
    keeps it as given, and its sha256 is the sweep's ``plan_hash``."""

    models: list[str] = Field(default_factory=list, description="Model names.")
    quantizations: list[str | None] = Field(
        default_factory=list, description="Quantizations; None: the model as it is."
    )
    flash_attention: list[bool | None] = Field(
        default_factory=list, description="Flash attention settings; None: the model's own."
    )
    temperatures: list[float | None] = Field(
        default_factory=list, description="Temperatures; None: each suite's own."
    )
    suites: list[str] = Field(default_factory=list, description="Suite names.")
    quick: bool = Field(default=False, description="Whether only the quick subsets ran.")
    seed: int = Field(default=0, description="Seed of the first sample of each case.")
    judge: str | None = Field(default=None, description="Model judging open-ended answers.")
    samples: int | None = Field(
        default=None, description="Completions per case; None: each suite's own."
    )


def coerce(kind: type[R], value: R | Mapping[str, Any], what: str, name: str) -> R:
    """``value`` as a ``kind`` record: itself, or its dict form checked against it."""
    if isinstance(value, kind):
        return value
    try:
        return kind.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in (name, *first["loc"]))
        raise StoreError(f"cannot {what}: {where}: {first['msg']}") from None
