"""Built-in tools, run the way agents run them: through AgentRunner, in the sandbox."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import jsonschema
import pytest

from hainet.agents.builtin_tools import BUILTIN_TOOLS, UNITS, builtin_tool
from hainet.agents.spec import AgentSpec, parse_spec
from hainet.agents.workflow import AgentRun, AgentRunner
from hainet.backends.mock import MockBackend
from hainet.errors import ValidationError
from hainet.sandbox import Sandbox


def _tool_spec(tool: str) -> AgentSpec:
    """The model's JSON answer is passed whole as the tool's keyword arguments."""
    props = BUILTIN_TOOLS[tool].parameters["properties"]
    return parse_spec(
        {
            "name": f"use-{tool.replace('_', '-')}",
            "purpose": f"Call {tool}.",
            "workflow": [
                {
                    "id": "ask",
                    "kind": "generate",
                    "template": "{input}",
                    "parser": "json",
                    "output": "call",
                },
                {
                    "id": "use",
                    "kind": "tool",
                    "tool": tool,
                    "args": {p: f"{{call.{p}}}" for p in props},
                    "output": "answer",
                },
            ],
            "output": "answer",
            "tools": [{"name": tool, "builtin": tool}],
        }
    )


def _run_many(tool: str, calls: list[dict[str, Any]], sandbox: Sandbox) -> list[AgentRun]:
    spec = _tool_spec(tool)
    runner = AgentRunner(MockBackend.scripted([json.dumps(c) for c in calls]), sandbox=sandbox)

    async def go() -> list[AgentRun]:
        return [await runner.run(spec, str(i)) for i in range(len(calls))]

    return asyncio.run(go())


def test_every_builtin_declares_a_valid_schema_and_loads() -> None:
    for name, tool in BUILTIN_TOOLS.items():
        assert tool.name == name and tool.description
        jsonschema.Draft202012Validator.check_schema(tool.parameters)
        ns: dict[str, Any] = {}
        exec(compile(tool.source, f"<{name}>", "exec"), ns)  # noqa: S102 - our own source
        assert callable(ns[name])
        for example in tool.examples:
            jsonschema.validate(example["args"], tool.parameters)
            assert ns[name](**example["args"]) == example["result"]
    with pytest.raises(ValidationError, match="unknown built-in tool 'nope'"):
        builtin_tool("nope")


def test_calculator_in_the_sandbox(agent_sandbox: Sandbox) -> None:
    cases: list[tuple[str, Any]] = [
        ("2 + 3 * 4", 14),
        ("(7 - 2) / 2", 2.5),
        ("12 x 3", 36),
        ("1,200 / 4", 300),
        ("2 ** 10", 1024),
        ("0.1 + 0.2", 0.3),
        ("3 + 4 =", 7),
        ("-5 // 2", -3),
    ]
    runs = _run_many("calculator", [{"expression": e} for e, _ in cases], agent_sandbox)
    for (expr, want), run in zip(cases, runs, strict=True):
        assert run.ok, (expr, run.error)
        assert run.output == want, expr


def test_calculator_gives_clean_errors(agent_sandbox: Sandbox) -> None:
    cases = [
        ("__import__('os').system('id')", "only numbers"),
        ("open('/etc/passwd').read()", "only numbers"),
        ("9 ** 999", "exponent too large"),
        ("(9 ** 99) ** 99", "result too large"),
        ("1 / 0", "division by zero"),
        ("2 +", "not an arithmetic expression"),
        ("1+" * 300 + "1", "longer than 500"),
        ("", "empty expression"),
    ]
    runs = _run_many("calculator", [{"expression": e} for e, _ in cases], agent_sandbox)
    for (expr, words), run in zip(cases, runs, strict=True):
        assert not run.ok and run.error_kind == "tool", expr[:40]
        assert words in (run.error or ""), (expr[:40], run.error)


def test_unit_convert_in_the_sandbox(agent_sandbox: Sandbox) -> None:
    cases: list[tuple[float | str, str, str, float]] = [
        (5, "km", "m", 5000),
        (3, "kilograms", "grams", 3000),
        (100, "degrees Celsius", "Fahrenheit", 212),
        (32, "°F", "°C", 0),
        (0, "C", "K", 273.15),
        (2, "hours", "minutes", 120),
        (1, "gallon", "liters", 3.785411784),
        (10, "inches", "cm", 25.4),
        (1, "mile", "feet", 5280),
        (2.5, "lb", "kg", 1.133980925),
        (90, "min", "h", 1.5),
        ("1,500", "ml", "l", 1.5),
    ]
    calls = [{"value": v, "from_unit": a, "to_unit": b} for v, a, b, _ in cases]
    runs = _run_many("unit_convert", calls, agent_sandbox)
    for (v, a, b, want), run in zip(cases, runs, strict=True):
        assert run.ok, (v, a, b, run.error)
        assert run.output == pytest.approx(want, rel=1e-9), (v, a, b)


def test_unit_convert_errors_name_the_problem(agent_sandbox: Sandbox) -> None:
    cases: list[tuple[Any, str, str, str]] = [
        (1, "km", "kg", "cannot convert km (length) to kg (mass)"),
        (1, "parsec", "m", "unknown unit 'parsec'"),
        (1, "C", "s", "cannot convert c (temperature) to s (time)"),
        ("many", "m", "km", "value 'many' is not a number"),
    ]
    calls = [{"value": v, "from_unit": a, "to_unit": b} for v, a, b, _ in cases]
    runs = _run_many("unit_convert", calls, agent_sandbox)
    for (_, _, _, words), run in zip(cases, runs, strict=True):
        assert not run.ok and run.error_kind == "tool"
        assert words in (run.error or ""), run.error


def test_unit_convert_schema_units_are_all_known() -> None:
    ns: dict[str, Any] = {}
    exec(compile(BUILTIN_TOOLS["unit_convert"].source, "<unit_convert>", "exec"), ns)  # noqa: S102
    assert sorted(UNITS) == sorted(ns["_UNITS"])
    # Every alias points at a real unit, so no name is accepted and then lost.
    assert set(ns["_ALIASES"].values()) <= set(ns["_UNITS"])
    for unit in UNITS:
        assert ns["unit_convert"](1, unit, unit) == pytest.approx(1)
