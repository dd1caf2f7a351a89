"""``AgentSpec``: a versioned, content-addressed description of an agent.

An agent is data, not code we trust: a purpose, a workflow of steps, tools and an
optional module, a test set, lineage and an author key.  Example (YAML)::

    name: word-arithmetic
    version: 1.0.0
    purpose: Solve arithmetic word problems.
    capabilities: [reasoning, tool_use]
    requirements: {models: [gemma-3-270m], json_schema: true}
    workflow:
      - id: extract
        kind: generate
        template: "{examples}Problem: {input}\\nExpression:"
        examples: [{input: "Ann has 3 pens and buys 4 more.", output: '{"expression": "3+4"}'}]
        example_template: "Problem: {input}\\nExpression: {output}\\n\\n"
        json_schema: {type: object, properties: {expression: {type: string}},
                      required: [expression]}
        parser: json
        output: call
      - id: compute
        kind: tool
        tool: calculator
        args: {expression: "{call.expression}"}
        output: answer
    output: answer
    tools: [{name: calculator, builtin: calculator}]
    tests:
      - {id: t1, input: "Tom has 2 apples and gets 5 more.", target: 7, scorer: numeric}

**Identity.**  ``id`` is the sha256 of the canonical JSON of every field but ``id``
and the timestamps (:func:`content_hash`): the same content is the same agent, and
any change (a prompt, a test, the version) is a new one.  ``lineage`` holds the ids
of the parents.  A spec read back from anywhere is checked against its id
(:meth:`AgentSpec.verify`), so a record altered behind the store's back is caught.

**Variables.**  A step's ``template`` and a tool step's ``args`` use ``{name}`` or
``{name.field}``: ``input`` (the agent's input; its fields too when it is an
object), ``examples`` (the step's few-shot block) and each earlier step's
``output``.  Every other brace (JSON in a prompt) stays as written.

The JSON Schema of the format is :func:`json_schema` (``hainet agents schema``).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from hainet.errors import ValidationError
from hainet.inputs import SPEC_LIMITS, Limits, format_path, load_file, value_problem
from hainet.types import canonical_json

__all__ = [
    "SPEC_SCHEMA_VERSION",
    "AgentSpec",
    "CodeStep",
    "Example",
    "GenerateStep",
    "Requirements",
    "Step",
    "TestCase",
    "ToolDef",
    "ToolStep",
    "ValidateStep",
    "canonical_json",
    "content_hash",
    "json_schema",
    "load_spec",
    "parse_spec",
    "dump_spec",
]

SPEC_SCHEMA_VERSION = 1
PARSERS = ("text", "first_line", "number", "integer", "json", "regex", "choice")
Parser = Literal["text", "first_line", "number", "integer", "json", "regex", "choice"]

_NAME = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
_VAR = r"^[A-Za-z_][A-Za-z0-9_]*$"
_SEMVER = r"^\d+\.\d+\.\d+$"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\.[A-Za-z0-9_]+)*\}")
_RESERVED_VARS = {"input", "examples"}

# Bounds on every field, so that a spec built in Python or received from a hub is as
# bounded as one read from a file (SPEC_LIMITS: 1 MiB).  The example agents use at
# most 1,200 characters in one text and 12 test cases: each bound is far above that.
MAX_TEXT = 32_768
"""Characters in a prompt, a system message, an example, a purpose, a description."""
MAX_CODE = 131_072
"""Characters of the spec's module or of one tool's source."""
MAX_SHORT = 256
"""Characters in a name, an id, a pattern, a stop string, a model name."""
MAX_ITEMS = 256
"""Items in a list (examples, stop strings, choices, capabilities, models...)."""
MAX_STEPS = 64
MAX_TESTS = 2_000
MAX_SPEC_BYTES = SPEC_LIMITS.max_bytes
"""The canonical JSON of a whole spec, however it was built."""
# Free JSON values (a test's input and target, tool arguments, schemas).
_VALUE_LIMITS = Limits(max_depth=SPEC_LIMITS.max_depth, max_string=MAX_TEXT)

Short = Annotated[str, StringConstraints(max_length=MAX_SHORT)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]


def _json_value(value: Any) -> Any:
    problem = value_problem(value, _VALUE_LIMITS)
    if problem is not None:
        at = format_path(problem.path)
        raise ValueError(f"{at}: {problem.message}" if at else problem.message)
    return value


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Example(_Model):
    """One few-shot example shown to the model."""

    input: Text
    output: Text


class GenerateStep(_Model):
    """Ask the model: render ``template``, sample, parse."""

    kind: Literal["generate"] = "generate"
    id: Short = Field(pattern=_VAR, description="Unique within the workflow.")
    template: Text = Field(min_length=1, description="Prompt with {variables}.")
    system: Text | None = Field(default=None, description="System message (chat models).")
    examples: list[Example] = Field(
        default_factory=list, max_length=MAX_ITEMS, description="Few-shot examples."
    )
    example_template: Text = Field(
        default="Input: {input}\nOutput: {output}\n\n",
        description="How one example is rendered into {examples}.",
    )
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int = Field(default=64, ge=1, le=4096)
    top_p: float = Field(default=1.0, gt=0, le=1)
    stop: list[Short] = Field(default_factory=list, max_length=MAX_ITEMS)
    samples: int = Field(default=1, ge=1, le=16, description="N samples, majority vote.")
    json_schema: dict[str, Any] | None = Field(
        default=None, description="Constrain the output to this JSON Schema (grammar)."
    )
    parser: Parser = Field(default="text", description="How the text becomes a value.")
    pattern: Short | None = Field(default=None, description="Regex for parser 'regex'.")
    choices: list[Short] = Field(
        default_factory=list, max_length=MAX_ITEMS, description="Options for 'choice'."
    )
    output: Short = Field(pattern=_VAR, description="Variable the parsed value is stored in.")

    _free = field_validator("json_schema")(classmethod(lambda cls, v: _json_value(v)))

    @model_validator(mode="after")
    def _parser_options(self) -> GenerateStep:
        if self.parser == "regex":
            if not self.pattern:
                raise ValueError("parser 'regex' needs a pattern")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"bad pattern {self.pattern!r}: {exc}") from None
        if self.parser == "choice" and not self.choices:
            raise ValueError("parser 'choice' needs choices")
        return self


class ToolStep(_Model):
    """Call one of the agent's tools (in the sandbox) with rendered arguments."""

    kind: Literal["tool"] = "tool"
    id: Short = Field(pattern=_VAR)
    tool: Short = Field(description="Name of a tool in the spec's tools.")
    args: dict[str, Any] = Field(
        default_factory=dict,
        description="Arguments; a string that is exactly '{var}' passes the value as is.",
    )
    output: Short = Field(pattern=_VAR)

    _free = field_validator("args")(classmethod(lambda cls, v: _json_value(v)))


