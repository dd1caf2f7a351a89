"""Task types and agent types: data in the package, extensible by users.

``data/types.json`` holds the built-in types; ``HAINET_HOME/select.json`` (same shape)
is merged over it, entry by entry, so a user can add a type or replace one.

Task-type weights are over *terms*: the eight capabilities plus ``speed`` (decode
tokens/s), ``ttft`` (time to first token), ``memory`` (peak RSS) and ``quality`` (the
mean of every measured capability).  Agent-type weights are over task types and/or
terms; a key that names a task type is read as the task type (``tool_use`` and
``structured_output`` are both), and it expands into that task type's weights.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticValidationError

from hainet.config import home_dir
from hainet.errors import ConfigError, ValidationError
from hainet.inputs import CONFIG_LIMITS, load_file
from hainet.suites.loader import CAPABILITIES

__all__ = ["MEASURE_TERMS", "TERMS", "SelectType", "Taxonomy", "load_taxonomy"]

MEASURE_TERMS = ("speed", "ttft", "memory")
TERMS = (*CAPABILITIES, *MEASURE_TERMS, "quality")
USER_FILE = "select.json"


class SelectType(BaseModel):
    description: str = Field(description="What the type is for; embedded by --describe.")
    weights: dict[str, float] = Field(description="Weight per term (or per task type).")


class Taxonomy(BaseModel):
    task_types: dict[str, SelectType]
    agent_types: dict[str, SelectType]

    def task_weights(self, name: str) -> dict[str, float]:
        if name not in self.task_types:
            raise ValidationError(
                f"unknown task type {name!r}; valid: {', '.join(sorted(self.task_types))}"
            )
        return _normalized(self.task_types[name].weights)

    def agent_weights(self, name: str) -> dict[str, float]:
        if name not in self.agent_types:
            raise ValidationError(
                f"unknown agent type {name!r}; valid: {', '.join(sorted(self.agent_types))}"
            )
        out: dict[str, float] = {}
        for key, weight in _normalized(self.agent_types[name].weights).items():
            parts = self.task_weights(key) if key in self.task_types else {key: 1.0}
            for term, w in parts.items():
                out[term] = out.get(term, 0.0) + weight * w
        return _normalized(out)


def _normalized(weights: dict[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    return {k: v / total for k, v in weights.items() if v > 0}


def _builtin() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        files("hainet.select").joinpath("data", "types.json").read_text("utf-8")
    )
    return data


def load_taxonomy(home: Path | None = None) -> Taxonomy:
    """The built-in types with ``HAINET_HOME/select.json`` merged over them."""
    data = _builtin()
    path = home_dir(home) / USER_FILE
    if path.is_file():
        user = load_file(path, error=ConfigError, limits=CONFIG_LIMITS, kind=".json")
        if not isinstance(user, dict):
            raise ConfigError(f"{path}: expected an object with task_types / agent_types")
        for section in ("task_types", "agent_types"):
            data[section].update(user.get(section) or {})
    try:
        taxonomy = Taxonomy.model_validate(data)
    except PydanticValidationError as exc:
        raise ConfigError(f"bad selector types (check {path}): {exc}") from exc
    _check(taxonomy, path)
    return taxonomy


def _check(taxonomy: Taxonomy, path: Path) -> None:
    for kind, types, allowed in (
        ("task", taxonomy.task_types, set(TERMS)),
        ("agent", taxonomy.agent_types, set(TERMS) | set(taxonomy.task_types)),
    ):
        for name, entry in types.items():
            bad = sorted(set(entry.weights) - allowed)
            if bad or not entry.weights or any(w < 0 for w in entry.weights.values()):
                raise ConfigError(
                    f"{kind} type {name!r} (check {path}): weights must be non-negative, "
                    f"not all zero, over {', '.join(sorted(allowed))}"
                    + (f"; unknown: {', '.join(bad)}" if bad else "")
                )
            if sum(entry.weights.values()) <= 0:
                raise ConfigError(f"{kind} type {name!r} (check {path}): weights are all zero")
