"""``hainet agents create``: a model proposes an agent from a purpose and examples.

The pipeline, and why each part is there:

1. **Examples** (:func:`load_examples`): a JSON list, JSONL or YAML file of
   ``{input, output}``.  A seeded shuffle splits them into a small *pool* the
   proposal may pick few-shot examples from and a *test set* the candidates are
   measured on (never shown to them).  With six or more test cases the last third is
   held out: candidates are ranked on the rest, so the held-out rate of the winner is
   an estimate free of that selection.
2. **Scorer** (:func:`output_kind`): numbers are scored ``numeric``, a few repeated
   labels ``exact`` (parsed with ``choice``), JSON objects ``json_schema`` against a
   schema that pins every field of the target, other text ``exact``.
3. **Proposal** (:func:`proposal_schema`): the creator answers one small, closed JSON
   object (enums and bounded lengths only) under a grammar, so a weak base model
   cannot wander: name, one-sentence instruction, example indices, temperature,
   max_tokens, parser, stop, tool.  Code, not the model, assembles the
   :class:`~hainet.agents.spec.AgentSpec` (:func:`assemble`).  A proposal that still
   does not make a valid spec (bad JSON from a backend without grammars, an index out
   of range, an empty name) is counted and reported, never fatal.
4. **Candidates**: a deterministic *baseline* built from the examples alone (no model
   input, so the user always gets something) and N model proposals (seed i; the first
   greedy, the others sampled).  Each is run with ``test_agent`` on the test set and
   the best gate success rate wins.  Every candidate's measured rate is reported.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal, NamedTuple

import jsonschema

from hainet.agents.builtin_tools import BUILTIN_TOOLS
from hainet.agents.create_examples import (
    LabeledExample,
    OutputKind,
    Split,
    as_text,
    load_examples,
    output_kind,
    shape_schema,
    split_examples,
)
from hainet.agents.spec import AgentSpec, parse_spec
from hainet.agents.testing import TestReport, test_agent
from hainet.agents.workflow import AgentRunner
from hainet.backends.base import Backend
from hainet.errors import BackendError, ValidationError
from hainet.types import GenerationParams, Message, Request

__all__ = [
    "Candidate",
    "CreateResult",
    "LabeledExample",
    "OutputKind",
    "Split",
    "assemble",
    "baseline_proposal",
    "create_agent",
    "load_examples",
    "output_kind",
    "proposal_schema",
    "split_examples",
]

Progress = Callable[[str], None]

PROPOSAL_KEYS = (
    "name",
    "instruction",
    "examples",
    "temperature",
    "max_tokens",
    "parser",
    "stop",
    "tool",
)
MAX_SHOWN = 4  # few-shot examples in one prompt: more costs prefill and rarely helps
TEMPERATURES = (0, 0.2, 0.5, 0.8)
MAX_TOKENS = (4, 8, 16, 32, 64, 128, 256)
_PARSERS: dict[OutputKind, list[str]] = {
    "number": ["number", "integer", "first_line"],
    "label": ["choice", "first_line", "text"],
    "json": ["json"],
    "text": ["first_line", "text"],
}
_CAPABILITIES: dict[OutputKind, list[str]] = {
    "number": ["extraction"],
    "label": ["classification"],
    "json": ["extraction", "json"],
    "text": ["generation"],
}

# -- the proposal -----------------------------------------------------------------


def proposal_schema(split: Split) -> dict[str, Any]:
    """The closed JSON Schema a proposal must satisfy (it becomes the grammar).

    Only enums and bounded lengths: the llama.cpp grammar converter handles them, and a
    weak model cannot produce a value the assembly would have to guess about.  Key
    order is the order the model writes them in.
    """
    k = len(split.pool)
    stops = ["none"] if split.kind == "json" else ["newline", "none"]
    return {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 3, "maxLength": 60},
            "instruction": {"type": "string", "minLength": 10, "maxLength": 300},
            "examples": {
                "type": "array",
                "items": {"type": "integer", "enum": list(range(k))},
                "minItems": 1,
                "maxItems": min(k, MAX_SHOWN),
            },
            "temperature": {"enum": list(TEMPERATURES)},
            "max_tokens": {"enum": list(MAX_TOKENS)},
            "parser": {"enum": _PARSERS[split.kind]},
            "stop": {"enum": stops},
            "tool": {"enum": ["none", *sorted(BUILTIN_TOOLS)]},
        },
        "required": list(PROPOSAL_KEYS),
        "additionalProperties": False,
    }


def baseline_proposal(purpose: str, split: Split) -> dict[str, Any]:
    """The deterministic candidate: the purpose as instruction, the first examples."""
    parser = {"number": "number", "label": "choice", "json": "json", "text": "first_line"}
    longest = max(len(as_text(e.output)) for e in split.pool)
    # ~4 characters a token, with room to spare; the grammar ends JSON answers anyway.
    budget = next((m for m in MAX_TOKENS if m * 3 >= longest + 8), MAX_TOKENS[-1])
    return {
        "name": _slug(purpose) or "agent",
        "instruction": purpose,
        "examples": list(range(min(len(split.pool), MAX_SHOWN))),
        "temperature": 0,
        "max_tokens": budget,
        "parser": parser[split.kind],
        "stop": "none" if split.kind == "json" else "newline",
        "tool": "none",
    }


def _slug(text: str) -> str:
    """Lower-case words joined by '-', cut at a word boundary within 40 characters."""
    slug = ""
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        if slug and len(slug) + 1 + len(word) > 40:
            break
        slug = f"{slug}-{word}" if slug else word[:40]
    return slug if len(slug) >= 3 else ""


def _show(value: Any) -> str:
    return as_text(value).replace("\n", " ")


def assemble(
    proposal: dict[str, Any],
    *,
    purpose: str,
    split: Split,
    model: str,
    author: str | None = None,
    label: str = "",
) -> AgentSpec:
    """Build the AgentSpec a proposal describes; raise ValidationError if it cannot.

    The proposal is checked against :func:`proposal_schema` first: a backend without
    grammars (or a scripted mock) can send anything.
    """
    source = f"proposal {label}".strip()
    errors = sorted(
        jsonschema.Draft202012Validator(proposal_schema(split)).iter_errors(proposal), key=str
    )
    if errors:
        where = ".".join(str(p) for p in errors[0].absolute_path) or "proposal"
        raise ValidationError(f"{source}: {where}: {errors[0].message}")
    # Braces would be read as template variables; the instruction is plain prose.
    instruction = " ".join(re.sub(r"[{}]", "", proposal["instruction"]).split())
    indices = list(dict.fromkeys(proposal["examples"]))  # keep order, drop repeats
    shown = [split.pool[i] for i in indices]
    step: dict[str, Any] = {
        "kind": "generate",
        "id": "answer",
        "examples": [{"input": _show(e.input), "output": _show(e.output)} for e in shown],
        "example_template": "Input: {input}\nOutput: {output}\n\n",
        "template": f"{instruction}\n\n{{examples}}Input: {{input}}\nOutput:",
        "temperature": proposal["temperature"],
        "max_tokens": proposal["max_tokens"],
        "parser": proposal["parser"],
        "output": "answer",
    }
    if proposal["stop"] == "newline":
        step["stop"] = ["\n"]
    if proposal["parser"] == "choice":
        step["choices"] = list(split.labels)
    if split.kind == "json":
        outputs = [e.output for e in split.pool if isinstance(e.output, dict)]
        step["json_schema"] = shape_schema(outputs)
    workflow: list[dict[str, Any]] = [step]
    tools: list[dict[str, Any]] = []
    capabilities = list(_CAPABILITIES[split.kind])
    if proposal["tool"] != "none":
        # The model fills the tool's arguments under its schema; the tool answers.
        tool = BUILTIN_TOOLS[proposal["tool"]]
        params = dict(tool.parameters)
        step.update(
            id="call",
            output="call",
            parser="json",
            json_schema=params,
            template=f"{instruction}\n\n{{examples}}Input: {{input}}\n"
            f"Arguments for {tool.name} (JSON):",
            example_template="Input: {input}\nAnswer: {output}\n\n",
        )
        step.pop("stop", None)
        step.pop("choices", None)
        args = {p: f"{{call.{p}}}" for p in params.get("properties", {})}
        workflow.append(
            {"kind": "tool", "id": "answer", "tool": tool.name, "args": args, "output": "answer"}
        )
        tools.append({"name": tool.name, "builtin": tool.name, "description": tool.description})
        capabilities.append("tool_use")
    data = {
        "name": _slug(proposal["name"]),
        "purpose": purpose,
        "capabilities": capabilities,
        "requirements": {"models": [model], "json_schema": "json_schema" in step},
        "workflow": workflow,
        "output": "answer",
        "tools": tools,
        "tests": [t.model_dump(mode="json") for t in split.tests],
        "lineage": [],
        "author": author,
        "created_by": "ai_generated",
    }
    return parse_spec(data, source=source)


# -- the creator --------------------------------------------------------------------


def _fewshot() -> dict[str, Any]:
    text = resources.files("hainet.agents").joinpath("data/create_fewshot.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def creator_prompt(purpose: str, split: Split) -> str:
    """Few-shot prompt for the creator: worked tasks, then the user's, then ``Spec:``."""
    shots = _fewshot()
    parts = [shots["preamble"], ""]

    def task(purpose: str, pairs: Sequence[tuple[str, str]], kind: OutputKind) -> None:
        parts.append(f"Task: {purpose}")
        parts.append("Examples:")
        for i, (inp, out) in enumerate(pairs):
            parts.append(f"[{i}] input: {inp[:120]} -> output: {out[:80]}")
        # The allowed values, spelled out: a base model copies what it sees, and an
        # answer that fits needs no (slow) grammar retry.
        parsers = " or ".join(f'"{p}"' for p in _PARSERS[kind])
        top = len(pairs) - 1
        shown = min(len(pairs), MAX_SHOWN)
        parts.append(f"Allowed: examples 0 to {top} (at most {shown}), parser {parsers}")

    for shot in shots["examples"]:
        pairs = [(str(i), str(o)) for i, o in shot["examples"]]
        task(shot["purpose"], pairs, output_kind([o for _, o in pairs]))
        parts.append("Spec: " + json.dumps(shot["proposal"]))
        parts.append("")
    pool = [(_show(e.input), _show(e.output)) for e in split.pool]
    task(" ".join(purpose.split()), pool, split.kind)
    parts.append("Spec:")
    return "\n".join(parts)


