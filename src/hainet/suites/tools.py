"""The ``tool_call`` scorer: did the model call the right function with the right arguments?

A case lists its tools in the OpenAI format (``case.tools``) and the expected call in
``target``::

    "target": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}

or ``"target": null`` when the right answer is to call no tool at all.

Where the call is read from, first match wins:

1. native tool calls (``completion.tool_calls``, backends with ``supports_tools``);
2. the first JSON value in the text that holds a call, in any of the shapes models
   write: ``{"name": ..., "arguments": {...}}``, ``{"tool": ..., "args": {...}}``,
   ``{"function": {"name": ..., "arguments": "..."}}`` (OpenAI, arguments as a JSON
   string), ``{"tool_calls": [...]}`` or a list of calls.  Text without such JSON
   means no call, and so does ``{"name": null}`` or a call named ``none`` (what a
   grammar-constrained answer writes when no tool fits).

Score:

* ``1.0``: the expected function with matching arguments, or no call when none was
  expected;
* ``0.5``: the expected function with a wrong, missing or invented argument (partial
  credit: the model chose the right tool);
* ``0.0``: no call when one was expected, another function, or a call when none was
  expected.

``details`` keeps the expected and the parsed calls, where they came from, and a
verdict per argument.

How arguments are compared (case ``options``):

* ``match``: ``{argument: mode}``; modes ``"exact"`` (strings equal after trimming),
  ``"ci"`` (the default for strings: case and runs of whitespace ignored), ``"loose"``
  (also punctuation, accents and articles ignored), ``"contains"`` (the expected text
  appears in the given one, case ignored), ``"math"`` (both are arithmetic
  expressions with the same value: ``17*23`` matches ``23 * 17``), ``"unordered"``
  (lists compared as multisets), ``"any"`` (present, any value);
* ``tolerance``: ``{argument: absolute tolerance}`` for numbers (default: equal up
  to 1e-9); a number given as a numeric string counts;
* ``optional``: arguments of the target that may be left out (compared if given);
* ``strict``: also fail on extra arguments the target does not name (default: extra
  arguments are fine when the tool defines them; invented ones always fail).
"""

from __future__ import annotations

import ast
import json
import math
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from hainet.errors import SuiteError
from hainet.suites.base import Case
from hainet.suites.scorers import Score, ScoringContext, normalize
from hainet.types import Completion

__all__ = ["ParsedCall", "ToolCallScorer", "parse_calls", "tool_names"]

MODES = ("exact", "ci", "loose", "contains", "math", "unordered", "any")
NO_CALL_NAMES = {"none", "null", ""}
PARTIAL_CREDIT = 0.5
# Key under which arguments that are not a JSON object are kept (they never match).
UNREADABLE = "<unreadable arguments>"


@dataclass(frozen=True, slots=True)
class ParsedCall:
    name: str
    arguments: dict[str, Any]


# -- reading calls from an answer -------------------------------------------------

_NAME_KEYS = ("name", "tool", "function", "tool_name")
_ARG_KEYS = ("arguments", "args", "parameters", "input")


def _json_values(text: str) -> Iterator[Any]:
    """Every JSON object or array in ``text``, left to right.  (A bare ``null`` is not
    looked for: it reads as "no call" just like text without JSON, and "null" inside
    prose must not hide a call written after it.)"""
    decoder = json.JSONDecoder()
    i = 0
    while i < len(text):
        if text[i] in "{[":
            try:
                value, end = decoder.raw_decode(text, i)
            except json.JSONDecodeError:
                i += 1
                continue
            yield value
            i = end
        else:
            i += 1


def _arguments(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return {}
    if isinstance(raw, str):  # OpenAI sends arguments as a JSON string
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError:
            return None
    return raw if isinstance(raw, dict) else None


def _is_schema(raw: Any) -> bool:
    """Base models often copy the tool list from the prompt; its ``parameters`` are a
    JSON Schema, which must not pass for arguments (and earn partial credit)."""
    return isinstance(raw, dict) and raw.get("type") == "object" and "properties" in raw


def _calls_in(value: Any) -> list[ParsedCall] | None:
    """Calls held by one JSON value: a list (maybe empty: an explicit "no call"), or
    None when the value is not shaped like a call at all."""
    if value is None:
        return []
    if isinstance(value, list):
        calls: list[ParsedCall] = []
        found = False
        for item in value:
            inner = _calls_in(item) if item is not None else None
            if inner is not None:
                found = True
                calls.extend(inner)
        return calls if found else None
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("tool_calls"), list):
        return _calls_in(value["tool_calls"]) or []
    function = value.get("function")
    if isinstance(function, dict):
        return _calls_in(function)
    for key in _NAME_KEYS:
        name = value.get(key)
        if name is None and key in value:
            return []  # {"name": null}: an explicit "no call"
        if isinstance(name, str):
            if name.strip().lower() in NO_CALL_NAMES:
                return []
            raw = next((value[k] for k in _ARG_KEYS if k in value), None)
            if _is_schema(raw):
                return None  # the tool's definition echoed back, not a call
            args = _arguments(raw)
            # Arguments that are not an object: still a call, with unreadable arguments.
            return [ParsedCall(name.strip(), args if args is not None else {UNREADABLE: raw})]
    return None