class CodeStep(_Model):
    """Call ``run(value)`` of the spec's ``code`` module (in the sandbox)."""

    kind: Literal["code"] = "code"
    id: Short = Field(pattern=_VAR)
    input: Text = Field(default="{input}", description="What to pass to run().")
    output: Short = Field(pattern=_VAR)


class ValidateStep(_Model):
    """Check a variable; the run fails here when the check does."""

    kind: Literal["validate"] = "validate"
    id: Short = Field(pattern=_VAR)
    value: Text = Field(description="The variable to check, e.g. '{answer}'.")
    json_schema: dict[str, Any] | None = None
    pattern: Short | None = Field(default=None, description="Regex the value must match.")

    _free = field_validator("json_schema")(classmethod(lambda cls, v: _json_value(v)))

    @model_validator(mode="after")
    def _something(self) -> ValidateStep:
        if self.json_schema is None and self.pattern is None:
            raise ValueError("a validate step needs json_schema or pattern")
        return self


Step = Annotated[GenerateStep | ToolStep | CodeStep | ValidateStep, Field(discriminator="kind")]


class ToolDef(_Model):
    """A Python function the agent may call: a built-in by name or its own source."""

    name: Short = Field(pattern=_VAR)
    description: Text = ""
    builtin: Short | None = Field(default=None, description="Name of a built-in tool.")
    source: str | None = Field(
        default=None,
        max_length=MAX_CODE,
        description="Python source defining a function called `name`.",
    )
    parameters: dict[str, Any] | None = Field(
        default=None, description="JSON Schema of the arguments (built-ins bring theirs)."
    )

    _free = field_validator("parameters")(classmethod(lambda cls, v: _json_value(v)))

    @model_validator(mode="after")
    def _one(self) -> ToolDef:
        if (self.builtin is None) == (self.source is None):
            raise ValueError(f"tool {self.name!r} needs exactly one of builtin or source")
        return self