class Proposal(NamedTuple):
    raw: str
    """The creator's text (of the last attempt)."""
    value: dict[str, Any] | None
    error: str | None
    constrained: bool
    """Whether the grammar was needed (the free attempt did not fit the schema)."""


def _first_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in ``text`` (a model may repeat the opening we gave it)."""
    decoder = json.JSONDecoder()
    for i, ch in enumerate(text):
        if ch == "{":
            try:
                value = decoder.raw_decode(text[i:])[0]
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    return None


def _grammar_schema(schema: dict[str, Any]) -> dict[str, Any]:
    # String length bounds become long chains of optional grammar rules; the token
    # budget bounds the strings here and assemble() checks the lengths afterwards.
    props = {
        k: {"type": "string"} if v.get("type") == "string" else v
        for k, v in schema["properties"].items()
    }
    return {**schema, "properties": props}


async def propose(
    creator: Backend, purpose: str, split: Split, *, seed: int, temperature: float
) -> Proposal:
    """One proposal from the creator, valid under :func:`proposal_schema` or an error.

    First unconstrained, stopping at the end of the line: a few-shot base model
    usually continues the pattern, and llama.cpp's grammar sampler checks the whole
    vocabulary (262k tokens for gemma-3) at every step, measured 10-20x slower per
    token here.  Only an answer that does not fit the schema is asked again under the
    grammar, which can then only differ where the free answer broke the schema.
    """
    text = creator_prompt(purpose, split)
    schema = proposal_schema(split)
    free = GenerationParams(temperature=temperature, max_tokens=160, seed=seed, stop=("\n",))
    attempts = [free]
    if creator.supports_json_schema:
        attempts.append(free.replace(stop=(), json_schema=_grammar_schema(schema)))
    raw, error = "", "no attempt"
    for params in attempts:
        # Free, in prompt mode: start the object ourselves, so the model continues it
        # instead of wondering whether to answer at all (greedy gemma-3 ended the line).
        opening = '{"name": "' if params.json_schema is None else ""
        if creator.spec.mode == "chat":
            opening = ""
            request = Request(messages=(Message("user", text),), params=params)
        else:
            request = Request(prompt=f"{text} {opening}".rstrip(" "), params=params)
        try:
            completion = await creator.generate(request)
        except BackendError as exc:
            return Proposal(raw, None, f"creator failed: {exc}", params.json_schema is not None)
        raw = opening + completion.text
        value = _first_object(raw)
        if value is None:
            # Under the grammar, usually the token budget ran out inside the object.
            error = f"no JSON object (finish {completion.finish_reason}): {raw[:80]!r}"
            continue
        problems = sorted(jsonschema.Draft202012Validator(schema).iter_errors(value), key=str)
        if not problems:
            return Proposal(raw, value, None, params.json_schema is not None)
        where = ".".join(str(p) for p in problems[0].absolute_path) or "proposal"
        error = f"{where}: {problems[0].message}"
        if params.json_schema is not None:
            # The grammar kept the shape; only a length bound can be off: let assemble
            # report it against the spec.
            return Proposal(raw, value, None, True)
    return Proposal(raw, None, error, len(attempts) > 1)


# -- candidates and the result ----------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One candidate agent and what was measured on it."""

    label: str
    """"baseline" (built from the examples, no model input) or "model-N"."""
    source: Literal["baseline", "model"]
    seed: int | None
    creator_temperature: float | None
    raw: str
    """The creator's text ("" for the baseline)."""
    proposal: dict[str, Any] | None
    spec: AgentSpec | None
    error: str | None = None
    """Why the proposal did not become a valid spec (None when it did)."""
    constrained: bool = False
    """The creator's free answer did not fit the schema; it was asked again under the
    grammar."""
    report: TestReport | None = None
    duplicate_of: str | None = None
    """Label of an earlier candidate with the same spec id (tested once)."""

    @property
    def valid(self) -> bool:
        return self.spec is not None

    @property
    def success_rate(self) -> float | None:
        return None if self.report is None else self.report.success_rate

    @property
    def holdout_rate(self) -> float | None:
        return None if self.report is None else self.report.holdout_rate

    def to_dict(self) -> dict[str, Any]:
        r = self.report
        return {
            "label": self.label,
            "source": self.source,
            "seed": self.seed,
            "creator_temperature": self.creator_temperature,
            "valid": self.valid,
            "constrained": self.constrained,
            "error": self.error,
            "proposal": self.proposal,
            "raw": self.raw,
            "agent_id": self.spec.id if self.spec else None,
            "name": self.spec.name if self.spec else None,
            "duplicate_of": self.duplicate_of,
            "success_rate": self.success_rate,
            "holdout_rate": self.holdout_rate,
            "passed": r.passed if r else None,
            "total": r.total if r else None,
            "mean_latency_s": r.mean_latency_s if r else None,
        }


