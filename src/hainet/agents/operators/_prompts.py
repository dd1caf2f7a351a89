"""The prompt-editing operators: ``rewrite_prompt`` (the proposer model rewrites a
template from failures), ``few_shot`` (train cases become examples), and the crosses
of parents' prompts and examples (:func:`combinations`)."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jsonschema
from pydantic import ValidationError as PydanticValidationError

from hainet.agents.operators._base import (
    DEFAULT_REWRITE_TEMPLATE,
    Change,
    FunctionOperator,
    answer_step,
    as_text,
    failed_cases,
    generate_steps,
    replace_step,
    template_vars,
)
from hainet.agents.spec import AgentSpec, Example, GenerateStep, TestCase
from hainet.agents.testing import CaseOutcome
from hainet.backends.base import Backend
from hainet.errors import BackendError, ValidationError
from hainet.suites.scorers import extract_json
from hainet.types import GenerationParams, Message, Request

MAX_EXAMPLES = 6
"""Few-shot examples per step at most: each one costs prompt tokens on every call."""

_REWRITE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"template": {"type": "string", "minLength": 1}},
    "required": ["template"],
}
_FILL = re.compile(r"\{(purpose|template|variables|failures)\}")


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
    steps = generate_steps(spec)
    if not steps:
        return None
    step = rng.choice(steps)
    cases = failed_cases(trainset, failures)
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
    child = replace_step(spec, step.id, template=new)
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
    failed = [c for c, _ in failed_cases(trainset, failures)]
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
    child = replace_step(spec, step.id, **changes)
    if child is None:
        return None
    return Change(child, f"{len(new)} {source} train case(s) as examples of step {step.id!r}")


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
