"""Cases and suites: what to ask a model, in both forms, and how to score it.

A suite is a JSON file (``suites/data/NAME.json`` in the package, users' own in
``HAINET_HOME/suites/NAME.json`` or behind an entry point, see ``loader.py``)::

    {
      "name": "reasoning", "version": "1.0", "capability": "reasoning",
      "description": "...",
      "scorer": "numeric",                 # default scorer of its cases
      "max_tokens": 12, "stop": ["\\n"],     # default generation settings
      "temperature": null,                 # used when the bench gives none
      "samples": 1,                        # completions per case (creativity, pass@k)
      "prompt_template": "{few_shot}Q: {input}\\nA:",     # prompt (completion) mode
      "few_shot": "Q: ...\\nA: ...\\n\\n",
      "system": "Answer with just the answer.",          # chat mode
      "chat_template": "{input}",                        # chat mode: the last user turn
      "quick": ["case-id", ...],           # the --quick subset
      "cases": [{"id": "...", "input": "...", "target": "...", "aliases": [],
                 "scorer": "...", "options": {...}}]
    }

Templates may use ``{input}``, ``{few_shot}``, ``{transcript}`` (earlier turns of a
conversation, rendered ``User: ...\\nAssistant: ...``), ``{tools}`` and ``{schema}``
(the case's tool definitions and JSON Schema as JSON).  The backend's mode picks the
form: prompt mode renders ``prompt_template`` (few-shot, for base models); chat mode
sends ``system``, the earlier turns and ``chat_template`` as messages.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hainet.errors import SuiteError
from hainet.inputs import SUITE_LIMITS, format_path, value_problem
from hainet.suites.scorers import check_case, scorer_known
from hainet.types import GenerationParams, Message, Mode, Request

__all__ = ["Case", "Suite", "Turn", "render"]


_PLACEHOLDER = re.compile(r"\{(input|few_shot|transcript|tools|schema)\}")


def render(template: str, variables: dict[str, str]) -> str:
    """Fill the known ``{placeholders}``; every other brace (JSON examples) stays as is."""
    return _PLACEHOLDER.sub(lambda m: variables[m.group(1)], template)


class Turn(BaseModel):
    """One earlier turn of a conversation."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Literal["user", "assistant"]
    content: str


class Case(BaseModel):
    # No NaN or infinity anywhere: NaN equals nothing, so it would score 0, and it is
    # not JSON, so it could not be stored.  Plugins build cases in Python, so the free
    # fields (target, options, ...) are checked here too, not only when read from files.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    id: str = Field(description="Unique within its suite.")
    input: str = Field(description="The question or task (the last user turn).")
    target: Any = Field(default=None, description="Expected answer, if the scorer needs one.")
    aliases: list[str] = Field(default_factory=list, description="Other accepted answers.")
    scorer: str | None = Field(default=None, description="Overrides the suite's scorer.")
    options: dict[str, Any] = Field(default_factory=dict, description="Scorer options.")
    turns: list[Turn] = Field(
        default_factory=list, description="Earlier turns of a conversation, oldest first."
    )
    json_schema: dict[str, Any] | None = Field(
        default=None, description="JSON Schema of the answer ({schema} in templates)."
    )
    constrained: bool = Field(
        default=False, description="Constrain generation to json_schema (grammar) if possible."
    )
    tools: list[dict[str, Any]] | None = Field(
        default=None, description="Tool definitions in the OpenAI format ({tools})."
    )
    max_tokens: int | None = Field(default=None, ge=1)
    stop: list[str] | None = None
    samples: int | None = Field(default=None, ge=1, description="Completions to draw.")
    temperature: float | None = Field(default=None, ge=0)
    tags: list[str] = Field(default_factory=list)

    @field_validator("target")
    @classmethod
    def _json_target(cls, value: Any) -> Any:
        return _checked(value, strict=True)

    @field_validator("options", "json_schema", "tools")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        # Only bounded in depth here: each scorer's check_case reads its own options
        # (the numeric tolerance must be finite; a code test may expect an infinity).
        return _checked(value, strict=False)


