"""Evolver: operators, paired-bootstrap selection, lineage, no mutation."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from hainet.agents import operators as ops
from hainet.agents.evolve import (
    OPERATORS,
    Budget,
    Evaluation,
    Evolver,
    load_cases,
    paired_bootstrap,
)
from hainet.agents.spec import AgentSpec, GenerateStep, TestCase, ToolStep, parse_spec
from hainet.agents.testing import CaseOutcome, TestReport
from hainet.agents.workflow import AgentRunner
from hainet.backends.mock import MockBackend
from hainet.errors import ValidationError
from hainet.types import ModelSpec, Request

ANSWERS = {f"what is {a} plus {b}?": a + b for a in range(1, 5) for b in range(1, 4)}


def cases(prefix: str, items: list[tuple[str, int]]) -> list[TestCase]:
    return [TestCase(id=f"{prefix}{i}", input=q, target=str(t)) for i, (q, t) in enumerate(items)]


ITEMS = list(ANSWERS.items())
TRAIN = cases("tr", ITEMS[:6])
VAL = cases("va", ITEMS[6:])


def make_spec(**step: Any) -> AgentSpec:
    gen = {
        "id": "answer",
        "kind": "generate",
        "template": "{examples}Q: {input}\nA:",
        "output": "answer",
        **step,
    }
    return parse_spec(
        {
            "name": "adder",
            "purpose": "Add two numbers given in words.",
            "workflow": [gen],
            "output": "answer",
        }
    )


def question(req: Request) -> str:
    # The question is the last "Q: ..." line of the prompt.
    return re.findall(r"Q: (.*)\n", req.prompt or "")[-1]


def runner(fn: Any) -> AgentRunner:
    return AgentRunner(MockBackend.from_function(fn))


def answers_with_examples(req: Request) -> str:
    """Right only when the prompt shows at least one example (few-shot fixes it)."""
    if (req.prompt or "").count("Q: ") > 1 or "Input:" in (req.prompt or ""):
        return str(ANSWERS[question(req)])
    return "I do not know"


def verbose(req: Request) -> str:
    """Always right, but wrapped in words: only a number parser extracts the answer."""
    return f"The answer is {ANSWERS[question(req)]}, I think."


def evaluation(scores: list[float], spec_id: str = "x") -> Evaluation:
    report = TestReport(agent_id=spec_id, model="mock", outcomes=(), wall_s=0.0)
    return Evaluation(spec_id, tuple(scores), sum(scores) / len(scores), report)


async def test_few_shot_fixes_a_failing_agent() -> None:
    parent = make_spec()
    before = parent.model_dump()
    events: list[tuple[str, dict[str, Any]]] = []
    evolver = Evolver(
        runner(answers_with_examples),
        operators={"few_shot": 1.0},
        on_event=lambda e, d: events.append((e, d)),
    )
    child = await evolver.evolve(parent, trainset=TRAIN, valset=VAL, budget=Budget(candidates=1))
    assert child is not parent
    assert child.id != parent.id
    assert child.lineage == [parent.id]
    assert child.version == "1.0.1"
    assert child.created_by == "ai_generated"
    step = child.workflow[0]
    assert isinstance(step, GenerateStep) and step.examples
    # Failed train cases became examples with their target as the output.
    train_inputs = {c.input: c.target for c in TRAIN}
    assert all(train_inputs[e.input] == e.output for e in step.examples)
    assert parent.model_dump() == before
    parent.verify()
    names = [e for e, _ in events]
    assert names[:2] == ["evaluated", "evaluated"]
    assert "proposed" in names and "accepted" in names and names[-1] == "done"
    assert events[-1][1]["changed"] is True
    assert events[-1][1]["val_means"] == {parent.id: 0.0, child.id: 1.0}


async def test_parser_operator_picks_a_fitting_parser() -> None:
    parent = make_spec(template="Q: {input}\nA:", parser="text")
    evolver = Evolver(runner(verbose), operators={"parser": 1.0}, seed=3)
    child = await evolver.evolve(parent, trainset=TRAIN, valset=VAL, budget=Budget(candidates=3))
    step = child.workflow[0]
    assert isinstance(step, GenerateStep)
    assert step.parser in ("number", "integer")
    assert child.lineage == [parent.id]


async def test_no_gain_returns_the_parent_itself() -> None:
    parent = make_spec(template="Q: {input}\nA:")
    before = parent.model_dump()
    events: list[tuple[str, dict[str, Any]]] = []
    # Always wrong whatever the parameters: no child can win.
    evolver = Evolver(
        runner(lambda req: "no idea"),
        operators={"params": 1.0, "samples": 1.0},
        on_event=lambda e, d: events.append((e, d)),
    )
    result = await evolver.evolve(parent, trainset=TRAIN, valset=VAL, budget=Budget(candidates=2))
    assert result is parent
    assert parent.model_dump() == before
    assert [e for e, _ in events].count("rejected") == 2
    assert events[-1][0] == "done" and events[-1][1]["changed"] is False


async def test_evaluations_are_cached_across_rounds() -> None:
    parent = make_spec(template="Q: {input}\nA:")
    backend = MockBackend.from_function(lambda req: "no idea")
    events: list[dict[str, Any]] = []
    evolver = Evolver(
        AgentRunner(backend),
        operators={"samples": 1.0},
        on_event=lambda e, d: events.append(d) if e == "evaluated" else None,
    )
    assert await evolver.evolve(parent, trainset=TRAIN, valset=VAL) is parent
    first = len(backend.requests)
    assert first > 0 and not any(d["cached"] for d in events)
    events.clear()
    assert await evolver.evolve(parent, trainset=TRAIN, valset=VAL) is parent
    # Same parent, same cases, same proposal: nothing is run again.
    assert len(backend.requests) == first
    assert events and all(d["cached"] for d in events)


async def test_proposals_are_reproducible_with_a_seed() -> None:
    parent = make_spec()
    ids = []
    for _ in range(2):
        evolver = Evolver(runner(answers_with_examples), seed=7)
        props = []
        for op in ("few_shot", "params", "samples", "parser"):
            p = await evolver.propose(parent, op, trainset=TRAIN, failures=failures(TRAIN))
            props.append(p.spec.content() if p else None)
        ids.append(props)
    assert ids[0] == ids[1]


def failures(items: list[TestCase]) -> list[CaseOutcome]:
    return [CaseOutcome(test_id=c.id, score=0.0, explanation="wrong", output="?") for c in items]


def test_compare_rejects_a_tie_and_noise_and_accepts_a_clear_win() -> None:
    evolver = Evolver(runner(verbose))
    budget = Budget()
    parent = evaluation([0.0] * 5 + [1.0] * 5)
    tie = evolver.compare(parent, evaluation([0.0] * 5 + [1.0] * 5, "c"), budget)
    assert not tie.accepted and tie.delta == 0
    # One lucky case out of ten is not evidence.
    noise = evolver.compare(parent, evaluation([1.0] + [0.0] * 4 + [1.0] * 5, "n"), budget)
    assert not noise.accepted and noise.delta > 0 and noise.ci_low <= 0
    win = evolver.compare(parent, evaluation([1.0] * 10, "w"), budget)
    assert win.accepted and win.ci_low > 0 and win.delta == pytest.approx(0.5)
    worse = evolver.compare(parent, evaluation([0.0] * 10, "l"), budget)
    assert not worse.accepted and worse.delta < 0
    with pytest.raises(ValidationError):
        evolver.compare(parent, evaluation([1.0, 1.0]), budget)


def test_paired_bootstrap_interval_contains_the_mean() -> None:
    diffs = [1.0, 0.0, 0.0, 1.0, -1.0, 1.0, 0.0, 1.0]
    mean, low, high = paired_bootstrap(diffs, resamples=500, confidence=0.9, rng=random.Random(1))
    assert low < mean < high
    assert mean == pytest.approx(0.375)


async def test_cross_combines_prompt_and_examples() -> None:
    # Right only with "Think." in the prompt AND an example: neither parent has both.
    def fn(req: Request) -> str:
        p = req.prompt or ""
        return str(ANSWERS[question(req)]) if "Think." in p and "Input:" in p else "?"

    a = make_spec(template="Think. {examples}Q: {input}\nA:")
    b = make_spec(
        template="{examples}Q: {input}\nA:",
        examples=[{"input": "what is 9 plus 9?", "output": "18"}],
    ).derive(name="adder-b")
    dumps = (a.model_dump(), b.model_dump())
    child = await Evolver(runner(fn)).cross([a, b], trainset=TRAIN, valset=VAL)
    assert child.id not in (a.id, b.id)
    assert child.lineage == [a.id, b.id]
    step = child.workflow[0]
    assert isinstance(step, GenerateStep)
    assert "Think." in step.template and step.examples[0].input == "what is 9 plus 9?"
    assert (a.model_dump(), b.model_dump()) == dumps


async def test_cross_without_gain_returns_the_best_parent() -> None:
    a = make_spec(template="Q: {input}\nA:")
    b = make_spec(template="Question: Q: {input}\nA:").derive(name="adder-b")
    result = await Evolver(runner(verbose)).cross([a, b], trainset=TRAIN, valset=VAL)
    assert result is a or result is b


def calc_spec() -> AgentSpec:
    return parse_spec(
        {
            "name": "calc",
            "purpose": "Arithmetic.",
            "workflow": [
                {
                    "id": "expr",
                    "kind": "generate",
                    "template": "{examples}Problem: {input}\nExpression:",
                    "output": "e",
                    "parser": "first_line",
                },
                {
                    "id": "compute",
                    "kind": "tool",
                    "tool": "calculator",
                    "args": {"expression": "{e}"},
                    "output": "answer",
                },
            ],
            "output": "answer",
            "tools": [{"name": "calculator", "builtin": "calculator"}],
        }
    )


def test_cross_tools_takes_the_workflow_of_one_and_the_prompt_of_another() -> None:
    best = make_spec(template="Solve: {input}\n", examples=[{"input": "1+1", "output": "2"}])
    crosses = {name: s for name, s, _ in ops.combinations([best, calc_spec()])}
    tools = crosses["cross_tools"]
    assert tools is not None
    assert [t.name for t in tools.tools] == ["calculator"]
    assert isinstance(tools.workflow[1], ToolStep)
    assert tools.workflow[0].template == "Solve: {input}\n"  # type: ignore[union-attr]


def test_add_tool_routes_a_numeric_answer_through_the_calculator() -> None:
    spec = make_spec(parser="number")
    change = ops.add_tool(spec, random.Random(0), trainset=TRAIN)
    assert change is not None
    child = change.spec
    assert [t.builtin for t in child.tools] == ["calculator"]
    gen, tool = child.workflow
    assert isinstance(gen, GenerateStep) and gen.parser == "first_line"
    assert isinstance(tool, ToolStep) and tool.output == child.output == "answer"
    assert tool.args == {"expression": "{" + gen.output + "}"}
    # Text targets cannot come out of a calculator.
    words = [TestCase(id="w", input="x", target="Paris")]
    assert ops.add_tool(spec, random.Random(0), trainset=words) is None
    # Already has it: nothing to add.
    assert ops.add_tool(calc_spec(), random.Random(0), trainset=TRAIN) is None


async def test_add_tool_child_wins_when_the_model_writes_expressions() -> None:
    # The model writes "a+b" instead of the sum: only the calculator (in the sandbox)
    # turns that into the answer.
    def expression(req: Request) -> str:
        a, b = re.findall(r"what is (\d+) plus (\d+)", question(req))[0]
        return f"{a}+{b}"

    parent = make_spec(template="Q: {input}\nA:")
    evolver = Evolver(runner(expression), operators={"add_tool": 1.0})
    child = await evolver.evolve(parent, trainset=TRAIN, valset=VAL, budget=Budget(candidates=1))
    assert child is not parent
    assert [t.builtin for t in child.tools] == ["calculator"]
    report = (await evolver.evaluate(child, VAL)).report
    assert report.success_rate == 1.0


def test_few_shot_does_not_teach_a_step_the_wrong_output() -> None:
    # The generate step emits an expression, not the number: targets cannot be examples.
    assert (
        ops.few_shot(calc_spec(), random.Random(0), trainset=TRAIN, failures=failures(TRAIN))
        is None
    )


def test_few_shot_adds_an_examples_slot_and_caps_examples() -> None:
    spec = make_spec(template="Add the numbers.\nQ: {input}\nA:")
    change = ops.few_shot(spec, random.Random(0), trainset=TRAIN * 1, failures=failures(TRAIN))
    assert change is not None
    step = change.spec.workflow[0]
    assert isinstance(step, GenerateStep)
    assert step.template.startswith("{examples}")
    assert 0 < len(step.examples) <= ops.MAX_EXAMPLES
    # The first examples are shown in the prompt's own words, not "Input:/Output:".
    assert step.example_template == "Q: {input}\nA: {output}\n\n"
    # A format the author chose is kept.
    custom = make_spec(template="Q: {input}\nA:", example_template="{input} = {output}\n")
    kept = ops.few_shot(custom, random.Random(0), trainset=TRAIN, failures=failures(TRAIN))
    assert kept is not None
    assert kept.spec.workflow[0].example_template == "{input} = {output}\n"  # type: ignore[union-attr]


def test_example_format_needs_text_after_the_input() -> None:
    assert ops.example_format(make_spec(template="{input}").workflow[0]) is None  # type: ignore[arg-type]
    step = make_spec(template="{examples}Review: {input}\nSentiment:").workflow[0]
    assert ops.example_format(step) == "Review: {input}\nSentiment: {output}\n\n"  # type: ignore[arg-type]


async def test_rewrite_prompt_keeps_the_variables_or_is_discarded() -> None:
    spec = make_spec()
    good = MockBackend.from_function(
        lambda req: json.dumps({"template": "{examples}Answer with a number.\nQ: {input}\nA:"})
    )
    change = await ops.rewrite_prompt(
        spec, random.Random(0), proposer=good, trainset=TRAIN, failures=failures(TRAIN)
    )
    assert change is not None
    assert "Answer with a number." in change.spec.workflow[0].template  # type: ignore[union-attr]
    prompt = good.requests[0].prompt or ""
    assert TRAIN[0].input in prompt and "{input}" in prompt  # failures and variables shown
    assert good.requests[0].params.json_schema is not None  # grammar-constrained answer
    dropped = MockBackend.from_function(lambda req: json.dumps({"template": "Q: {input}\nA:"}))
    assert (
        await ops.rewrite_prompt(
            spec, random.Random(0), proposer=dropped, trainset=TRAIN, failures=failures(TRAIN)
        )
        is None
    )
    garbage = MockBackend.from_function(lambda req: "not json at all")
    assert (
        await ops.rewrite_prompt(
            spec, random.Random(0), proposer=garbage, trainset=TRAIN, failures=[]
        )
        is None
    )


async def test_switch_model_uses_the_runner_of_the_new_model() -> None:
    parent = make_spec(template="Q: {input}\nA:")
    weak = AgentRunner(
        MockBackend.from_function(
            lambda req: "?",
        )
    )
    strong_backend = MockBackend(
        ModelSpec(name="strong", backend="mock"),
        responder=lambda req: str(ANSWERS[question(req)]),
    )
    strong = AgentRunner(strong_backend)
    evolver = Evolver(
        weak,
        operators={"switch_model": 1.0},
        runners={"strong": strong},
        model_ranking=["strong", "mock"],
    )
    child = await evolver.evolve(parent, trainset=TRAIN, valset=VAL, budget=Budget(candidates=1))
    assert child.requirements.models == ["strong"]
    assert child.lineage == [parent.id]
    assert strong_backend.requests  # the child was evaluated on the strong model


def test_operators_and_budget_are_validated() -> None:
    with pytest.raises(ValidationError, match="unknown operator"):
        Evolver(runner(verbose), operators={"mutate": 1.0})
    with pytest.raises(ValidationError):
        Evolver(runner(verbose), operators={"few_shot": 0.0})
    with pytest.raises(ValidationError):
        Budget(confidence=1.5)
    assert set(OPERATORS) == {
        "rewrite_prompt",
        "few_shot",
        "params",
        "samples",
        "parser",
        "add_tool",
        "switch_model",
    }


def test_load_cases_formats_and_errors(tmp_path: Path) -> None:
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text('{"id": "a", "input": "x", "target": 1}\n\n{"id": "b", "inpt": "y"}\n')
    with pytest.raises(ValidationError, match=r"line 3: input: Field required"):
        load_cases(jsonl)
    yml = tmp_path / "c.yaml"
    yml.write_text("- {id: a, input: x, target: 1, scorer: numeric}\n- {id: b, input: y}\n")
    assert [c.id for c in load_cases(yml)] == ["a", "b"]
    js = tmp_path / "c.json"
    js.write_text(json.dumps([{"id": "a", "input": "x"}, {"id": "a", "input": "y"}]))
    with pytest.raises(ValidationError, match="duplicate test id"):
        load_cases(js)
    js.write_text(json.dumps({"id": "a"}))
    with pytest.raises(ValidationError, match="list of test cases"):
        load_cases(js)


REVIEWS = [
    ("I loved every minute of it.", "positive"),
    ("Terrible acting and a boring plot.", "negative"),
    ("A wonderful, heartwarming film.", "positive"),
    ("I want my money back.", "negative"),
    ("Absolutely brilliant and moving.", "positive"),
    ("Dull, slow and far too long.", "negative"),
    ("One of the best films I have seen.", "positive"),
    ("A complete waste of time.", "negative"),
]


@pytest.mark.model
async def test_evolve_on_the_bundled_model(bundled_gguf: Path) -> None:
    from hainet.agents.workflow import open_runner
    from hainet.backends import Catalog
    from hainet.config import load_settings

    model = Catalog(load_settings()).resolve("gemma-3-270m")
    parent = parse_spec(
        {
            "name": "sentiment",
            "purpose": "Classify the sentiment of a short review as positive or negative.",
            "workflow": [
                {
                    "id": "answer",
                    "kind": "generate",
                    "template": "Review: {input}\nSentiment:",
                    "max_tokens": 6,
                    "stop": ["\n"],
                    "output": "answer",
                }
            ],
            "output": "answer",
        }
    )
    before = parent.model_dump()
    data = [TestCase(id=f"r{i}", input=x, target=y) for i, (x, y) in enumerate(REVIEWS)]
    train, val = data[:4], data[4:]
    events: list[str] = []
    async with open_runner(model) as run:
        # Zero-shot, the base model rates ("5/5"); examples in the prompt's own format
        # teach it the labels.
        fewshot = Evolver(run, operators={"few_shot": 1.0})
        child = await fewshot.evolve(
            parent, trainset=train, valset=val, budget=Budget(candidates=1)
        )
        assert child is not parent and child.lineage == [parent.id]
        # Every operator that needs no second model, the proposer model included.
        evolver = Evolver(
            run,
            operators={"rewrite_prompt": 2.0, "parser": 1.0, "params": 1.0},
            seed=1,
            on_event=lambda e, d: events.append(e),
        )
        result = await evolver.evolve(
            parent, trainset=train, valset=val, budget=Budget(candidates=2, max_seconds=20)
        )
    assert parent.model_dump() == before
    result.verify()
    assert result is parent or result.lineage == [parent.id]
    assert events[-1] == "done"
