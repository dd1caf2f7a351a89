"""Fixtures for agent tests: a sandbox shared by the session, a small arithmetic spec."""

from __future__ import annotations

import os
from typing import Any

import pytest

from hainet.agents.spec import AgentSpec, parse_spec
from hainet.sandbox import Sandbox


@pytest.fixture(scope="session")
def agent_sandbox() -> Sandbox:
    if os.geteuid() != 0:
        pytest.skip("the sandbox needs root")
    box = Sandbox()
    box.self_check()
    return box


EXPRESSION_SCHEMA = {
    "type": "object",
    "properties": {"expression": {"type": "string", "pattern": "^[0-9+*/() -]+$"}},
    "required": ["expression"],
}


def arithmetic_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "word-arithmetic",
        "purpose": "Solve arithmetic word problems with a calculator.",
        "capabilities": ["reasoning", "tool_use"],
        "workflow": [
            {
                "id": "extract",
                "kind": "generate",
                "template": "{examples}Problem: {input}\nExpression:",
                "examples": [
                    {"input": "Ann has 3 pens and buys 4 more.", "output": '{"expression": "3+4"}'},
                    {
                        "input": "A box holds 6 eggs. How many eggs in 5 boxes?",
                        "output": '{"expression": "6*5"}',
                    },
                ],
                "example_template": "Problem: {input}\nExpression: {output}\n\n",
                "json_schema": EXPRESSION_SCHEMA,
                "max_tokens": 24,
                "parser": "json",
                "output": "call",
            },
            {
                "id": "compute",
                "kind": "tool",
                "tool": "calculator",
                "args": {"expression": "{call.expression}"},
                "output": "answer",
            },
        ],
        "output": "answer",
        "tools": [{"name": "calculator", "builtin": "calculator"}],
        "tests": [
            {
                "id": "add",
                "input": "Tom has 2 apples and gets 5 more.",
                "target": 7,
                "scorer": "numeric",
            },
            {
                "id": "mul",
                "input": "Each bag has 3 balls. How many balls in 4 bags?",
                "target": 12,
                "scorer": "numeric",
            },
        ],
    }
    data.update(changes)
    return data


@pytest.fixture
def arithmetic_spec() -> AgentSpec:
    return parse_spec(arithmetic_data())
