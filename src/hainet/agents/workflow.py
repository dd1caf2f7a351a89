"""Run an agent's workflow: model calls through a backend, tools and code in the sandbox.

::

    async with open_runner(model_spec) as runner:
        run = await runner.run(spec, "Tom has 2 apples and buys 5 more.")
    run.output, run.ok, [(s.step, s.wall_s, s.completion_tokens) for s in run.steps]

Steps run in order over a dict of variables: ``input`` (the agent's input) and the
``output`` of each earlier step.  A step that fails (an unparsable answer, a tool
that raises, code that loops past its limits, a value that fails validation, a
prompt longer than the context) ends the run with ``AgentRun.error`` and
``error_kind`` set; nothing is raised, so a bad agent scores 0 instead of stopping a
test.  Only a broken sandbox (:class:`~hainet.errors.SandboxError`) or a model that is
gone (:class:`~hainet.errors.BackendUnavailable`) raise: those say nothing about the
agent.

**Untrusted code never runs here.**  Tools (built-in or the spec's own source) and
the spec's ``code`` run through :meth:`Sandbox.call`, which sends back only return
values as plain JSON.  Built-in tools go the same way as users' tools: one path,
so the sandbox is exercised by every agent that uses a tool.

**Reproducible.**  Each generation uses the run's seed (plus the sample number for
``samples > 1``) and the backends clear their caches per request, so an agent's
answer to an input does not depend on what ran before it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any

import jsonschema
import psutil

from hainet.agents.builtin_tools import builtin_tool
from hainet.agents.spec import (
    AgentSpec,
    CodeStep,
    GenerateStep,
    ToolDef,
    ToolStep,
    ValidateStep,
    canonical_json,
)
from hainet.backends import open_backend
from hainet.backends.base import Backend
from hainet.errors import BackendError, BackendUnavailable, ModelNotFound
from hainet.sandbox import CallResult, Limits, Sandbox
from hainet.suites.scorers import NUMBER, extract_json, normalize
from hainet.types import GenerationParams, Message, ModelSpec, Request

__all__ = [
    "AgentRun",
    "AgentRunner",
    "StepRecord",
    "as_text",
    "open_runner",
    "parse_output",
    "render",
]

TOOL_LIMITS = Limits(timeout=10.0, memory_mb=256)
_MIB = 1024 * 1024
_VAR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z0-9_]+)*)\}")
_TOOL_ENTRY = "_hainet_tool_call"


class StepFailed(Exception):
    """A step could not produce its value; ends the run as the agent's failure."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        # What the model said before the step failed, kept for the step's record.
        self.raw: str | None = None
        self.tokens = (0, 0)


@dataclass(frozen=True, slots=True)
class StepRecord:
    """What one step did and what it cost."""

    step: str
    kind: str
    wall_s: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    rss_mb: float | None = None
    """Resident memory of this process after the step (an in-process model included)."""
    output: Any = None
    raw: str | None = None
    """The model's text before parsing (generate steps; samples joined)."""
    error: str | None = None


