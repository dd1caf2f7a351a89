"""The workflow runner: model steps, parsers, votes, tools and code in the sandbox."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from hainet.agents.spec import AgentSpec, GenerateStep, parse_spec
from hainet.agents.testing import test_agent
from hainet.agents.workflow import AgentRunner, StepFailed, open_runner, parse_output, render
from hainet.backends import Catalog
from hainet.backends.mock import MockBackend
from hainet.config import load_settings
from hainet.errors import BackendError
from hainet.sandbox import Sandbox
from hainet.types import Completion, Request, Timing
from tests.agents.conftest import arithmetic_data

Responder = Any


def _runner(fn: Responder, sandbox: Sandbox | None = None) -> AgentRunner:
    return AgentRunner(MockBackend.from_function(fn), sandbox=sandbox)


def _one_step(**step: Any) -> AgentSpec:
    base = {"id": "ask", "kind": "generate", "template": "Q: {input}\nA:", "output": "answer"}
    return parse_spec(
        {"name": "one", "purpose": "p", "workflow": [{**base, **step}], "output": "answer"}
    )


def test_render_fills_known_variables_and_leaves_json_alone() -> None:
    text = render('{"a": 1} {input} {call.x} {missing}', {"input": "hi", "call": {"x": [1, 2]}})
    assert text == '{"a": 1} hi [1,2] {missing}'
    with pytest.raises(StepFailed, match="no field 'y'"):
        render("{call.y}", {"call": {"x": 1}})


@pytest.mark.parametrize(
    ("parser", "extra", "text", "value"),
    [
        ("text", {}, "  hello \n", "hello"),
        ("first_line", {}, "\n first \nsecond", "first"),
        ("number", {}, "The answer is 1,234.5 units", 1234.5),
        ("number", {}, "= 12.0", 12),
        ("integer", {}, "about 7.9", 7),
        ("json", {}, 'Sure: {"a": [1]} done', {"a": [1]}),
        ("regex", {"pattern": r"is (\w+)"}, "it is blue", "blue"),
        ("choice", {"choices": ["positive", "negative"]}, "Negative, clearly", "negative"),
    ],
)
def test_parsers(parser: str, extra: dict[str, Any], text: str, value: Any) -> None:
    step = GenerateStep(id="s", template="x", output="o", parser=parser, **extra)  # type: ignore[arg-type]
    assert parse_output(step, text) == value


def test_parser_failure_ends_the_run_with_its_kind() -> None:
    spec = _one_step(parser="number")
    run = asyncio.run(_runner(lambda r: "no digits here").run(spec, "x"))
    assert not run.ok and run.error_kind == "parse" and "no number" in (run.error or "")
    assert run.output is None and run.steps[-1].raw == "no digits here"


def test_steps_record_time_tokens_and_memory(
    arithmetic_spec: AgentSpec, agent_sandbox: Sandbox
) -> None:
    def respond(request: Request) -> Completion:
        return Completion(
            '{"expression": "2+5"}', Timing(wall_s=0.01), prompt_tokens=40, completion_tokens=9
        )

    run = asyncio.run(_runner(respond, agent_sandbox).run(arithmetic_spec, "Tom has 2 and gets 5."))
    assert run.ok and run.output == 7 and run.text == "7"
    assert [s.step for s in run.steps] == ["extract", "compute"]
    assert run.steps[0].prompt_tokens == 40 and run.completion_tokens == 9
    assert all(s.wall_s >= 0 and s.rss_mb and s.rss_mb > 10 for s in run.steps)
    assert run.steps[0].output == {"expression": "2+5"}
    assert run.peak_rss_mb is not None and run.peak_rss_mb >= max(s.rss_mb or 0 for s in run.steps)


def test_few_shot_examples_and_input_fields_reach_the_prompt(arithmetic_spec: AgentSpec) -> None:
    seen: list[str] = []

    def respond(request: Request) -> str:
        seen.append(request.prompt or "")
        return "fine"

    spec = arithmetic_spec.derive(
        workflow=[
            {
                **arithmetic_spec.workflow[0].model_dump(),
                "json_schema": None,
                "parser": "text",
                "template": "{examples}Problem: {input.text} ({input.unit})\nExpression:",
            }
        ],
        output="call",
        tools=[],
    )
    asyncio.run(_runner(respond).run(spec, {"text": "two plus two", "unit": "apples"}))
    assert seen[0].startswith(
        'Problem: Ann has 3 pens and buys 4 more.\nExpression: {"expression": "3+4"}\n\n'
    )
    assert seen[0].endswith("Problem: two plus two (apples)\nExpression:")


def test_samples_vote_and_use_different_seeds() -> None:
    seeds: list[int] = []

    def respond(request: Request) -> str:
        seeds.append(request.params.seed)
        return ["4", "5", "5", "4", "5"][len(seeds) - 1]

    spec = _one_step(parser="number", samples=5, temperature=0.7)
    run = asyncio.run(_runner(respond).run(spec, "x", seed=10))
    assert run.output == 5 and seeds == [10, 11, 12, 13, 14]


def test_context_overflow_and_missing_schema_support_are_classified() -> None:
    def overflow(request: Request) -> str:
        raise BackendError("gemma: Requested tokens (3000) exceed context window of 2048")

    run = asyncio.run(_runner(overflow).run(_one_step(), "x"))
    assert run.error_kind == "context_overflow"

    def numpy_overflow(request: Request) -> str:
        raise BackendError("m: could not broadcast input array from shape (72,) into shape (0,)")

    run = asyncio.run(_runner(numpy_overflow).run(_one_step(), "x"))
    assert run.error_kind == "context_overflow"

    class NoSchema(MockBackend):
        supports_json_schema = False

    spec = _one_step(json_schema={"type": "object"}, parser="json")
    run = asyncio.run(AgentRunner(NoSchema.scripted(["{}"])).run(spec, "x"))
    assert run.error_kind == "no_tool_support" and "JSON Schema" in (run.error or "")


def test_calculator_rejects_code_inside_the_sandbox(
    arithmetic_spec: AgentSpec, agent_sandbox: Sandbox
) -> None:
    run = asyncio.run(
        _runner(lambda r: "{\"expression\": \"__import__('os').system('id')\"}", agent_sandbox).run(
            arithmetic_spec, "x"
        )
    )
    assert run.error_kind == "tool" and "only numbers" in (run.error or "")


CRASH = "def run(value):\n    raise RuntimeError('boom ' + str(value))\n"
LOOP = "def run(value):\n    while True:\n        pass\n"
ESCAPE = (
    "import os, socket\n"
    "def run(value):\n"
    "    open('/etc/hainet-escape', 'w').write('x')\n"
    "    return 'escaped'\n"
)
NETWORK = (
    "import socket\n"
    "def run(value):\n"
    "    socket.create_connection(('127.0.0.1', 22), timeout=1)\n"
    "    return 'connected'\n"
)


def _code_agent(code: str, target: str = "ok") -> AgentSpec:
    return parse_spec(
        {
            "name": "coder",
            "purpose": "p",
            "code": code,
            "workflow": [{"id": "c", "kind": "code", "output": "out"}],
            "output": "out",
            "tests": [{"id": "t", "input": "v", "target": target, "scorer": "exact"}],
        }
    )


@pytest.mark.parametrize(
    ("code", "kind", "words"),
    [
        (CRASH, "code", "RuntimeError: boom v"),
        (LOOP, "sandbox_limit", "timeout"),
        (ESCAPE, "code", "FileNotFoundError|Read-only file system"),
        (NETWORK, "code", "Address family not supported|PermissionError"),
    ],
)
def test_agent_code_that_crashes_loops_or_escapes_is_contained_and_scores_zero(
    code: str, kind: str, words: str, agent_sandbox: Sandbox
) -> None:
    from pathlib import Path

    from hainet.sandbox import Limits

    runner = AgentRunner(
        MockBackend.scripted([]), sandbox=agent_sandbox, limits=Limits(timeout=2.0)
    )
    report = asyncio.run(test_agent(_code_agent(code), runner))
    (outcome,) = report.outcomes
    assert outcome.score == 0.0 and outcome.error_kind == kind, outcome
    assert re.search(words, outcome.error or ""), outcome.error
    assert not Path("/etc/hainet-escape").exists()


def test_good_code_runs_and_passes(agent_sandbox: Sandbox) -> None:
    runner = AgentRunner(MockBackend.scripted([]), sandbox=agent_sandbox)
    report = asyncio.run(test_agent(_code_agent("def run(v):\n    return 'ok'\n"), runner))
    assert report.success_rate == 1.0 and report.passed == report.total == 1


def test_validate_step_fails_the_run() -> None:
    spec = parse_spec(
        {
            "name": "v",
            "purpose": "p",
            "workflow": [
                {
                    "id": "ask",
                    "kind": "generate",
                    "template": "{input}",
                    "parser": "json",
                    "output": "obj",
                },
                {
                    "id": "check",
                    "kind": "validate",
                    "value": "{obj}",
                    "json_schema": {"type": "object", "required": ["age"]},
                },
            ],
            "output": "obj",
        }
    )
    bad = asyncio.run(_runner(lambda r: '{"name": "x"}').run(spec, "x"))
    assert bad.error_kind == "validate" and "'age' is a required property" in (bad.error or "")
    good = asyncio.run(_runner(lambda r: '{"age": 3}').run(spec, "x"))
    assert good.ok and good.output == {"age": 3}


def test_report_counts_gate_and_holdout_separately(agent_sandbox: Sandbox) -> None:
    data = arithmetic_data()
    data["tests"].append(
        {
            "id": "held",
            "input": "Nine minus four.",
            "target": 5,
            "scorer": "numeric",
            "holdout": True,
        }
    )
    spec = parse_spec(data)
    answers = {"Tom": "2+5", "bag": "3*5", "Nine": "9-4"}

    def respond(request: Request) -> str:
        last = (request.prompt or "").rsplit("Problem:", 1)[1]
        expression = next(v for k, v in answers.items() if k in last)
        return json.dumps({"expression": expression})

    report = asyncio.run(test_agent(spec, _runner(respond, agent_sandbox), seeds=(0, 1)))
    assert report.total == 4 and report.passed == 2 and report.success_rate == 0.5
    assert report.holdout_rate == 1.0
    assert report.by_case()["mul"] == [0.0, 0.0]
    again = type(report).model_validate(report.model_dump())
    assert again.success_rate == report.success_rate and again.outcomes == report.outcomes


@pytest.mark.model
def test_real_model_runs_the_arithmetic_agent(
    arithmetic_spec: AgentSpec, agent_sandbox: Sandbox
) -> None:
    async def go() -> tuple[Any, Any]:
        model = Catalog(load_settings()).resolve("gemma-3-270m")
        async with open_runner(model, sandbox=agent_sandbox) as runner:
            first = await runner.run(arithmetic_spec, "Tom has 2 apples and gets 5 more.")
            report = await test_agent(arithmetic_spec, runner)
            again = await runner.run(arithmetic_spec, "Tom has 2 apples and gets 5 more.")
        return first, report, again

    first, report, again = asyncio.run(go())
    # The grammar makes the extraction valid JSON whatever the model's skill.
    assert first.steps[0].error is None and isinstance(first.steps[0].output, dict)
    assert first.steps[0].completion_tokens > 0 and first.steps[0].prompt_tokens > 20
    assert first.output == again.output  # temperature 0: same input, same answer
    assert report.total == 2 and 0.0 <= report.success_rate <= 1.0
    assert report.model == "gemma-3-270m"


def test_tool_arguments_are_checked_against_the_tools_schema(arithmetic_spec: AgentSpec) -> None:
    # No sandbox given: the check happens before anything would run there.
    run = asyncio.run(
        _runner(lambda r: '{"expression": "2+5"}').run(
            arithmetic_spec.derive(
                workflow=[
                    arithmetic_spec.workflow[0].model_dump(),
                    {
                        "id": "compute",
                        "kind": "tool",
                        "tool": "calculator",
                        "args": {"expr": "{call.expression}"},
                        "output": "answer",
                    },
                ]
            ),
            "x",
        )
    )
    assert run.error_kind == "tool"
    assert "calculator" in (run.error or "") and "expression" in (run.error or "")
