"""The structural operators: decoding parameters (``params``), a majority vote
(``samples``), the answer's ``parser``, a built-in tool (``add_tool``) and the
required model (``switch_model``).  All are deterministic given the ``rng``."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from hainet.agents.builtin_tools import BUILTIN_TOOLS
from hainet.agents.operators._base import (
    Change,
    FunctionOperator,
    answer_step,
    derive,
    generate_steps,
    replace_step,
)
from hainet.agents.spec import AgentSpec, TestCase, ToolDef, ToolStep

# Built-in tools that fit an answer type: the tool's return type must be what the
# targets are, so the new tool step can produce the agent's answer.
_TOOL_RETURNS = {"number": "number"}


# -- params / samples -----------------------------------------------------------


def params(spec: AgentSpec, rng: random.Random) -> Change | None:
    """Change temperature or max_tokens of one generate step."""
    options: list[tuple[str, dict[str, Any], str]] = []
    for s in generate_steps(spec):
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
    child = replace_step(spec, step_id, **changes)
    return Change(child, f"{why} in step {step_id!r}") if child else None


def samples(spec: AgentSpec, rng: random.Random) -> Change | None:
    """N samples with a majority vote (odd N, so a two-way split cannot tie)."""
    options = [s for s in generate_steps(spec) if s.samples < 15]
    if not options:
        return None
    step = rng.choice(options)
    n = 3 if step.samples < 3 else step.samples + 2
    changes: dict[str, Any] = {"samples": n}
    if step.temperature == 0:
        changes["temperature"] = 0.7  # identical greedy samples would make the vote moot
    child = replace_step(spec, step.id, **changes)
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
    child = replace_step(spec, step.id, parser=name, **extra)
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
    child = derive(spec, workflow=workflow, tools=tools)
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
    child = derive(spec, requirements=requirements)
    return Change(child, f"model {current} -> {target}") if child else None


# -- the built-in operators (entry points in pyproject.toml) --------------------

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
