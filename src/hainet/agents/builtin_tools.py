"""Built-in tools an agent may name instead of bringing its own source.

A tool is Python source defining a function of the tool's name; it runs in the
sandbox like any user's tool (``AgentRunner`` calls it there), so a built-in gets no
privilege a user's tool would not have.  Each declares the JSON Schema of its
arguments, which agent creation and evolution use to wire it to a model's output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hainet.errors import ValidationError

__all__ = ["BUILTIN_TOOLS", "BuiltinTool", "builtin_tool"]


@dataclass(frozen=True, slots=True)
class BuiltinTool:
    name: str
    description: str
    parameters: dict[str, Any]
    source: str
    returns: str = "any"
    examples: list[dict[str, Any]] = field(default_factory=list)


_CALCULATOR = """
import ast
import operator

_OPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos,
}


def _eval(node):
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 100:
            raise ValueError("exponent too large")
        return _OPS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.operand))
    raise ValueError("only numbers and + - * / // % ** ( ) are allowed")


def calculator(expression):
    text = str(expression).replace("x", "*").replace("\\u00d7", "*").replace(",", "")
    value = _eval(ast.parse(text.strip(), mode="eval"))
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return round(value, 10) if isinstance(value, float) else value
"""

BUILTIN_TOOLS: dict[str, BuiltinTool] = {
    "calculator": BuiltinTool(
        name="calculator",
        description="Evaluate an arithmetic expression (numbers, + - * / // % ** and brackets).",
        parameters={
            "type": "object",
            "properties": {"expression": {"type": "string", "pattern": "^[0-9+*/%(). x-]+$"}},
            "required": ["expression"],
            "additionalProperties": False,
        },
        source=_CALCULATOR,
        returns="number",
    ),
}


def builtin_tool(name: str) -> BuiltinTool:
    try:
        return BUILTIN_TOOLS[name]
    except KeyError:
        known = ", ".join(sorted(BUILTIN_TOOLS))
        raise ValidationError(f"unknown built-in tool {name!r}; known: {known}") from None
