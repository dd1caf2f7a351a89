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
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from hainet.errors import ValidationError
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


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Example(_Model):
    """One few-shot example shown to the model."""

    input: str
    output: str


class GenerateStep(_Model):
    """Ask the model: render ``template``, sample, parse."""

    kind: Literal["generate"] = "generate"
    id: str = Field(pattern=_VAR, description="Unique within the workflow.")
    template: str = Field(min_length=1, description="Prompt with {variables}.")
    system: str | None = Field(default=None, description="System message (chat models).")
    examples: list[Example] = Field(default_factory=list, description="Few-shot examples.")
    example_template: str = Field(
        default="Input: {input}\nOutput: {output}\n\n",
        description="How one example is rendered into {examples}.",
    )
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int = Field(default=64, ge=1, le=4096)
    top_p: float = Field(default=1.0, gt=0, le=1)
    stop: list[str] = Field(default_factory=list)
    samples: int = Field(default=1, ge=1, le=16, description="N samples, majority vote.")
    json_schema: dict[str, Any] | None = Field(
        default=None, description="Constrain the output to this JSON Schema (grammar)."
    )
    parser: Parser = Field(default="text", description="How the text becomes a value.")
    pattern: str | None = Field(default=None, description="Regex for parser 'regex'.")
    choices: list[str] = Field(default_factory=list, description="Options for 'choice'.")
    output: str = Field(pattern=_VAR, description="Variable the parsed value is stored in.")

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
    id: str = Field(pattern=_VAR)
    tool: str = Field(description="Name of a tool in the spec's tools.")
    args: dict[str, Any] = Field(
        default_factory=dict,
        description="Arguments; a string that is exactly '{var}' passes the value as is.",
    )
    output: str = Field(pattern=_VAR)


class CodeStep(_Model):
    """Call ``run(value)`` of the spec's ``code`` module (in the sandbox)."""

    kind: Literal["code"] = "code"
    id: str = Field(pattern=_VAR)
    input: str = Field(default="{input}", description="What to pass to run().")
    output: str = Field(pattern=_VAR)


class ValidateStep(_Model):
    """Check a variable; the run fails here when the check does."""

    kind: Literal["validate"] = "validate"
    id: str = Field(pattern=_VAR)
    value: str = Field(description="The variable to check, e.g. '{answer}'.")
    json_schema: dict[str, Any] | None = None
    pattern: str | None = Field(default=None, description="Regex the value must match.")

    @model_validator(mode="after")
    def _something(self) -> ValidateStep:
        if self.json_schema is None and self.pattern is None:
            raise ValueError("a validate step needs json_schema or pattern")
        return self


Step = Annotated[GenerateStep | ToolStep | CodeStep | ValidateStep, Field(discriminator="kind")]


class ToolDef(_Model):
    """A Python function the agent may call: a built-in by name or its own source."""

    name: str = Field(pattern=_VAR)
    description: str = ""
    builtin: str | None = Field(default=None, description="Name of a built-in tool.")
    source: str | None = Field(
        default=None, description="Python source defining a function called `name`."
    )
    parameters: dict[str, Any] | None = Field(
        default=None, description="JSON Schema of the arguments (built-ins bring theirs)."
    )

    @model_validator(mode="after")
    def _one(self) -> ToolDef:
        if (self.builtin is None) == (self.source is None):
            raise ValueError(f"tool {self.name!r} needs exactly one of builtin or source")
        return self


class TestCase(_Model):
    """One input with what a correct answer is, scored by a suites scorer."""

    __test__ = False  # not a pytest class

    id: str = Field(min_length=1)
    input: Any = Field(description="String or JSON object.")
    target: Any = None
    scorer: str = Field(default="exact", description="exact, numeric, json_schema, regex...")
    options: dict[str, Any] = Field(default_factory=dict, description="Scorer options.")
    holdout: bool = Field(
        default=False, description="Held out: counts for versatility, not the gate."
    )


class Requirements(_Model):
    """Which models can run the agent."""

    models: list[str] = Field(default_factory=list, description="Preferred model names.")
    min_scores: dict[str, float] = Field(
        default_factory=dict, description="Capability -> minimal stored score of a model."
    )
    json_schema: bool = Field(default=False, description="Needs grammar-constrained JSON.")
    tools: bool = Field(default=False, description="Needs native tool calls.")
    max_memory_mb: float | None = None
    n_ctx: int | None = Field(default=None, description="Context the workflow needs.")


class AgentSpec(_Model):
    """A versioned, content-addressed agent.  See the module docstring."""

    schema_version: int = Field(default=SPEC_SCHEMA_VERSION)
    id: str = Field(default="", description="sha256 of the content; filled in when empty.")
    name: str = Field(pattern=_NAME)
    version: str = Field(default="1.0.0", pattern=_SEMVER)
    purpose: str = Field(min_length=1)
    capabilities: list[str] = Field(default_factory=list)
    requirements: Requirements = Field(default_factory=Requirements)
    workflow: list[Step] = Field(min_length=1)
    output: str = Field(pattern=_VAR, description="The variable that is the agent's answer.")
    tools: list[ToolDef] = Field(default_factory=list)
    code: str | None = Field(default=None, description="Module source with run(input).")
    tests: list[TestCase] = Field(default_factory=list)
    lineage: list[str] = Field(default_factory=list, description="Ids of the parents.")
    author: str | None = Field(default=None, description="Pseudonymous key id.")
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
        if not self.id:
            object.__setattr__(self, "id", content_hash(self))
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
    """Read a spec from a YAML or JSON file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"cannot read {p}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ValidationError(
            f"{p}: not valid {'JSON' if p.suffix == '.json' else 'YAML'}: {exc}"
        ) from None
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