@dataclass(frozen=True)
class CreateResult:
    """What ``create_agent`` made and measured.  ``spec`` is the best candidate's."""

    purpose: str
    creator_model: str
    model: str
    kind: OutputKind
    scorer: str
    n_examples: int
    n_pool: int
    n_tests: int
    n_holdout: int
    n_unused: int
    candidates: tuple[Candidate, ...]
    best: Candidate
    wall_s: float
    notes: list[str] = field(default_factory=list)

    @property
    def spec(self) -> AgentSpec:
        assert self.best.spec is not None  # the baseline always assembles
        return self.best.spec

    @property
    def proposals(self) -> int:
        return sum(1 for c in self.candidates if c.source == "model")

    @property
    def proposals_valid(self) -> int:
        return sum(1 for c in self.candidates if c.source == "model" and c.valid)

    @property
    def best_rate(self) -> float:
        return self.best.success_rate or 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "purpose": self.purpose,
            "creator_model": self.creator_model,
            "model": self.model,
            "output_kind": self.kind,
            "scorer": self.scorer,
            "examples": {
                "total": self.n_examples,
                "few_shot_pool": self.n_pool,
                "tests": self.n_tests,
                "holdout": self.n_holdout,
                "unused": self.n_unused,
            },
            "proposals": self.proposals,
            "proposals_valid": self.proposals_valid,
            "proposals_constrained": sum(1 for c in self.candidates if c.constrained),
            "best": self.best.label,
            "best_is_baseline": self.best.source == "baseline",
            "best_success_rate": self.best_rate,
            "best_holdout_rate": self.best.holdout_rate,
            "agent_id": self.spec.id,
            "name": self.spec.name,
            "candidates": [c.to_dict() for c in self.candidates],
            "notes": self.notes,
            "wall_s": self.wall_s,
        }


