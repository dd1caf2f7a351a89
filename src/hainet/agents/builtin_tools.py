"""Built-in tools an agent may name instead of bringing its own source.

A tool is Python source defining a function of the tool's name; it runs in the
sandbox like any user's tool (``AgentRunner`` calls it there), so a built-in gets no
privilege a user's tool would not have.  Each declares the JSON Schema of its
arguments, which agent creation and evolution use to wire it to a model's output.

Tools are found by name in :mod:`hainet.registry` (entry-point group
``hainet.tools``): hainet's two are declared there like a plugin's, and a plugin's
tool is named by a spec (``builtin: NAME``) the same way and runs in the same
sandbox.  :data:`BUILTIN_TOOLS` holds hainet's own, which agent creation and the
``add_tool`` operator choose from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hainet.errors import ValidationError
from hainet.registry import Registry

__all__ = ["BUILTIN_TOOLS", "TOOLS", "UNITS", "BuiltinTool", "builtin_tool", "tool_names"]


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
import math
import operator

_OPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos,
}
# Bounds that keep a hostile expression from eating the sandbox's CPU or memory
# before its limits kill it: a clean error is more useful to an agent than a kill.
_MAX_LEN = 500
_MAX_POW_BITS = 4096


def _pow(left, right):
    if abs(right) > 100:
        raise ValueError("exponent too large (at most 100)")
    if abs(left) > 1 and abs(right) * math.log2(abs(left)) > _MAX_POW_BITS:
        raise ValueError("result too large")
    return left ** right


def _eval(node):
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            return _pow(left, right)
        try:
            return _OPS[type(node.op)](left, right)
        except ZeroDivisionError:
            raise ValueError("division by zero") from None
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.operand))
    raise ValueError("only numbers and + - * / // % ** ( ) are allowed")


def calculator(expression):
    text = str(expression).replace("x", "*").replace("\\u00d7", "*").replace(",", "")
    text = text.replace("\\u00f7", "/").strip().rstrip("=").strip()
    if not text:
        raise ValueError("empty expression")
    if len(text) > _MAX_LEN:
        raise ValueError(f"expression longer than {_MAX_LEN} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, RecursionError, MemoryError):
        raise ValueError(f"not an arithmetic expression: {text[:80]!r}") from None
    value = _eval(tree)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("result is not finite")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return round(value, 10) if isinstance(value, float) else value
"""

_UNIT_CONVERT = """
# Each unit: (dimension, factor to the base unit, offset).  Base units: metre,
# gram, litre, second, kelvin.  value_in_base = value * factor + offset.
_UNITS = {
    "mm": ("length", 0.001, 0.0), "cm": ("length", 0.01, 0.0), "m": ("length", 1.0, 0.0),
    "km": ("length", 1000.0, 0.0), "in": ("length", 0.0254, 0.0),
    "ft": ("length", 0.3048, 0.0), "yd": ("length", 0.9144, 0.0),
    "mi": ("length", 1609.344, 0.0),
    "mg": ("mass", 0.001, 0.0), "g": ("mass", 1.0, 0.0), "kg": ("mass", 1000.0, 0.0),
    "t": ("mass", 1e6, 0.0), "oz": ("mass", 28.349523125, 0.0),
    "lb": ("mass", 453.59237, 0.0),
    "ml": ("volume", 0.001, 0.0), "cl": ("volume", 0.01, 0.0), "l": ("volume", 1.0, 0.0),
    "m3": ("volume", 1000.0, 0.0), "tsp": ("volume", 0.00492892159375, 0.0),
    "tbsp": ("volume", 0.01478676478125, 0.0), "floz": ("volume", 0.0295735295625, 0.0),
    "cup": ("volume", 0.2365882365, 0.0), "pt": ("volume", 0.473176473, 0.0),
    "qt": ("volume", 0.946352946, 0.0), "gal": ("volume", 3.785411784, 0.0),
    "ms": ("time", 0.001, 0.0), "s": ("time", 1.0, 0.0), "min": ("time", 60.0, 0.0),
    "h": ("time", 3600.0, 0.0), "day": ("time", 86400.0, 0.0),
    "week": ("time", 604800.0, 0.0), "year": ("time", 31536000.0, 0.0),
    "c": ("temperature", 1.0, 273.15), "f": ("temperature", 5.0 / 9.0, 459.67 * 5.0 / 9.0),
    "k": ("temperature", 1.0, 0.0),
}
# Names as people (and small models) write them; US customary volumes, 365-day year.
_ALIASES = {
    "millimeter": "mm", "millimetre": "mm", "centimeter": "cm", "centimetre": "cm",
    "meter": "m", "metre": "m", "kilometer": "km", "kilometre": "km", "inch": "in",
    "inches": "in", "foot": "ft", "feet": "ft", "yard": "yd", "mile": "mi",
    "milligram": "mg", "gram": "g", "kilogram": "kg", "kilo": "kg", "tonne": "t",
    "metric ton": "t", "ounce": "oz", "pound": "lb", "lbs": "lb",
    "milliliter": "ml", "millilitre": "ml", "centiliter": "cl", "centilitre": "cl",
    "liter": "l", "litre": "l", "cubic meter": "m3", "cubic metre": "m3",
    "teaspoon": "tsp", "tablespoon": "tbsp", "fluid ounce": "floz", "fl oz": "floz",
    "pint": "pt", "quart": "qt", "gallon": "gal",
    "millisecond": "ms", "second": "s", "sec": "s", "minute": "min", "hour": "h",
    "hr": "h", "d": "day", "wk": "week", "yr": "year",
    "celsius": "c", "degc": "c", "centigrade": "c", "fahrenheit": "f", "degf": "f",
    "kelvin": "k",
}


def _unit(name):
    key = " ".join(str(name).lower().replace("\\u00b0", "deg").replace(".", " ").split())
    key = key.removeprefix("degrees ").removeprefix("degree ").replace("deg ", "deg")
    for candidate in (key, key[:-1] if key.endswith("s") else None,
                      key[:-2] if key.endswith("es") else None):
        if candidate in _UNITS:
            return candidate
        if candidate in _ALIASES:
            return _ALIASES[candidate]
    known = ", ".join(sorted(_UNITS))
    raise ValueError(f"unknown unit {name!r}; known: {known} (and their names)")


def unit_convert(value, from_unit, to_unit):
    try:
        number = float(str(value).replace(",", "").strip())
    except ValueError:
        raise ValueError(f"value {value!r} is not a number") from None
    src, dst = _unit(from_unit), _unit(to_unit)
    (dim_a, fa, oa), (dim_b, fb, ob) = _UNITS[src], _UNITS[dst]
    if dim_a != dim_b:
        raise ValueError(f"cannot convert {src} ({dim_a}) to {dst} ({dim_b})")
    result = (number * fa + oa - ob) / fb
    # 12 significant digits hide float noise (0.1 ft -> 0.03048, not 0.030480000000000004).
    result = float(f"{result:.12g}")
    return int(result) if result.is_integer() else result
"""

