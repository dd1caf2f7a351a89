"""The operator base of :mod:`hainet.agents.operators`: what an operator is, the
context it proposes from, the registry that finds one by name, and the spec-editing
helpers every built-in shares.

The names without an underscore are shared with the sibling modules; users import
the public ones from :mod:`hainet.agents.operators`.
"""

from __future__ import annotations

import inspect
import random
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import ValidationError as PydanticValidationError

from hainet.agents.spec import AgentSpec, GenerateStep, TestCase
from hainet.agents.testing import CaseOutcome
from hainet.agents.workflow import as_text as workflow_as_text
from hainet.backends.base import Backend
from hainet.errors import ValidationError
from hainet.registry import Registry

# rewrite_prompt's prompt, kept here because it is ProposalContext's default.
DEFAULT_REWRITE_TEMPLATE = """\
Improve prompt templates so that a small language model answers correctly. An improved \
template states the task plainly, says what form the answer takes, and keeps every \
placeholder in braces.

Purpose: Translate an English word into French.
Template: {input} in French:
Placeholders: {input}
Wrong answers:
- "cat": expected "chat", got "cat is a small animal"
Improved: {"template": "Translate the English word into French. Answer with one word.\
\\nEnglish: {input}\\nFrench:"}

Purpose: {purpose}
Template: {template}
Placeholders: {variables}
Wrong answers:
{failures}
Improved: """
"""The proposer's prompt.  ``{purpose}``, ``{template}``, ``{variables}`` and
``{failures}`` are filled by plain replacement, so other braces (JSON) stay."""

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\.[A-Za-z0-9_]+)*\}")


RISK_LEVELS = ("low", "medium", "high")
RiskLevel = Literal["low", "medium", "high"]


@dataclass(frozen=True, slots=True)
class Change:
    spec: AgentSpec
    rationale: str


@dataclass(frozen=True)
class ProposalContext:
    """What an operator may use to propose a child (given by :class:`Evolver`)."""

    rng: random.Random
    """The evolver's seeded RNG: draw from it, so that a round is reproducible."""
    proposer: Backend
    """The model that proposes changes (``rewrite_prompt``)."""
    trainset: Sequence[TestCase] = ()
    failures: Sequence[CaseOutcome] = ()
    """The parent's failed training runs."""
    rewrite_template: str = DEFAULT_REWRITE_TEMPLATE
    current_model: str = ""
    """The model the parent runs on."""
    ranking: Sequence[str] = ()
    """Models best first, for ``switch_model``."""
    available: Mapping[str, object] = field(default_factory=dict)
    """Models with a runner, for ``switch_model``."""


@runtime_checkable
class Operator(Protocol):
    name: str
    risk: RiskLevel
    calls_model: bool

    async def propose(self, spec: AgentSpec, ctx: ProposalContext) -> Change | None: ...


ProposeFn = Callable[[AgentSpec, ProposalContext], "Change | None | Awaitable[Change | None]"]


@dataclass(frozen=True)
class FunctionOperator:
    """An :class:`Operator` made of a function ``(spec, ctx) -> Change | None``
    (sync or async)."""

    name: str
    risk: RiskLevel
    fn: ProposeFn
    calls_model: bool = False

    async def propose(self, spec: AgentSpec, ctx: ProposalContext) -> Change | None:
        out = self.fn(spec, ctx)
        if inspect.isawaitable(out):
            out = await out
        return out


def operator(
    name: str, *, risk: RiskLevel, calls_model: bool = False
) -> Callable[[ProposeFn], FunctionOperator]:
    """Decorator: ``@operator("shorten", risk="low")`` on ``def f(spec, ctx)``."""

    def wrap(fn: ProposeFn) -> FunctionOperator:
        return FunctionOperator(name, risk, fn, calls_model)

    return wrap


def as_text(value: Any) -> str:
    """A case's input or target as prompt text (:func:`workflow.as_text`), a whole
    float written as an integer ("12", not "12.0")."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return workflow_as_text(value)


def bump_version(version: str) -> str:
    """``1.0.0`` -> ``1.0.1``: an evolved agent is a patch of its parent."""
    major, minor, patch = (int(p) for p in version.split("."))
    return f"{major}.{minor}.{patch + 1}"


def template_vars(template: str) -> set[str]:
    """The variable names a template uses (``{call.expression}`` counts as ``call``)."""
    return {m.group(1) for m in _PLACEHOLDER.finditer(template)}


def replace_step(spec: AgentSpec, step_id: str, **changes: Any) -> AgentSpec | None:
    """``spec`` with one step changed, or None if the result is not a valid spec."""
    workflow = [
        ({**s.model_dump(), **changes} if s.id == step_id else s.model_dump())
        for s in spec.workflow
    ]
    return derive(spec, workflow=workflow)


def derive(spec: AgentSpec, **changes: Any) -> AgentSpec | None:
    try:
        return spec.derive(**changes)
    except (PydanticValidationError, ValidationError, ValueError):
        return None


def generate_steps(spec: AgentSpec) -> list[GenerateStep]:
    return [s for s in spec.workflow if isinstance(s, GenerateStep)]


def answer_step(spec: AgentSpec) -> GenerateStep | None:
    """The generate step whose value is the agent's answer (None if a tool gives it)."""
    for s in reversed(spec.workflow):
        if getattr(s, "output", None) == spec.output:
            return s if isinstance(s, GenerateStep) else None
    return None


def failed_cases(
    trainset: Sequence[TestCase], failures: Sequence[CaseOutcome]
) -> list[tuple[TestCase, CaseOutcome]]:
    by_id = {c.id: c for c in trainset}
    seen: set[str] = set()
    out: list[tuple[TestCase, CaseOutcome]] = []
    for o in failures:
        if o.test_id in by_id and o.test_id not in seen:
            seen.add(o.test_id)
            out.append((by_id[o.test_id], o))
    return out


# -- the registry ---------------------------------------------------------------


def _check(name: str, obj: object) -> Operator:
    if isinstance(obj, type):
        obj = obj()  # an operator class with no arguments
    if not isinstance(obj, Operator):
        raise ValidationError(
            f"operator {name!r} is not an evolution operator (name, risk, calls_model, propose)"
        )
    if obj.name != name:
        raise ValidationError(f"operator registered as {name!r} calls itself {obj.name!r}")
    if obj.risk not in RISK_LEVELS:
        raise ValidationError(
            f"operator {name!r}: risk {obj.risk!r} is not one of {', '.join(RISK_LEVELS)}"
        )
    return obj


OPERATOR_REGISTRY: Registry[Operator] = Registry(
    "operator",
    check=_check,
    error=lambda msg, hint: ValidationError(msg, hint=hint),
    unknown=lambda name, known: ValidationError(
        f"unknown operator {name!r}; known: {', '.join(known)}"
    ),
)


def operator_names() -> list[str]:
    """Every operator known: hainet's and plugins' (nothing is imported)."""
    return OPERATOR_REGISTRY.names()


def get_operator(name: str) -> Operator:
    return OPERATOR_REGISTRY.get(name)