def parse_calls(completion: Completion) -> tuple[list[ParsedCall], str]:
    """The calls in ``completion`` and where they came from: ``native``, ``text`` or
    ``none`` (no call found anywhere)."""
    if completion.tool_calls:
        return [ParsedCall(t.name, dict(t.arguments)) for t in completion.tool_calls], "native"
    for value in _json_values(completion.text):
        calls = _calls_in(value)
        if calls is not None:
            return calls, "text"
    return [], "none"


# -- comparing arguments ----------------------------------------------------------

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}


def evaluate_arithmetic(expression: str) -> float | None:
    """The value of a plain arithmetic expression, or None if it is anything else.

    The text comes from a model, so only numbers and + - * / // % ** are allowed, and
    powers are kept small: ``9**9**9`` must not hang the scorer."""
    if len(expression) > 200:
        return None
    text = expression.replace("×", "*").replace("÷", "/").replace("^", "**").replace(",", "")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return None

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, (int, float))
            and not isinstance(node.value, bool)
        ):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > 1e6):
                raise ValueError("power too large")
            return float(_BINARY[type(node.op)](left, right))
        raise ValueError("not arithmetic")

    try:
        result = walk(tree)
    except (ValueError, ZeroDivisionError, OverflowError, TypeError):
        return None
    return result if math.isfinite(result) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().replace(",", ""))
        except ValueError:
            return None
    return None


def _same(expected: Any, got: Any, mode: str | None, tolerance: float) -> bool:
    if mode == "any":
        return True
    if mode == "math":
        want, have = evaluate_arithmetic(str(expected)), evaluate_arithmetic(str(got))
        return want is not None and have is not None and math.isclose(want, have, abs_tol=1e-9)
    if isinstance(expected, bool) or expected is None:
        return got is expected
    if isinstance(expected, (int, float)):
        number = _number(got)
        return number is not None and math.isclose(
            number, float(expected), rel_tol=1e-9, abs_tol=tolerance
        )
    if isinstance(expected, str):
        if not isinstance(got, str):
            return False
        if mode == "exact":
            return got.strip() == expected.strip()
        if mode == "loose":
            return normalize(got) == normalize(expected)
        if mode == "contains":
            return " ".join(expected.lower().split()) in " ".join(got.lower().split())
        return " ".join(got.lower().split()) == " ".join(expected.lower().split())
    if isinstance(expected, list):
        if not isinstance(got, list) or len(got) != len(expected):
            return False
        if mode == "unordered":
            left = list(got)
            for item in expected:
                hit = next((g for g in left if _same(item, g, None, tolerance)), _MISSING)
                if hit is _MISSING:
                    return False
                left.remove(hit)
            return True
        return all(_same(e, g, mode, tolerance) for e, g in zip(expected, got, strict=True))
    if isinstance(expected, dict):
        return (
            isinstance(got, dict)
            and set(got) == set(expected)
            and all(_same(v, got[k], mode, tolerance) for k, v in expected.items())
        )
    return bool(expected == got)


_MISSING = object()


# -- checking a case --------------------------------------------------------------


def tool_names(case: Case) -> dict[str, dict[str, Any]]:
    """The case's tools by name (their ``parameters`` schema), checked for shape."""
    if not case.tools:
        raise SuiteError(f"case {case.id}: the tool_call scorer needs 'tools'")
    out: dict[str, dict[str, Any]] = {}
    for i, tool in enumerate(case.tools):
        function = tool.get("function") if tool.get("type") == "function" else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name:
            raise SuiteError(
                f"case {case.id}: tools[{i}] is not an OpenAI function tool"
                ' ({"type": "function", "function": {"name": ..., "parameters": {...}}})'
            )
        assert isinstance(function, dict)
        params = function.get("parameters", {})
        if not isinstance(params, dict):
            raise SuiteError(f"case {case.id}: tool {name!r}: parameters must be an object")
        out[name] = params
    return out


@dataclass(frozen=True)
class _Expectation:
    name: str | None
    arguments: dict[str, Any]
    modes: dict[str, str]
    tolerance: dict[str, float]
    optional: frozenset[str]
    strict: bool