class TestCase(_Model):
    """One input with what a correct answer is, scored by a suites scorer."""

    __test__ = False  # not a pytest class

    id: Short = Field(min_length=1)
    input: Any = Field(description="String or JSON object.")
    target: Any = None
    scorer: Short = Field(default="exact", description="exact, numeric, json_schema, regex...")
    options: dict[str, Any] = Field(default_factory=dict, description="Scorer options.")
    holdout: bool = Field(
        default=False, description="Held out: counts for versatility, not the gate."
    )

    _free = field_validator("input", "target", "options")(
        classmethod(lambda cls, v: _json_value(v))
    )


class Requirements(_Model):
    """Which models can run the agent."""

    models: list[Short] = Field(
        default_factory=list, max_length=MAX_ITEMS, description="Preferred model names."
    )
    min_scores: dict[Short, float] = Field(
        default_factory=dict,
        max_length=MAX_ITEMS,
        description="Capability -> minimal stored score of a model.",
    )
    json_schema: bool = Field(default=False, description="Needs grammar-constrained JSON.")
    tools: bool = Field(default=False, description="Needs native tool calls.")
    max_memory_mb: float | None = None
    n_ctx: int | None = Field(default=None, description="Context the workflow needs.")


class AgentSpec(_Model):
    """A versioned, content-addressed agent.  See the module docstring."""

    schema_version: int = Field(default=SPEC_SCHEMA_VERSION)
    id: Short = Field(default="", description="sha256 of the content; filled in when empty.")
    name: str = Field(pattern=_NAME)
    version: Short = Field(default="1.0.0", pattern=_SEMVER)
    purpose: Text = Field(min_length=1)
    capabilities: list[Short] = Field(default_factory=list, max_length=MAX_ITEMS)
    requirements: Requirements = Field(default_factory=Requirements)
    workflow: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    output: Short = Field(pattern=_VAR, description="The variable that is the agent's answer.")
    tools: list[ToolDef] = Field(default_factory=list, max_length=MAX_STEPS)
    code: str | None = Field(
        default=None, max_length=MAX_CODE, description="Module source with run(input)."
    )
    tests: list[TestCase] = Field(default_factory=list, max_length=MAX_TESTS)
    lineage: list[Short] = Field(
        default_factory=list, max_length=MAX_ITEMS, description="Ids of the parents."
    )
    author: Short | None = Field(default=None, description="Pseudonymous key id.")
    created_by: Literal["human", "ai_generated"] = "human"
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if v > SPEC_SCHEMA_VERSION:
            raise ValueError(f"spec schema {v} is newer than this hainet ({SPEC_SCHEMA_VERSION})")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> AgentSpec:
        defined = set(_RESERVED_VARS)
        seen: set[str] = set()
        tools = {t.name for t in self.tools}
        for i, step in enumerate(self.workflow):
            where = f"workflow.{i} ({step.id})"
            if step.id in seen:
                raise ValueError(f"{where}: duplicate step id")
            seen.add(step.id)
            for var in _used_vars(step):
                if var not in defined:
                    raise ValueError(f"{where}: uses {{{var}}} before it is defined")
            if isinstance(step, ToolStep) and step.tool not in tools:
                raise ValueError(f"{where}: unknown tool {step.tool!r}")
            if isinstance(step, CodeStep) and self.code is None:
                raise ValueError(f"{where}: a code step needs the spec's code")
            if not isinstance(step, ValidateStep):
                if step.output in _RESERVED_VARS:
                    raise ValueError(f"{where}: output {step.output!r} is reserved")
                defined.add(step.output)
        if self.output not in defined:
            raise ValueError(f"output: {self.output!r} is not produced by any step")
        test_ids = [t.id for t in self.tests]
        if len(set(test_ids)) != len(test_ids):
            raise ValueError("tests: duplicate test id")
        if len({t.name for t in self.tools}) != len(self.tools):
            raise ValueError("tools: duplicate tool name")
        # Each field is bounded; their sum is too, however the spec was built.
        text = canonical_json(self.content())
        size = len(text.encode("utf-8"))
        if size > MAX_SPEC_BYTES:
            raise ValueError(f"the spec is {size:,} bytes of JSON, over {MAX_SPEC_BYTES:,}")
        if not self.id:
            object.__setattr__(self, "id", hashlib.sha256(text.encode()).hexdigest())
        return self

    # -- identity ---------------------------------------------------------------

    def content(self) -> dict[str, Any]:
        """What the id is the hash of: everything but the id and timestamps."""
        return self.model_dump(mode="json", exclude={"id", "created_at", "updated_at"})

    def verify(self) -> None:
        """Raise ValidationError if the id is not the hash of the content."""
        actual = content_hash(self)
        if actual != self.id:
            raise ValidationError(
                f"agent {self.name} {self.version}: content hash mismatch "
                f"(recorded {self.id[:12]}, content hashes to {actual[:12]}): "
                "the spec was altered after it was recorded"
            )

    def derive(self, **changes: Any) -> AgentSpec:
        """A new spec with ``changes`` and a fresh id; this one is untouched.

        Lineage is not added here: evolution sets it explicitly.
        """
        data = self.model_dump(mode="python", exclude={"id"})
        data.update(changes)
        data.pop("id", None)
        return AgentSpec.model_validate(data)

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def test_cases(self) -> list[TestCase]:
        """Cases that count for the gate (not held out)."""
        return [t for t in self.tests if not t.holdout]

    @property
    def holdout_cases(self) -> list[TestCase]:
        return [t for t in self.tests if t.holdout]

    def tool(self, name: str) -> ToolDef:
        for t in self.tools:
            if t.name == name:
                return t
        raise KeyError(name)

    def step(self, step_id: str) -> Step:
        for s in self.workflow:
            if s.id == step_id:
                return s
        raise KeyError(step_id)


