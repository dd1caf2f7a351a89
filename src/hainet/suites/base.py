"""Cases and suites, loaded from JSON data files.

A suite file (``suites/data/NAME.json`` in the package, or ``HAINET_HOME/suites/NAME.json``
for users' own) looks like::

    {
      "name": "reasoning", "version": "0.1", "capability": "reasoning",
      "description": "...",
      "scorer": "numeric",                       # default scorer of its cases
      "max_tokens": 12, "stop": ["\\n"],           # default generation settings
      "prompt_template": "{few_shot}Q: {input}\\nA:",   # prompt (completion) mode
      "few_shot": "Q: ...\\nA: ...\\n\\n",
      "system": "Answer with just the answer.",  # chat mode
      "quick": ["case-id", ...],                 # the --quick subset
      "cases": [{"id": "...", "input": "...", "target": "...", "aliases": [],
                 "scorer": "...", "options": {...}}]
    }

The backend's mode picks the form: prompt mode renders ``prompt_template`` (few-shot,
for base models), chat mode sends ``system`` + the input as messages.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic import ValidationError as PydanticValidationError

from hainet.errors import SuiteError
from hainet.suites.scorers import Scorer, get_scorer
from hainet.types import GenerationParams, Message, Mode, Request

__all__ = ["Case", "Suite", "load_suite", "suite_names"]


class Case(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    input: str = Field(description="The question or task, without few-shot examples.")
    target: Any = Field(default=None, description="Expected answer, if the scorer needs one.")
    aliases: list[str] = Field(default_factory=list, description="Other accepted answers.")
    scorer: str | None = Field(default=None, description="Overrides the suite's scorer.")
    options: dict[str, Any] = Field(default_factory=dict, description="Scorer options.")
    max_tokens: int | None = None
    tags: list[str] = Field(default_factory=list)


class Suite(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: str
    capability: str
    description: str = ""
    scorer: str = "exact"
    max_tokens: int = 32
    stop: list[str] = Field(default_factory=list)
    prompt_template: str = "{few_shot}{input}"
    few_shot: str = ""
    system: str | None = None
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
            get_scorer(case.scorer or self.scorer)  # fail at load, not mid-run
        return self

    def select(self, *, quick: bool = False) -> list[Case]:
        if quick and self.quick:
            wanted = set(self.quick)
            return [c for c in self.cases if c.id in wanted]
        return list(self.cases)

    def scorer_for(self, case: Case) -> Scorer:
        return get_scorer(case.scorer or self.scorer)

    def request(self, case: Case, mode: Mode, params: GenerationParams) -> Request:
        """The request for ``case``: few-shot prompt for base models, messages for chat."""
        params = params.replace(
            max_tokens=case.max_tokens or self.max_tokens,
            stop=tuple(self.stop) or params.stop,
        )
        if mode == "prompt":
            prompt = self.prompt_template.format(few_shot=self.few_shot, input=case.input)
            return Request(prompt=prompt, params=params)
        messages = []
        if self.system:
            messages.append(Message("system", self.system))
        messages.append(Message("user", case.input))
        return Request(messages=tuple(messages), params=params)


_BUILTIN = files("hainet.suites").joinpath("data")


def _user_dir(home: Path | None) -> Path | None:
    return home / "suites" if home else None


def suite_names(home: Path | None = None) -> list[str]:
    names = {p.name[:-5] for p in _BUILTIN.iterdir() if p.name.endswith(".json")}
    user = _user_dir(home)
    if user and user.is_dir():
        names |= {p.stem for p in user.glob("*.json")}
    return sorted(names)


def load_suite(name: str, home: Path | None = None) -> Suite:
    """Load a suite by name (users' own in ``HAINET_HOME/suites`` win) or by file path."""
    path: Path | None = None
    text: str | None = None
    user = _user_dir(home)
    if name.endswith(".json") and Path(name).is_file():
        path = Path(name)
    elif user and (user / f"{name}.json").is_file():
        path = user / f"{name}.json"
    else:
        builtin = _BUILTIN.joinpath(f"{name}.json")
        if builtin.is_file():
            text = builtin.read_text(encoding="utf-8")
    if path is not None:
        text = path.read_text(encoding="utf-8")
    if text is None:
        raise SuiteError(
            f"unknown suite {name!r}", hint=f"known suites: {', '.join(suite_names(home))}"
        )
    where = str(path) if path else f"built-in suite {name!r}"
    try:
        return Suite.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise SuiteError(f"{where} is not valid JSON: {exc}") from None
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise SuiteError(f"{where}: {loc}: {first['msg']}") from None
