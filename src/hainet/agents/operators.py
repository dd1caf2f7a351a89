"""Evolution operators: each turns a spec into a changed copy, or says it cannot.

An operator is one object (:class:`Operator`): its ``name`` (stored with every
proposal), its ``risk`` (``low``, ``medium`` or ``high``: the self-improving loop
asks a human at or above the policy's level), whether it ``calls_model`` (such an
operator is retried when it proposes nothing), and ``propose(spec, ctx)``.  The
built-ins below are registered as entry points of the group ``hainet.operators``
like a plugin's (:data:`OPERATOR_REGISTRY`); :func:`operator` makes one from a
function.

Each built-in wraps a plain function ``(spec, rng, ...) -> Change | None``: it
returns the changed spec (not yet versioned or given lineage; :class:`Evolver` does
that) with a one-line rationale, or ``None`` when it has nothing sensible to change
(no generate step, no fitting parser, already at the maximum).  Only
``rewrite_prompt`` calls a model; the others are deterministic given the ``rng``.

A change must *type-check* before it is proposed: the result goes through
``AgentSpec`` validation (variables defined before use, known tools), and an
operator that cannot keep the agent's contract (e.g. a rewritten template that drops
``{input}``) returns ``None`` rather than a spec that fails at run time.
"""

from __future__ import annotations

import inspect
import json
import random
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import jsonschema
from pydantic import ValidationError as PydanticValidationError

from hainet.agents.builtin_tools import BUILTIN_TOOLS
from hainet.agents.spec import (
    AgentSpec,
    Example,
    GenerateStep,
    TestCase,
    ToolDef,
    ToolStep,
)
from hainet.agents.testing import CaseOutcome
from hainet.agents.workflow import as_text as workflow_as_text
from hainet.backends.base import Backend
from hainet.errors import BackendError, ValidationError
from hainet.registry import Registry
from hainet.suites.scorers import extract_json
from hainet.types import GenerationParams, Message, Request

__all__ = [
    "DEFAULT_REWRITE_TEMPLATE",
    "MAX_EXAMPLES",
    "OPERATOR_REGISTRY",
    "RISK_LEVELS",
    "Change",
    "Operator",
    "ProposalContext",
    "RiskLevel",
    "add_tool",
    "answer_step",
    "combinations",
    "example_format",
    "as_text",
    "bump_version",
    "few_shot",
    "get_operator",
    "operator",
    "operator_names",
    "params",
    "parser",
    "rewrite_prompt",
    "samples",
    "switch_model",
    "template_vars",
]

MAX_EXAMPLES = 6
"""Few-shot examples per step at most: each one costs prompt tokens on every call."""

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

_REWRITE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"template": {"type": "string", "minLength": 1}},
    "required": ["template"],
}
_FILL = re.compile(r"\{(purpose|template|variables|failures)\}")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\.[A-Za-z0-9_]+)*\}")
# Built-in tools that fit an answer type: the tool's return type must be what the
# targets are, so the new tool step can produce the agent's answer.
_TOOL_RETURNS = {"number": "number"}


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


def _replace_step(spec: AgentSpec, step_id: str, **changes: Any) -> AgentSpec | None:
    """``spec`` with one step changed, or None if the result is not a valid spec."""
    workflow = [
        ({**s.model_dump(), **changes} if s.id == step_id else s.model_dump())
        for s in spec.workflow
    ]
    return _derive(spec, workflow=workflow)


def _derive(spec: AgentSpec, **changes: Any) -> AgentSpec | None:
    try:
        return spec.derive(**changes)
    except (PydanticValidationError, ValidationError, ValueError):
        return None


def _generate_steps(spec: AgentSpec) -> list[GenerateStep]:
    return [s for s in spec.workflow if isinstance(s, GenerateStep)]


def answer_step(spec: AgentSpec) -> GenerateStep | None:
    """The generate step whose value is the agent's answer (None if a tool gives it)."""
    for s in reversed(spec.workflow):
        if getattr(s, "output", None) == spec.output:
            return s if isinstance(s, GenerateStep) else None
    return None