def _expectation(case: Case, tools: dict[str, dict[str, Any]]) -> _Expectation:
    def bad(msg: str) -> SuiteError:
        return SuiteError(f"case {case.id}: {msg}")

    target = case.target
    if target is None:
        return _Expectation(None, {}, {}, {}, frozenset(), False)
    if not isinstance(target, dict) or not isinstance(target.get("name"), str):
        raise bad(f'target must be null or {{"name": ..., "arguments": {{...}}}}, got {target!r}')
    extra = set(target) - {"name", "arguments"}
    if extra:
        raise bad(f"target has unknown keys {sorted(extra)}")
    name = target["name"]
    if name not in tools:
        raise bad(f"target names {name!r}, which is not one of its tools {sorted(tools)}")
    arguments = target.get("arguments", {})
    if not isinstance(arguments, dict):
        raise bad(f"target arguments must be an object, got {arguments!r}")
    opts = case.options
    unknown = set(opts) - {"match", "tolerance", "optional", "strict"}
    if unknown:
        raise bad(f"unknown tool_call options {sorted(unknown)}")
    modes = opts.get("match", {})
    if not isinstance(modes, dict) or any(m not in MODES for m in modes.values()):
        raise bad(f"options.match must map arguments to one of {MODES}, got {modes!r}")
    tolerance = opts.get("tolerance", {})
    if not isinstance(tolerance, dict) or any(
        isinstance(t, bool) or not isinstance(t, (int, float)) or t < 0 for t in tolerance.values()
    ):
        raise bad(f"options.tolerance must map arguments to numbers >= 0, got {tolerance!r}")
    optional = opts.get("optional", [])
    if not isinstance(optional, list) or not all(isinstance(o, str) for o in optional):
        raise bad(f"options.optional must be a list of argument names, got {optional!r}")
    strict = opts.get("strict", False)
    if not isinstance(strict, bool):
        raise bad(f"options.strict must be true or false, got {strict!r}")
    named = {*modes, *tolerance, *optional}
    stray = sorted(named - set(arguments))
    if stray:
        raise bad(f"options name arguments the target does not have: {stray}")
    return _Expectation(
        name,
        arguments,
        dict(modes),
        {k: float(v) for k, v in tolerance.items()},
        frozenset(optional),
        strict,
    )


def _argument_verdicts(
    want: _Expectation, params: dict[str, Any], got: dict[str, Any]
) -> dict[str, str]:
    defined = set(params.get("properties", {}))
    verdicts: dict[str, str] = {}
    for arg, expected in want.arguments.items():
        if arg not in got:
            verdicts[arg] = "ok (optional, left out)" if arg in want.optional else "missing"
        elif _same(expected, got[arg], want.modes.get(arg), want.tolerance.get(arg, 1e-9)):
            verdicts[arg] = "ok"
        else:
            verdicts[arg] = f"wrong: got {got[arg]!r}, expected {expected!r}"
    for arg in got:
        if arg in want.arguments:
            continue
        if arg not in defined:
            verdicts[arg] = "invented: the tool has no such argument"
        elif want.strict:
            verdicts[arg] = "unexpected (strict)"
        else:
            verdicts[arg] = "ok (extra, defined by the tool)"
    return verdicts


class ToolCallScorer:
    """Right function with the right arguments, from native calls or JSON text."""

    name = "tool_call"

    def __init__(self, ctx: ScoringContext | None = None) -> None:
        self.ctx = ctx

    def score(self, case: Case, completion: Completion) -> Score:
        tools = tool_names(case)
        want = _expectation(case, tools)
        calls, source = parse_calls(completion)
        details: dict[str, Any] = {
            "expected": case.target,
            "calls": [{"name": c.name, "arguments": c.arguments} for c in calls],
            "source": source,
        }
        if want.name is None:
            if not calls:
                return Score(1.0, "no tool call, as expected", details)
            return Score(0.0, f"called {calls[0].name!r} when no tool call was expected", details)
        if not calls:
            return Score(0.0, f"no tool call; expected {want.name!r}", details)
        call = next((c for c in calls if c.name == want.name), None)
        if call is None:
            return Score(0.0, f"called {calls[0].name!r}, expected {want.name!r}", details)
        verdicts = _argument_verdicts(want, tools[want.name], call.arguments)
        details["arguments"] = verdicts
        bad = {k: v for k, v in verdicts.items() if not v.startswith("ok")}
        extra = "" if len(calls) == 1 else f" (and {len(calls) - 1} other call(s), ignored)"
        if not bad:
            return Score(1.0, f"called {want.name!r} with the right arguments{extra}", details)
        details["credit"] = "right function, wrong arguments"
        problems = "; ".join(f"{k}: {v}" for k, v in bad.items())
        return Score(PARTIAL_CREDIT, f"called {want.name!r} but {problems}{extra}", details)