def _used_vars(step: Any) -> set[str]:
    texts: list[str] = []
    if isinstance(step, GenerateStep):
        texts = [step.template, step.system or ""]
    elif isinstance(step, ToolStep):
        texts = [json.dumps(step.args)]
    elif isinstance(step, CodeStep):
        texts = [step.input]
    elif isinstance(step, ValidateStep):
        texts = [step.value]
    return {m.group(1) for t in texts for m in _PLACEHOLDER.finditer(t)}


def content_hash(spec: AgentSpec) -> str:
    return hashlib.sha256(canonical_json(spec.content()).encode()).hexdigest()


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of the spec format."""
    schema = AgentSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://hainet.dev/schemas/agent-spec-{SPEC_SCHEMA_VERSION}.json"
    return schema


def _field_error(exc: PydanticValidationError, source: str) -> ValidationError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    msg = first["msg"].removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return ValidationError(f"{source}: {where + ': ' if where else ''}{msg}{more}")


def parse_spec(data: Any, *, source: str = "spec", check_id: bool = True) -> AgentSpec:
    """Validate a mapping as an AgentSpec; errors name the field.

    When the data carries an ``id``, it must be the hash of the content
    (``check_id``): an edited spec must drop its id or be given a new one.
    """
    if not isinstance(data, dict):
        raise ValidationError(f"{source}: an agent spec is a mapping, got {type(data).__name__}")
    try:
        spec = AgentSpec.model_validate(data)
    except PydanticValidationError as exc:
        raise _field_error(exc, source) from None
    if check_id and data.get("id"):
        spec.verify()
    return spec


def load_spec(path: str | Path) -> AgentSpec:
    """Read a spec from a YAML or JSON file (anything but ``.json`` is read as YAML),
    bounded before it is parsed (:data:`hainet.inputs.SPEC_LIMITS`)."""
    p = Path(path)
    kind = ".json" if p.suffix == ".json" else ".yaml"
    data = load_file(p, error=ValidationError, limits=SPEC_LIMITS, kind=kind)
    return parse_spec(data, source=str(p))


def dump_spec(spec: AgentSpec, path: str | Path | None = None) -> str:
    """The spec as YAML (``.yaml``/``.yml`` or no path) or JSON (``.json``)."""
    data = spec.model_dump(mode="json", exclude_none=True)
    as_json = path is not None and Path(path).suffix == ".json"
    text = (
        json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        if as_json
        else yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    )
    if path is not None:
        from hainet.config import atomic_write

        atomic_write(Path(path), text)
    return text


def now() -> datetime:
    return datetime.now(UTC)