def _failed_cases(
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


# -- rewrite_prompt -------------------------------------------------------------


def _rewrite_prompt_text(
    template_text: str,
    spec: AgentSpec,
    step: GenerateStep,
    cases: list[tuple[TestCase, CaseOutcome]],
) -> str:
    lines = []
    for case, outcome in cases[:4]:
        got = outcome.output or f"(error: {outcome.error})"
        lines.append(
            f"- {json.dumps(as_text(case.input)[:300], ensure_ascii=False)}: expected "
            f"{json.dumps(as_text(case.target)[:200], ensure_ascii=False)}, got "
            f"{json.dumps(got[:200], ensure_ascii=False)}"
        )
    needed = sorted(template_vars(step.template))
    fills = {
        "purpose": spec.purpose,
        # As JSON without its quotes: one line, newlines shown as \\n like the answer's.
        "template": json.dumps(step.template, ensure_ascii=False)[1:-1],
        "variables": " ".join("{" + v + "}" for v in needed) or "(none)",
        "failures": "\n".join(lines) or "- (none recorded)",
    }
    # One pass, so a filled-in value that happens to contain "{template}" stays as is.
    return _FILL.sub(lambda m: fills[m.group(1)], template_text)


async def rewrite_prompt(
    spec: AgentSpec,
    rng: random.Random,
    *,
    proposer: Backend,
    trainset: Sequence[TestCase],
    failures: Sequence[CaseOutcome],
    rewrite_template: str = DEFAULT_REWRITE_TEMPLATE,
) -> Change | None:
    """The proposer model rewrites one generate step's template from failure cases."""
    steps = _generate_steps(spec)
    if not steps:
        return None
    step = rng.choice(steps)
    cases = _failed_cases(trainset, failures)
    prompt = _rewrite_prompt_text(rewrite_template, spec, step, cases)
    grammar = _REWRITE_SCHEMA if proposer.supports_json_schema else None
    params = GenerationParams(
        temperature=0.7,
        max_tokens=min(1024, max(128, len(step.template) // 2 + 96)),
        seed=rng.randrange(2**31),
        json_schema=grammar,
    )
    request = (
        Request(messages=(Message("user", prompt),), params=params)
        if proposer.spec.mode == "chat"
        else Request(prompt=prompt, params=params)
    )
    try:
        completion = await proposer.generate(request)
        answer = extract_json(completion.text)
    except (BackendError, ValueError):
        return None
    new = answer.get("template") if isinstance(answer, dict) else None
    if not isinstance(new, str) or not new.strip() or new.strip() == step.template.strip():
        return None
    # The step must still receive what it needs: its input and its few-shot block.
    if not template_vars(step.template) <= template_vars(new):
        return None
    child = _replace_step(spec, step.id, template=new)
    if child is None:
        return None
    return Change(child, f"rewrote the template of step {step.id!r} from {len(cases)} failures")


# -- few_shot -------------------------------------------------------------------


def _example_output(step: GenerateStep, target: Any) -> str | None:
    """The target as this step's literal output, or None if the step cannot emit it."""
    if target is None:
        return None
    if step.json_schema is not None:
        # A grammar-constrained step emits JSON of its schema: only such a target fits.
        try:
            jsonschema.validate(target, step.json_schema)
        except jsonschema.ValidationError:
            return None
        return json.dumps(target, ensure_ascii=False)
    return as_text(target)


_DEFAULT_EXAMPLE_TEMPLATE = GenerateStep.model_fields["example_template"].default


def example_format(step: GenerateStep) -> str | None:
    """An example template in the words of ``step``'s prompt, or None if unclear.

    ``"{examples}Review: {input}\nSentiment:"`` gives ``"Review: {input}\nSentiment:
    {output}\n\n"``: the part of the template from the line holding ``{input}`` on,
    with the answer after it.  Only when the step still has the default format and
    that part uses no variable but ``{input}``.
    """
    if step.example_template != _DEFAULT_EXAMPLE_TEMPLATE:
        return None  # the author chose a format: keep it
    body = step.template.replace("{examples}", "")
    at = body.find("{input}")
    if at < 0:
        return None
    tail = body[body.rfind("\n", 0, at) + 1 :].rstrip()
    if template_vars(tail) != {"input"} or tail.endswith("{input}"):
        return None  # nothing after the input to put the answer behind
    return tail + " {output}\n\n"


def few_shot(
    spec: AgentSpec,
    rng: random.Random,
    *,
    trainset: Sequence[TestCase],
    failures: Sequence[CaseOutcome],
    max_examples: int = MAX_EXAMPLES,
) -> Change | None:
    """Make failed train cases examples of the answer step (target as the output).

    Only the step that produces the agent's answer can take a target as its output;
    an intermediate step's output (an expression for a calculator) is not the target.
    Without failures, unused train cases are tried instead.  Existing examples are
    kept after the new ones until ``max_examples``.
    """
    step = answer_step(spec)
    if step is None:
        return None
    existing = {ex.input for ex in step.examples}
    failed = [c for c, _ in _failed_cases(trainset, failures)]
    pool = [c for c in failed if as_text(c.input) not in existing]
    source = "failed"
    if not pool:
        pool = [c for c in trainset if as_text(c.input) not in existing]
        source = "unused"
    rng.shuffle(pool)
    new: list[Example] = []
    for case in pool:
        out = _example_output(step, case.target)
        if out is not None:
            new.append(Example(input=as_text(case.input), output=out))
        if len(new) >= max(1, max_examples // 2):
            break
    if not new:
        return None
    examples = (new + list(step.examples))[:max_examples]
    template = step.template
    # A step without an {examples} slot gets one in front.
    if "examples" not in template_vars(template):
        template = "{examples}" + template
    changes: dict[str, Any] = {"examples": [e.model_dump() for e in examples], "template": template}
    if not step.examples:
        # The first examples set the format: shown in the template's own words, a base
        # model continues the pattern; generic "Input:/Output:" lines next to a
        # "Review: ...\nSentiment:" prompt only confuse it.
        fmt = example_format(step)
        if fmt is not None:
            changes["example_template"] = fmt
    child = _replace_step(spec, step.id, **changes)
    if child is None:
        return None
    return Change(child, f"{len(new)} {source} train case(s) as examples of step {step.id!r}")


# -- params / samples -----------------------------------------------------------


def params(spec: AgentSpec, rng: random.Random) -> Change | None:
    """Change temperature or max_tokens of one generate step."""
    options: list[tuple[str, dict[str, Any], str]] = []
    for s in _generate_steps(spec):
        if s.max_tokens * 2 <= 4096:
            options.append((s.id, {"max_tokens": s.max_tokens * 2}, "doubled max_tokens"))
        if s.max_tokens >= 16:
            options.append((s.id, {"max_tokens": s.max_tokens // 2}, "halved max_tokens"))
        if s.temperature > 0:
            options.append((s.id, {"temperature": 0.0}, "greedy decoding (temperature 0)"))
        elif s.samples > 1:
            # Sampling only helps a vote when the samples can differ.
            options.append((s.id, {"temperature": 0.7}, "temperature 0.7 for the vote"))
    if not options:
        return None
    step_id, changes, why = rng.choice(options)
    child = _replace_step(spec, step_id, **changes)
    return Change(child, f"{why} in step {step_id!r}") if child else None


def samples(spec: AgentSpec, rng: random.Random) -> Change | None:
    """N samples with a majority vote (odd N, so a two-way split cannot tie)."""
    options = [s for s in _generate_steps(spec) if s.samples < 15]
    if not options:
        return None
    step = rng.choice(options)
    n = 3 if step.samples < 3 else step.samples + 2
    changes: dict[str, Any] = {"samples": n}
    if step.temperature == 0:
        changes["temperature"] = 0.7  # identical greedy samples would make the vote moot
    child = _replace_step(spec, step.id, **changes)
    return Change(child, f"{n} samples with majority vote in step {step.id!r}") if child else None


# -- parser ---------------------------------------------------------------------


def _is_number(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int | float):
        return True
    if isinstance(v, str):
        try:
            float(v.replace(",", ""))
        except ValueError:
            return False
        return True
    return False


def _is_integral(v: Any) -> bool:
    return _is_number(v) and float(str(v).replace(",", "")).is_integer()


def fitting_parsers(targets: Sequence[Any]) -> list[tuple[str, dict[str, Any]]]:
    """Parsers (with their options) that can produce values like ``targets``."""
    targets = [t for t in targets if t is not None]
    if not targets:
        return []
    if all(_is_number(t) for t in targets):
        out: list[tuple[str, dict[str, Any]]] = [("number", {})]
        if all(_is_integral(t) for t in targets):
            out.append(("integer", {}))
        return [*out, ("first_line", {})]
    if all(isinstance(t, dict | list) for t in targets):
        return [("json", {})]
    if all(isinstance(t, str) for t in targets):
        out = [("first_line", {}), ("text", {})]
        distinct = sorted({t.strip() for t in targets})
        if (
            len(distinct) <= 8
            and len(distinct) < len(targets)
            and all("\n" not in t for t in distinct)
        ):
            out.append(("choice", {"choices": distinct}))
        return out
    return []


def parser(spec: AgentSpec, rng: random.Random, *, trainset: Sequence[TestCase]) -> Change | None:
    """Another parser for the answer step, one that fits the train targets."""
    step = answer_step(spec)
    if step is None or step.json_schema is not None:
        return None  # a grammar-constrained step emits JSON; only 'json' reads it
    options = [(p, o) for p, o in fitting_parsers([c.target for c in trainset]) if p != step.parser]
    if not options:
        return None
    name, extra = rng.choice(options)
    child = _replace_step(spec, step.id, parser=name, **extra)
    return (
        Change(child, f"parser {step.parser!r} -> {name!r} in step {step.id!r}") if child else None
    )


# -- add_tool -------------------------------------------------------------------


def _fresh(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    i = 2
    while f"{name}_{i}" in taken:
        i += 1
    return f"{name}_{i}"


def _required(parameters: dict[str, Any]) -> list[str]:
    return list(parameters.get("required") or parameters.get("properties", {}))


def add_tool(spec: AgentSpec, rng: random.Random, *, trainset: Sequence[TestCase]) -> Change | None:
    """Route the answer through a built-in tool whose result type fits the targets.

    The answer step then produces the tool's argument (its first line: a numeric
    answer is itself a valid calculator expression, so nothing breaks before the
    prompt learns to write expressions) and a new tool step produces the answer.
    """
    step = answer_step(spec)
    targets = [c.target for c in trainset if c.target is not None]
    if step is None or step.json_schema is not None or not targets:
        return None
    kind = "number" if all(_is_number(t) for t in targets) else None
    have = {t.builtin for t in spec.tools if t.builtin}
    # One model output can fill exactly one argument: tools needing more are out.
    fits = [
        t
        for t in BUILTIN_TOOLS.values()
        if kind is not None
        and _TOOL_RETURNS.get(t.returns) == kind
        and t.name not in have
        and len(_required(t.parameters)) == 1
    ]
    if not fits:
        return None
    tool = rng.choice(fits)
    required = _required(tool.parameters)
    names = {s.id for s in spec.workflow} | {
        s.output for s in spec.workflow if hasattr(s, "output")
    }
    arg_var = _fresh(f"{spec.output}_{required[0]}", names)
    step_id = _fresh(tool.name, names | {arg_var})
    tool_name = _fresh(tool.name, {t.name for t in spec.tools})
    workflow: list[dict[str, Any]] = []
    for s in spec.workflow:
        if s.id == step.id:
            workflow.append({**s.model_dump(), "output": arg_var, "parser": "first_line"})
            tool_step = ToolStep(
                id=step_id,
                tool=tool_name,
                args={required[0]: "{" + arg_var + "}"},
                output=spec.output,
            )
            workflow.append(tool_step.model_dump())
        else:
            workflow.append(s.model_dump())
    tools = [
        *(t.model_dump() for t in spec.tools),
        ToolDef(name=tool_name, builtin=tool.name).model_dump(),
    ]
    child = _derive(spec, workflow=workflow, tools=tools)
    if child is None:
        return None
    return Change(child, f"answer of step {step.id!r} computed by built-in tool {tool.name!r}")


# -- switch_model ---------------------------------------------------------------


def switch_model(
    spec: AgentSpec, *, current: str, ranking: Sequence[str], available: Mapping[str, object]
) -> Change | None:
    """Require the next model in ``ranking`` (after ``current``) that has a runner."""
    if current in ranking:
        i = list(ranking).index(current)
        order = [*ranking[i + 1 :], *ranking[:i]]
    else:
        order = list(ranking)
    target = next((m for m in order if m != current and m in available), None)
    if target is None:
        return None
    models = [target, *(m for m in spec.requirements.models if m != target)]
    requirements = {**spec.requirements.model_dump(), "models": models}
    child = _derive(spec, requirements=requirements)
    return Change(child, f"model {current} -> {target}") if child else None


# -- crossing -------------------------------------------------------------------


def _match(step: GenerateStep, donor: AgentSpec, index: int) -> GenerateStep | None:
    """The donor's generate step that plays ``step``'s part: same id, else same place."""
    gens = [s for s in donor.workflow if isinstance(s, GenerateStep)]
    for s in gens:
        if s.id == step.id:
            return s
    return gens[index] if index < len(gens) else None


def _with_steps(
    spec: AgentSpec, changes: Mapping[str, dict[str, Any]], **extra: Any
) -> AgentSpec | None:
    workflow = [{**s.model_dump(), **changes.get(s.id, {})} for s in spec.workflow]
    try:
        return spec.derive(workflow=workflow, **extra)
    except (PydanticValidationError, ValidationError, ValueError):
        return None


def _union_examples(base: AgentSpec, donors: Sequence[AgentSpec]) -> AgentSpec | None:
    changes: dict[str, dict[str, Any]] = {}
    gens = [s for s in base.workflow if isinstance(s, GenerateStep)]
    for i, step in enumerate(gens):
        examples = list(step.examples)
        inputs = {e.input for e in examples}
        for donor in donors:
            other = _match(step, donor, i)
            # Examples of a step with another output format would teach the wrong format.
            if other is None or other.example_template != step.example_template:
                continue
            for ex in other.examples:
                if ex.input not in inputs:
                    inputs.add(ex.input)
                    examples.append(ex)
        if len(examples) > len(step.examples):
            changes[step.id] = {"examples": [e.model_dump() for e in examples[:MAX_EXAMPLES]]}
            if "examples" not in template_vars(step.template):
                changes[step.id]["template"] = "{examples}" + step.template
    return _with_steps(base, changes) if changes else None


def _prompts_from(base: AgentSpec, donor: AgentSpec) -> AgentSpec | None:
    """``base``'s structure (tools, parsers) with ``donor``'s prompts and examples."""
    changes: dict[str, dict[str, Any]] = {}
    gens = [s for s in base.workflow if isinstance(s, GenerateStep)]
    for i, step in enumerate(gens):
        other = _match(step, donor, i)
        if other is None or template_vars(other.template) - template_vars(step.template):
            continue  # the donor's prompt needs variables this workflow does not have
        changes[step.id] = {
            "template": other.template,
            "system": other.system,
            "examples": [e.model_dump() for e in other.examples],
            "example_template": other.example_template,
        }
    return _with_steps(base, changes) if changes else None


def combinations(
    ranked: Sequence[AgentSpec],
) -> list[tuple[str, AgentSpec | None, str]]:
    """Candidate crosses, most promising first (``ranked`` is best parent first)."""
    best, others = ranked[0], ranked[1:]
    out: list[tuple[str, AgentSpec | None, str]] = [
        (
            "cross_examples",
            _union_examples(best, others),
            f"{best.name}'s workflow with the union of all parents' examples",
        ),
    ]
    for donor in others:
        out.append(
            (
                "cross_prompt",
                _prompts_from(best, donor),
                f"{best.name}'s workflow and tools with {donor.name}'s prompts",
            )
        )
        out.append(
            (
                "cross_tools",
                _prompts_from(donor, best),
                f"{donor.name}'s workflow and tools with {best.name}'s prompts",
            )
        )
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


# -- the built-in operators (entry points in pyproject.toml) --------------------

REWRITE_PROMPT = FunctionOperator(
    "rewrite_prompt",
    "medium",
    lambda spec, ctx: rewrite_prompt(
        spec,
        ctx.rng,
        proposer=ctx.proposer,
        trainset=ctx.trainset,
        failures=ctx.failures,
        rewrite_template=ctx.rewrite_template,
    ),
    calls_model=True,
)
FEW_SHOT = FunctionOperator(
    "few_shot",
    "low",
    lambda spec, ctx: few_shot(spec, ctx.rng, trainset=ctx.trainset, failures=ctx.failures),
)
PARAMS = FunctionOperator("params", "low", lambda spec, ctx: params(spec, ctx.rng))
SAMPLES = FunctionOperator("samples", "low", lambda spec, ctx: samples(spec, ctx.rng))
PARSER = FunctionOperator(
    "parser", "medium", lambda spec, ctx: parser(spec, ctx.rng, trainset=ctx.trainset)
)
# High: it adds a tool (code run in the sandbox) to the agent.
ADD_TOOL = FunctionOperator(
    "add_tool", "high", lambda spec, ctx: add_tool(spec, ctx.rng, trainset=ctx.trainset)
)
SWITCH_MODEL = FunctionOperator(
    "switch_model",
    "medium",
    lambda spec, ctx: switch_model(
        spec,
        current=spec.requirements.models[0] if spec.requirements.models else ctx.current_model,
        ranking=ctx.ranking,
        available=ctx.available,
    ),
)