def _rank(c: Candidate) -> tuple[float, float, float]:
    r = c.report
    if r is None:
        return (-1.0, -1.0, 0.0)
    # Gate rate first; the held-out rate and then speed only break ties.
    return (r.success_rate, r.holdout_rate or 0.0, -(r.mean_latency_s or 0.0))


async def create_agent(
    purpose: str,
    examples: Sequence[LabeledExample],
    *,
    creator: Backend,
    runner: AgentRunner,
    model_name: str,
    candidates: int = 3,
    author: str | None = None,
    seed: int = 0,
    max_tests: int = 24,
    progress: Progress | None = None,
) -> CreateResult:
    """Propose ``candidates`` agents with ``creator`` plus the baseline, test each with
    ``runner`` on the held-out examples, and keep the best.  See the module docstring."""
    if not purpose.strip():
        raise ValidationError("purpose: empty; say in one sentence what the agent does")
    if candidates < 0:
        raise ValidationError(f"candidates: must be >= 0, got {candidates}")
    say = progress or (lambda _msg: None)
    start = time.perf_counter()
    split = split_examples(examples, seed=seed, max_tests=max_tests)
    common: dict[str, Any] = {
        "purpose": purpose,
        "split": split,
        "model": model_name,
        "author": author,
    }
    base = baseline_proposal(purpose, split)
    base_spec = assemble(base, label="baseline", **common)
    made: list[Candidate] = [Candidate("baseline", "baseline", None, None, "", base, base_spec)]
    for i in range(candidates):
        label = f"model-{i + 1}"
        temp = 0.0 if i == 0 else 0.7
        say(f"{label}: asking {creator.spec.name} for a proposal (seed {seed + i}, t={temp:g})")
        got = await propose(creator, purpose, split, seed=seed + i, temperature=temp)
        spec: AgentSpec | None = None
        error = got.error
        if got.value is not None:
            try:
                spec = assemble(got.value, label=label, **common)
            except ValidationError as exc:
                error = str(exc)
        if error:
            say(f"{label}: invalid proposal: {error}")
        made.append(
            Candidate(
                label, "model", seed + i, temp, got.raw, got.value, spec, error, got.constrained
            )
        )
    tested: dict[str, Candidate] = {}
    for n, cand in enumerate(made):
        if cand.spec is None:
            continue
        if cand.spec.id in tested:
            first = tested[cand.spec.id]
            made[n] = _replace(cand, report=first.report, duplicate_of=first.label)
            continue
        say(f"{cand.label}: testing {cand.spec.name} on {len(split.tests)} cases")
        report = await test_agent(cand.spec, runner)
        made[n] = _replace(cand, report=report)
        tested[cand.spec.id] = made[n]
        say(f"{cand.label}: success rate {report.success_rate:.2f}")
    best = max((c for c in made if c.report is not None), key=_rank)
    notes: list[str] = []
    if best.source == "baseline":
        notes.append("no model proposal beat the deterministic baseline")
    if split.unused:
        notes.append(f"{split.unused} example(s) beyond max_tests were not used")
    if not any(t.holdout for t in split.tests):
        notes.append("fewer than 6 test cases: no held-out estimate; the best rate is optimistic")
    return CreateResult(
        purpose=purpose,
        creator_model=creator.spec.name,
        model=model_name,
        kind=split.kind,
        scorer=split.tests[0].scorer,
        n_examples=len(examples),
        n_pool=len(split.pool),
        n_tests=sum(1 for t in split.tests if not t.holdout),
        n_holdout=sum(1 for t in split.tests if t.holdout),
        n_unused=split.unused,
        candidates=tuple(made),
        best=best,
        wall_s=time.perf_counter() - start,
        notes=notes,
    )


def _replace(c: Candidate, **changes: Any) -> Candidate:
    return dataclasses.replace(c, **changes)