@dataclass(frozen=True, slots=True)
class AgentRun:
    """One run of an agent on one input."""

    agent_id: str
    input: Any
    output: Any
    steps: tuple[StepRecord, ...]
    wall_s: float
    error: str | None = None
    error_kind: str | None = None
    """parse, tool, code, validate, backend, context_overflow, sandbox_limit or
    no_tool_support (the model cannot do what a step needs, e.g. a JSON Schema)."""
    peak_rss_mb: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def prompt_tokens(self) -> int:
        return sum(s.prompt_tokens for s in self.steps)

    @property
    def completion_tokens(self) -> int:
        return sum(s.completion_tokens for s in self.steps)

    @property
    def text(self) -> str:
        """The output as text, for scorers: a string as is, anything else as JSON."""
        return as_text(self.output)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def as_text(value: Any) -> str:
    """A value as text: a string as is, None as nothing, anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return canonical_json(value)


def _lookup(variables: dict[str, Any], name: str, path: str) -> Any:
    value = variables[name]
    for part in filter(None, path.split(".")):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise StepFailed("parse", f"{{{name}{path}}}: no field {part!r} in {as_text(value)!r}")
    return value


def render(template: str, variables: dict[str, Any]) -> str:
    """Fill ``{name}`` and ``{name.field}`` from ``variables``; other braces stay."""

    def fill(m: re.Match[str]) -> str:
        if m.group(1) not in variables:
            return m.group(0)
        return as_text(_lookup(variables, m.group(1), m.group(2)))

    return _VAR.sub(fill, template)


def _resolve(value: Any, variables: dict[str, Any]) -> Any:
    """A tool argument: exactly ``{var}`` passes the value with its type."""
    if isinstance(value, str):
        m = _VAR.fullmatch(value.strip())
        if m and m.group(1) in variables:
            return _lookup(variables, m.group(1), m.group(2))
        return render(value, variables)
    if isinstance(value, dict):
        return {k: _resolve(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, variables) for v in value]
    return value


def parse_output(step: GenerateStep, text: str) -> Any:
    """Turn the model's text into the step's value (raises StepFailed 'parse')."""
    stripped = text.strip()
    if step.parser == "text":
        return stripped
    if step.parser == "first_line":
        return next((line.strip() for line in stripped.splitlines() if line.strip()), "")
    if step.parser in ("number", "integer"):
        m = NUMBER.search(stripped)
        if not m:
            raise StepFailed("parse", f"no number in {stripped[:80]!r}")
        number = float(m.group().replace(",", ""))
        if step.parser == "integer" or number.is_integer():
            return int(number)
        return number
    if step.parser == "json":
        try:
            return extract_json(stripped)
        except ValueError:
            raise StepFailed("parse", f"no JSON in {stripped[:80]!r}") from None
    if step.parser == "regex":
        m = re.search(step.pattern or "", stripped)
        if not m:
            raise StepFailed("parse", f"/{step.pattern}/ does not match {stripped[:80]!r}")
        return m.group(1) if m.groups() else m.group(0)
    # choice: the first option the answer starts with, else the first it mentions
    answer = normalize(stripped)
    options = [(normalize(c), c) for c in step.choices]
    for norm, choice in options:
        if answer.startswith(norm):
            return choice
    for norm, choice in options:
        if re.search(rf"\b{re.escape(norm)}\b", answer):
            return choice
    raise StepFailed("parse", f"{stripped[:80]!r} is none of {step.choices}")


# llama-cpp-python 0.3 reports a prompt longer than n_ctx either as "Requested tokens
# (N) exceed context window of M" or, measured with n_ctx 128 and a 200-token prompt,
# as a numpy error while it copies the tokens into its full buffer.
_LLAMA_OVERFLOW = re.compile(
    r"could not broadcast input array from shape \(\d+,\) into shape \(0,\)"
)


def _shape(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """The argument names of a tool's schema, without its types, enums and patterns:
    those steer a model's output (and read as a grammar), while the tool itself
    accepts more (``unit_convert`` takes "kilometers" and "1,500") and answers a value
    it cannot use with its own error."""
    if not schema or schema.get("type") != "object":
        return schema
    keep = ("type", "required", "additionalProperties")
    props: dict[str, Any] = {name: {} for name in schema.get("properties", {})}
    return {**{k: schema[k] for k in keep if k in schema}, "properties": props}


def _is_context_overflow(message: str) -> bool:
    text = message.lower()
    if _LLAMA_OVERFLOW.search(message):
        return True
    return "context" in text and any(w in text for w in ("exceed", "overflow", "too long"))


def _rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / _MIB


class AgentRunner:
    """Runs agents on one loaded model.  Safe to share between concurrent runs."""

    def __init__(
        self,
        backend: Backend,
        *,
        sandbox: Sandbox | None = None,
        unsafe_no_sandbox: bool = False,
        seed: int = 0,
        limits: Limits | None = None,
    ) -> None:
        self.backend = backend
        self._sandbox = sandbox
        self.unsafe_no_sandbox = unsafe_no_sandbox
        self.seed = seed
        self.limits = limits or TOOL_LIMITS

    @property
    def model_name(self) -> str:
        return self.backend.spec.name

    @property
    def sandbox(self) -> Sandbox:
        # Built on first use: an agent without tools or code never needs one.
        if self._sandbox is None:
            self._sandbox = Sandbox(limits=self.limits, unsafe_no_sandbox=self.unsafe_no_sandbox)
        return self._sandbox

    async def run(self, spec: AgentSpec, input: Any, *, seed: int | None = None) -> AgentRun:
        seed = self.seed if seed is None else seed
        variables: dict[str, Any] = {"input": input}
        records: list[StepRecord] = []
        peak = _rss_mb()
        start = time.perf_counter()
        error: StepFailed | None = None
        for step in spec.workflow:
            t0 = time.perf_counter()
            raw: str | None = None
            tokens = (0, 0)
            value: Any = None
            try:
                if isinstance(step, GenerateStep):
                    value, raw, tokens = await self._generate(step, variables, seed)
                elif isinstance(step, ToolStep):
                    value = await self._tool(spec.tool(step.tool), step, variables)
                elif isinstance(step, CodeStep):
                    value = await self._code(spec, step, variables)
                else:
                    value = self._validate(step, variables)
            except StepFailed as exc:
                error = exc
                raw, tokens = exc.raw, exc.tokens
            rss = _rss_mb()
            peak = max(peak, rss)
            records.append(
                StepRecord(
                    step=step.id,
                    kind=step.kind,
                    wall_s=time.perf_counter() - t0,
                    prompt_tokens=tokens[0],
                    completion_tokens=tokens[1],
                    rss_mb=rss,
                    output=value,
                    raw=raw,
                    error=str(error) if error else None,
                )
            )
            if error is not None:
                break
            if not isinstance(step, ValidateStep):
                variables[step.output] = value
        return AgentRun(
            agent_id=spec.id,
            input=input,
            output=None if error else variables.get(spec.output),
            steps=tuple(records),
            wall_s=time.perf_counter() - start,
            error=f"step {records[-1].step}: {error}" if error else None,
            error_kind=error.kind if error else None,
            peak_rss_mb=peak,
        )

    # -- steps ------------------------------------------------------------------

    def _request(self, step: GenerateStep, variables: dict[str, Any], seed: int) -> Request:
        examples = "".join(
            step.example_template.replace("{input}", ex.input).replace("{output}", ex.output)
            for ex in step.examples
        )
        prompt = render(step.template, {**variables, "examples": examples})
        params = GenerationParams(
            temperature=step.temperature,
            max_tokens=step.max_tokens,
            seed=seed,
            top_p=step.top_p,
            stop=tuple(step.stop),
            json_schema=step.json_schema,
        )
        system = render(step.system, variables) if step.system else None
        if self.backend.spec.mode == "chat":
            messages = [Message("system", system)] if system else []
            messages.append(Message("user", prompt))
            return Request(messages=tuple(messages), params=params)
        return Request(prompt=f"{system}\n\n{prompt}" if system else prompt, params=params)

    async def _generate(
        self, step: GenerateStep, variables: dict[str, Any], seed: int
    ) -> tuple[Any, str, tuple[int, int]]:
        if step.json_schema is not None and not self.backend.supports_json_schema:
            raise StepFailed(
                "no_tool_support",
                f"{self.model_name} cannot constrain output to a JSON Schema",
            )
        request = self._request(step, variables, seed)
        texts: list[str] = []
        values: list[Any] = []
        failures: list[StepFailed] = []
        prompt_tokens = completion_tokens = 0
        for i in range(step.samples):
            params = request.params.replace(seed=seed + i)
            sample = Request(prompt=request.prompt, messages=request.messages, params=params)
            try:
                completion = await self.backend.generate(sample)
            except (BackendUnavailable, ModelNotFound):
                raise
            except BackendError as exc:
                if _is_context_overflow(str(exc)):
                    n_ctx = self.backend.spec.n_ctx
                    raise StepFailed(
                        "context_overflow", f"prompt longer than the context ({n_ctx}): {exc}"
                    ) from None
                raise StepFailed("backend", str(exc)) from None
            prompt_tokens += completion.prompt_tokens
            completion_tokens += completion.completion_tokens
            texts.append(completion.text)
            try:
                values.append(parse_output(step, completion.text))
            except StepFailed as exc:
                failures.append(exc)
        raw = texts[0] if len(texts) == 1 else json.dumps(texts)
        if not values:
            failures[0].raw, failures[0].tokens = raw, (prompt_tokens, completion_tokens)
            raise failures[0]
        # Majority vote over the parsed values; ties go to the earliest sample.
        votes = collections.Counter(canonical_json(v) for v in values)
        best = max(votes.values())
        winner = next(v for v in values if votes[canonical_json(v)] == best)
        return winner, raw, (prompt_tokens, completion_tokens)

    async def _call(self, source: str, function: str, args: list[Any], kind: str) -> Any:
        result: CallResult = await asyncio.to_thread(
            self.sandbox.call, source, function, [args], limits=self.limits
        )
        if result.load_error:
            raise StepFailed(kind, f"could not load: {result.load_error}")
        if result.run.killed_by is not None:
            raise StepFailed("sandbox_limit", f"killed by the sandbox ({result.run.killed_by})")
        outcome = result.outcomes[0] if result.outcomes else None
        if outcome is None:
            tail = result.run.stderr.strip().splitlines()[-1:] or [f"exit {result.run.exit_code}"]
            raise StepFailed(kind, f"crashed: {tail[0][:200]}")
        if outcome.error:
            raise StepFailed(kind, outcome.error[:300])
        return outcome.value

    async def _tool(self, tool: ToolDef, step: ToolStep, variables: dict[str, Any]) -> Any:
        builtin = builtin_tool(tool.builtin) if tool.builtin else None
        source = builtin.source if builtin else (tool.source or "")
        kwargs = _resolve(step.args, variables)
        # Checked here, before the sandbox: a model's malformed arguments get a clear
        # error naming the argument instead of a TypeError from inside the tool.
        schema = _shape(tool.parameters or (builtin.parameters if builtin else None))
        if schema is not None:
            errors = list(jsonschema.Draft202012Validator(schema).iter_errors(kwargs))
            if errors:
                where = ".".join(str(p) for p in errors[0].absolute_path) or "arguments"
                raise StepFailed("tool", f"{tool.name}: {where}: {errors[0].message}")
        wrapper = f"\n\ndef {_TOOL_ENTRY}(kwargs):\n    return {tool.name}(**kwargs)\n"
        if tool.builtin and tool.builtin != tool.name:
            wrapper = f"\n\ndef {_TOOL_ENTRY}(kwargs):\n    return {tool.builtin}(**kwargs)\n"
        return await self._call(source + wrapper, _TOOL_ENTRY, [kwargs], "tool")

    async def _code(self, spec: AgentSpec, step: CodeStep, variables: dict[str, Any]) -> Any:
        return await self._call(spec.code or "", "run", [_resolve(step.input, variables)], "code")

    def _validate(self, step: ValidateStep, variables: dict[str, Any]) -> Any:
        value = _resolve(step.value, variables)
        if step.json_schema is not None:
            errors = list(jsonschema.Draft202012Validator(step.json_schema).iter_errors(value))
            if errors:
                raise StepFailed("validate", f"{as_text(value)[:80]!r}: {errors[0].message}")
        if step.pattern is not None and not re.search(step.pattern, as_text(value)):
            raise StepFailed("validate", f"{as_text(value)[:80]!r} does not match /{step.pattern}/")
        return value


@contextlib.asynccontextmanager
async def open_runner(model: ModelSpec, **runner_kwargs: Any) -> AsyncIterator[AgentRunner]:
    """Load ``model`` (in a worker thread), yield a runner on it, close it after."""
    backend = await asyncio.to_thread(open_backend, model)
    try:
        yield AgentRunner(backend, **runner_kwargs)
    finally:
        await backend.aclose()