# The canonical names unit_convert's schema offers (the tool also takes their aliases).
UNITS: list[str] = (
    ["mm", "cm", "m", "km", "in", "ft", "yd", "mi"]
    + ["mg", "g", "kg", "t", "oz", "lb"]
    + ["ml", "cl", "l", "m3", "tsp", "tbsp", "floz", "cup", "pt", "qt", "gal"]
    + ["ms", "s", "min", "h", "day", "week", "year"]
    + ["c", "f", "k"]
)

CALCULATOR = BuiltinTool(
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
)
UNIT_CONVERT = BuiltinTool(
    name="unit_convert",
    description=(
        "Convert a value between units of length, mass, volume, temperature or time "
        "(abbreviations or names, singular or plural: 'km', 'miles', 'degrees Fahrenheit')."
    ),
    parameters={
        "type": "object",
        "properties": {
            "value": {"type": "number"},
            "from_unit": {"type": "string", "enum": UNITS},
            "to_unit": {"type": "string", "enum": UNITS},
        },
        "required": ["value", "from_unit", "to_unit"],
        "additionalProperties": False,
    },
    source=_UNIT_CONVERT,
    returns="number",
    examples=[{"args": {"value": 5, "from_unit": "km", "to_unit": "m"}, "result": 5000}],
)
BUILTIN_TOOLS: dict[str, BuiltinTool] = {t.name: t for t in (CALCULATOR, UNIT_CONVERT)}


def _check(name: str, obj: object) -> BuiltinTool:
    if isinstance(obj, dict):
        try:
            obj = BuiltinTool(**obj)
        except TypeError as exc:
            raise ValidationError(f"tool {name!r}: {exc}") from None
    if not isinstance(obj, BuiltinTool):
        raise ValidationError(f"tool {name!r} does not name a BuiltinTool")
    if obj.name != name:
        raise ValidationError(f"tool registered as {name!r} calls itself {obj.name!r}")
    return obj


TOOLS: Registry[BuiltinTool] = Registry(
    "tool",
    check=_check,
    error=lambda msg, hint: ValidationError(msg, hint=hint),
    unknown=lambda name, known: ValidationError(
        f"unknown built-in tool {name!r}; known: {', '.join(known)}"
    ),
)


def tool_names() -> list[str]:
    """hainet's tools and plugins' (nothing is imported)."""
    return TOOLS.names()


def builtin_tool(name: str) -> BuiltinTool:
    """The tool registered as ``name`` (hainet's or a plugin's)."""
    return TOOLS.get(name)
