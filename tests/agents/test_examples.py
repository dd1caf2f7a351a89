"""The example agents in examples/agents/: valid, wired right, and (on the bundled
model) passing or failing the publication gate as their README says."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from hainet.agents.builtin_tools import BUILTIN_TOOLS
from hainet.agents.marketplace import Marketplace, PublishRefused
from hainet.agents.spec import AgentSpec, GenerateStep, load_spec
from hainet.agents.testing import test_agent
from hainet.agents.workflow import AgentRunner, parse_output
from hainet.backends import open_backend
from hainet.backends.catalog import Catalog
from hainet.backends.mock import MockBackend
from hainet.config import load_settings
from hainet.sandbox import Sandbox
from hainet.store import Store
from hainet.types import Request

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "agents"
PASSING = ["word-arithmetic", "unit-converter", "json-extractor"]
FAILING = ["capital-trivia"]
GATE = 0.8


def _spec(name: str) -> AgentSpec:
    return load_spec(EXAMPLES / f"{name}.yaml")


def test_the_examples_are_all_here_and_valid() -> None:
    names = sorted(p.stem for p in EXAMPLES.glob("*.yaml"))
    assert names == sorted(PASSING + FAILING)
    for name in names:
        spec = _spec(name)
        assert spec.name == name
        spec.verify()
        assert 8 <= len(spec.test_cases) <= 12, name
        assert 2 <= len(spec.holdout_cases) <= 3, name
        assert "gemma-3-270m" in spec.requirements.models
        for tool in spec.tools:
            assert tool.builtin in BUILTIN_TOOLS
        if any(isinstance(s, GenerateStep) and s.json_schema for s in spec.workflow):
            assert spec.requirements.json_schema, name
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for name in names:
        assert f"{name}.yaml" in readme


@pytest.mark.parametrize("name", PASSING + FAILING)
def test_few_shot_examples_parse_like_model_answers(name: str) -> None:
    # A few-shot example the step's own parser or schema rejects teaches the model
    # a format the workflow then refuses.
    for step in _spec(name).workflow:
        if not isinstance(step, GenerateStep):
            continue
        assert step.examples, (name, step.id)
        for ex in step.examples:
            value = parse_output(step, ex.output)
            if step.json_schema is not None:
                jsonschema.validate(value, step.json_schema)
            if step.parser == "regex":
                assert value == ex.output.strip()


def _test_inputs_are_not_few_shot(spec: AgentSpec) -> None:
    shown = {ex.input for s in spec.workflow if isinstance(s, GenerateStep) for ex in s.examples}
    assert not shown & {str(t.input) for t in spec.tests}, spec.name


@pytest.mark.parametrize("name", PASSING + FAILING)
def test_test_cases_are_not_the_few_shot_examples(name: str) -> None:
    _test_inputs_are_not_few_shot(_spec(name))


def _oracle(answers: dict[str, str]) -> MockBackend:
    """A model that gives the right answer for each test input found in the prompt."""

    def respond(request: Request) -> str:
        prompt = request.prompt or ""
        # The input is the last thing the template fills in: the latest match wins.
        best = max(answers, key=lambda text: prompt.rfind(text))
        assert prompt.rfind(best) >= 0, prompt[-200:]
        return answers[best]

    return MockBackend.from_function(respond)


def _unit_answer(test_input: str, spec: AgentSpec) -> str:
    # The ideal extraction for each test question, written out by hand.
    table = {
        "7 kilometers": (7, "km", "m"),
        "4 kilograms": (4, "kg", "lb"),
        "212 degrees": (212, "f", "c"),
        "3 hours": (3, "h", "min"),
        "2500 milliliters": (2500, "ml", "l"),
        "4 feet": (4, "ft", "in"),
        "1500 grams": (1500, "g", "kg"),
        "5 miles": (5, "mi", "km"),
        "6 minutes": (6, "min", "s"),
        "30 degrees": (30, "c", "f"),
        "3 days": (3, "day", "h"),
        "250 centimeters": (250, "cm", "m"),
    }
    for key, (value, a, b) in table.items():
        if key in test_input:
            return f" {value} {a} -> {b}"
    raise AssertionError(f"{spec.name}: no ideal answer for {test_input!r}")


def _ideal_answers(spec: AgentSpec) -> dict[str, str]:
    if spec.name == "json-extractor":
        return {t.input: json.dumps(json.loads(t.target)) for t in spec.tests}
    if spec.name == "capital-trivia":
        return {f"capital of {t.input}?": f" {t.target}" for t in spec.tests}
    if spec.name == "unit-converter":
        return {t.input: _unit_answer(t.input, spec) for t in spec.tests}
    # word-arithmetic: a correct expression for each problem from its numbers
    # and target (two numbers in every problem, one operation gives the target).
    answers = {}
    for t in spec.tests:
        a, b = (int(w.strip(".,?")) for w in t.input.split() if w.strip(".,?").isdigit())
        op = next(o for o in "+-*/" if eval(f"{a}{o}{b}") == t.target)  # noqa: S307 - digits only
        answers[t.input] = f" {a} {op} {b}"
    return answers


@pytest.mark.parametrize("name", PASSING + FAILING)
def test_a_perfect_model_scores_every_case(name: str, agent_sandbox: Sandbox) -> None:
    # Checks the wiring end to end (parsers, tool arguments, the sandboxed tools,
    # targets and scorers): with ideal model answers every case must score 1.
    spec = _spec(name)
    runner = AgentRunner(_oracle(_ideal_answers(spec)), sandbox=agent_sandbox)
    report = asyncio.run(test_agent(spec, runner))
    bad = [(o.test_id, o.output, o.error, o.explanation) for o in report.failures()]
    assert not bad
    assert report.success_rate == 1.0 and report.holdout_rate == 1.0


def test_a_wrong_model_fails_the_gate(agent_sandbox: Sandbox) -> None:
    spec = _spec("word-arithmetic")
    runner = AgentRunner(MockBackend.from_function(lambda r: " 1 + 1"), sandbox=agent_sandbox)
    report = asyncio.run(test_agent(spec, runner, cases=spec.test_cases))
    assert report.success_rate == 0.0


# -- the bundled model ------------------------------------------------------------


@pytest.fixture(scope="module")
def bundled_runner(
    bundled_gguf: Path, agent_sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AgentRunner]:
    home = tmp_path_factory.mktemp("examples-home")
    (home / "models").mkdir()
    (home / "models" / bundled_gguf.name).symlink_to(bundled_gguf)
    model = Catalog(load_settings(home=str(home))).resolve("gemma-3-270m")
    backend = open_backend(model)
    try:
        yield AgentRunner(backend, sandbox=agent_sandbox)
    finally:
        asyncio.run(backend.aclose())


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Marketplace:
    return Marketplace(Store(f"sqlite:///{tmp_path_factory.mktemp('market') / 'hainet.db'}"))


@pytest.mark.model
@pytest.mark.slow
@pytest.mark.parametrize("name", PASSING)
def test_examples_pass_the_gate_on_the_bundled_model_and_are_published(
    name: str, bundled_runner: AgentRunner, market: Marketplace
) -> None:
    spec = _spec(name)
    result = asyncio.run(market.publish(spec, bundled_runner, threshold=GATE))
    failures = [(o.test_id, o.output, o.error) for o in result.reports[0].failures()]
    assert result.success_rate > GATE, (name, result.success_rate, failures)
    assert market.agents.get(spec.id).status == "published"
    # The measured results are stored with the published version.
    assert [r.success_rate for r in market.agents.reports(spec.id)] == [result.success_rate]


@pytest.mark.model
@pytest.mark.slow
def test_free_text_trivia_is_refused_with_its_measured_rate(
    bundled_runner: AgentRunner, market: Marketplace
) -> None:
    spec = _spec("capital-trivia")
    with pytest.raises(PublishRefused) as refused:
        asyncio.run(market.publish(spec, bundled_runner, threshold=GATE))
    assert refused.value.rate <= GATE
    assert f"success rate {refused.value.rate:.3f}" in str(refused.value)
    assert market.agents.get(spec.id).status == "draft"
