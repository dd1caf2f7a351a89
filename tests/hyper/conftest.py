"""A MockBackend-driven task where exactly one operator pays.

The agent answers "yes"/"no" questions ``qN``; the mock model answers case ``qN``
correctly only when the prompt carries more than ``N // 4`` few-shot examples.  So
``few_shot`` (one more example) lifts four validation cases at a time, while the
other operators change things the mock ignores (temperature, samples) and score the
same as their parent.  Evaluation is the real ``Evolver`` (``test_agent`` through an
``AgentRunner`` on the MockBackend, paired bootstrap); only proposing is scripted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from hainet.agents.evolve import Budget, Evolver, Proposal
from hainet.agents.spec import AgentSpec, Example, TestCase, parse_spec
from hainet.agents.testing import CaseOutcome
from hainet.agents.workflow import AgentRunner
from hainet.backends.mock import MockBackend
from hainet.hyper.control import Controls, Policy
from hainet.hyper.procedure import MetaProcedure
from hainet.store import Store
from hainet.types import Request
from tests.store.pg import ON_PG, pg_server, store_url  # noqa: F401 - pg_server: a fixture

LEVELS = 8
PER_LEVEL = 4


def answer(request: Request) -> str:
    prompt = request.prompt or ""
    n_examples = prompt.count("Output:") - 1
    asked = re.findall(r"Input: q(\d+)", prompt)
    if not asked:
        return "no"
    return "yes" if n_examples > int(asked[-1]) // PER_LEVEL else "no"


def cases(prefix: str, n: int, offset: int = 0) -> list[TestCase]:
    return [
        TestCase(id=f"{prefix}{i}", input=f"q{i + offset}", target="yes", scorer="exact")
        for i in range(n)
    ]


def root_spec() -> AgentSpec:
    return parse_spec(
        {
            "name": "yes-sayer",
            "purpose": "Answer the question.",
            "workflow": [
                {
                    "id": "answer",
                    "kind": "generate",
                    "template": "{examples}Input: {input}\nOutput:",
                    "parser": "first_line",
                    "output": "answer",
                    "max_tokens": 4,
                }
            ],
            "output": "answer",
            "tests": [{"id": "own", "input": "q0", "target": "yes", "scorer": "exact"}],
        }
    )


def _step(spec: AgentSpec, **changes: Any) -> AgentSpec:
    step = {**spec.workflow[0].model_dump(), **changes}
    return spec.derive(workflow=[step], lineage=[spec.id], created_by="ai_generated")


class ScriptedProposer:
    """Proposes by operator; ``extra`` maps an operator to a custom change."""

    def __init__(self, extra: dict[str, Callable[[AgentSpec], AgentSpec | None]] | None = None):
        self.extra = extra or {}
        self.calls: list[str] = []

    async def propose(
        self,
        spec: AgentSpec,
        operator: str,
        *,
        trainset: Sequence[TestCase],
        failures: Sequence[CaseOutcome],
    ) -> Proposal | None:
        self.calls.append(operator)
        if operator in self.extra:
            child = self.extra[operator](spec)
            return None if child is None else Proposal(operator, child, f"scripted {operator}")
        step = spec.workflow[0]
        if operator == "few_shot":
            have = {e.input for e in step.examples}  # type: ignore[union-attr]
            new = next((c for c in trainset if c.input not in have), None)
            if new is None:
                return None
            examples = [*step.examples, Example(input=new.input, output="yes")]  # type: ignore[union-attr]
            return Proposal(operator, _step(spec, examples=examples), "one more example")
        if operator == "params":
            t = round(step.temperature + 0.1, 2)  # type: ignore[union-attr]
            return Proposal(operator, _step(spec, temperature=t), f"temperature {t}")
        if operator == "samples":
            s = step.samples % 5 + 1  # type: ignore[union-attr]
            return Proposal(operator, _step(spec, samples=s), f"samples {s}")
        if operator == "rewrite_prompt":
            n = step.template.count("!")  # type: ignore[union-attr]
            template = "{examples}Input: {input}\nOutput:" + "!" * (n % 3 + 1)
            return Proposal(operator, _step(spec, template=template), "louder prompt")
        return None


def make_controls(db_url: str | None = None, **policy: Any) -> tuple[Controls, Evolver]:
    evaluator = Evolver(AgentRunner(MockBackend.from_function(answer)), seed=0)
    controls = Controls(
        evaluator=evaluator,
        valset=tuple(cases("v", PER_LEVEL * LEVELS)),
        testset=tuple(cases("t", PER_LEVEL * LEVELS)),
        policy=Policy(approval_poll_s=0.01, **policy),
        budget=Budget(bootstrap=400, confidence=0.9),
    )
    return controls, evaluator


TRAIN = cases("tr", 30, offset=100)


@pytest.fixture(params=["sqlite", ON_PG])
def store(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    """The hyper store on SQLite and on a fresh PostgreSQL database."""
    store = Store(store_url(request, str(tmp_path / "hyper.db")))
    yield store
    store.close()


@pytest.fixture
def db_url(store: Store) -> str:
    return str(store.url)


def procedure(**kw: Any) -> MetaProcedure:
    base: dict[str, Any] = {
        "operators": {"few_shot": 1.0, "params": 1.0, "samples": 1.0, "rewrite_prompt": 1.0},
        "candidates": 1,
        "meta_every": 4,
        "plateau_window": 3,
    }
    return MetaProcedure(**{**base, **kw})