def _checked(value: Any, *, strict: bool) -> Any:
    problem = value_problem(value, SUITE_LIMITS, strict=strict)
    if problem is not None:
        at = format_path(problem.path)
        raise ValueError(f"{at}: {problem.message}" if at else problem.message)
    return value


class Suite(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str
    version: str
    capability: str
    description: str = ""
    scorer: str = "exact"
    max_tokens: int = Field(default=32, ge=1)
    stop: list[str] = Field(default_factory=list)
    temperature: float | None = Field(
        default=None, ge=0, description="Sampling temperature when the bench gives none."
    )
    samples: int = Field(default=1, ge=1)
    prompt_template: str = "{few_shot}{input}"
    few_shot: str = ""
    system: str | None = None
    chat_template: str = "{input}"
    quick: list[str] = Field(default_factory=list)
    cases: list[Case]

    @model_validator(mode="after")
    def _check(self) -> Suite:
        ids = [c.id for c in self.cases]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate case ids: {dupes}")
        unknown = sorted(set(self.quick) - set(ids))
        if unknown:
            raise ValueError(f"quick subset names unknown cases: {unknown}")
        for case in self.cases:
            name = case.scorer or self.scorer
            if not scorer_known(name):
                raise ValueError(f"case {case.id!r}: unknown scorer {name!r}")
            try:
                check_case(name, case)
            except SuiteError as exc:
                raise ValueError(str(exc)) from None
        return self

    def select(self, *, quick: bool = False) -> list[Case]:
        if quick and self.quick:
            wanted = set(self.quick)
            return [c for c in self.cases if c.id in wanted]
        return list(self.cases)

    def scorer_name(self, case: Case) -> str:
        return case.scorer or self.scorer

    def samples_for(self, case: Case) -> int:
        return case.samples or self.samples

    def temperature_for(self, case: Case, bench_temperature: float | None) -> float:
        """The bench's temperature when it gives one (sweeps), else the case's or suite's."""
        if bench_temperature is not None:
            return bench_temperature
        for value in (case.temperature, self.temperature):
            if value is not None:
                return value
        return 0.0

    def _variables(self, case: Case) -> dict[str, str]:
        transcript = "".join(
            f"{'User' if t.role == 'user' else 'Assistant'}: {t.content}\n" for t in case.turns
        )
        return {
            "input": case.input,
            "few_shot": self.few_shot,
            "transcript": transcript,
            "tools": json.dumps(case.tools) if case.tools else "",
            "schema": json.dumps(case.json_schema) if case.json_schema else "",
        }

    def request(
        self,
        case: Case,
        mode: Mode,
        params: GenerationParams,
        *,
        native_tools: bool = False,
        constrain: bool = True,
    ) -> Request:
        """The request for ``case``: few-shot prompt for base models, messages for chat.

        ``native_tools``: pass the case's tools as the backend's tools parameter (chat
        mode, backends that support tools) instead of only describing them in text.
        ``constrain``: honour ``case.constrained`` (the backend can follow a schema).
        """
        tools = tuple(case.tools) if (case.tools and native_tools and mode == "chat") else None
        params = params.replace(
            max_tokens=case.max_tokens or self.max_tokens,
            stop=tuple(case.stop if case.stop is not None else self.stop) or params.stop,
            # Native tool calls and a grammar would fight over the output: tools win.
            json_schema=case.json_schema
            if (case.constrained and constrain and not tools)
            else None,
            tools=tools,
        )
        variables = self._variables(case)
        if mode == "prompt":
            return Request(prompt=render(self.prompt_template, variables), params=params)
        messages = []
        if self.system:
            messages.append(Message("system", render(self.system, variables)))
        messages.extend(Message(t.role, t.content) for t in case.turns)
        messages.append(Message("user", render(self.chat_template, variables)))
        return Request(messages=tuple(messages), params=params)
