"""The JSON, YAML and TOML readers of :mod:`hainet.inputs`, and :func:`load_file`.

Each parser decodes under the caller's limits, bounds nesting before the real parser
runs, and ends with the value walk of :mod:`hainet.inputs._limits`.
"""

from __future__ import annotations

import datetime
import json
import math
import re
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from hainet.errors import HainetError, ValidationError
from hainet.inputs._limits import (
    DEFAULT_LIMITS,
    OK_SCALARS,
    Duplicate,
    Limits,
    Locate,
    LongInt,
    Source,
    decode,
    fail,
    raise_problem,
    read_bytes,
    value_problem,
)

_TOML_SCALARS: tuple[type, ...] = (*OK_SCALARS, datetime.date, datetime.time)

# -- JSON -------------------------------------------------------------------------------

# Strings (complete or not) and brackets: the pre-scan skips the strings' contents.
_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|"|[\[\]{}]', re.DOTALL)


def _bracket_depth(text: str, tokens: re.Pattern[str], cap: int) -> int:
    """The deepest bracket nesting outside strings, stopping once past ``cap``."""
    # Most files have fewer brackets than the cap: then no scan is needed at all.
    if text.count("[") + text.count("{") <= cap:
        return 0
    depth = deepest = 0
    for m in tokens.finditer(text):
        tok = m.group()
        if tok in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > cap:
                    break
        elif tok in "]}":
            depth = max(depth - 1, 0)
        elif len(tok) == 1:
            break  # a lone quote, an unterminated string: the parser reports it
    return deepest


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _deep(where: str, error: type[HainetError], limits: Limits) -> HainetError:
    return fail(error, where, f"nested deeper than {limits.max_depth} levels")


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) == len(pairs):
        return out
    seen: set[str] = set()
    dup = Duplicate(out)
    for key, _ in pairs:
        if key in seen:
            dup.key = key
            break
        seen.add(key)
    return dup


def _json_decoder(limits: Limits) -> json.JSONDecoder:
    def parse_int(s: str) -> int | LongInt:
        digits = len(s.lstrip("-"))
        return LongInt(digits) if digits > limits.max_int_digits else int(s)

    return json.JSONDecoder(
        object_pairs_hook=_pairs_hook,
        parse_int=parse_int,
        parse_constant=float,  # NaN, Infinity, -Infinity: the walk names where
    )


def parse_json(
    data: bytes | str,
    *,
    where: str = "",
    error: type[HainetError] = ValidationError,
    limits: Limits = DEFAULT_LIMITS,
    locate: Locate | None = None,
) -> Any:
    """Parse one JSON document under ``limits``; errors name ``where`` and the line
    (syntax) or the path of the value (everything else)."""
    text = decode(data, where, error, limits)
    if _bracket_depth(text, _JSON_TOKENS, limits.max_depth) > limits.max_depth:
        raise _deep(where, error, limits)
    try:
        value = _json_decoder(limits).decode(text)
    except json.JSONDecodeError as exc:
        raise fail(
            error, where, f"line {exc.lineno} column {exc.colno}: not valid JSON: {exc.msg}"
        ) from None
    except RecursionError:  # only if the interpreter's limit is set far below ours
        raise _deep(where, error, limits) from None
    raise_problem(value_problem(value, limits), value, where, error, locate)
    return value


class Line(NamedTuple):
    number: int
    value: Any


def parse_json_lines(
    data: bytes | str,
    *,
    where: str = "",
    error: type[HainetError] = ValidationError,
    limits: Limits = DEFAULT_LIMITS,
    locate: Locate | None = None,
) -> list[Line]:
    """JSON Lines: one value per non-blank line, each with its line number; errors
    name ``where line N``."""
    text = decode(data, where, error, limits)
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            at = f"{where} line {n}" if where else f"line {n}"
            value = _parse_json_text(line, at, error, limits, locate)
            out.append(Line(n, value))
    return out


def _parse_json_text(
    text: str, where: str, error: type[HainetError], limits: Limits, locate: Locate | None
) -> Any:
    if _bracket_depth(text, _JSON_TOKENS, limits.max_depth) > limits.max_depth:
        raise _deep(where, error, limits)
    try:
        value = _json_decoder(limits).decode(text)
    except json.JSONDecodeError as exc:
        raise fail(error, where, f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise _deep(where, error, limits) from None
    raise_problem(value_problem(value, limits), value, where, error, locate)
    return value


# -- YAML -------------------------------------------------------------------------------


class _Refused(yaml.MarkedYAMLError):
    """A YAML document that is well-formed but not accepted here."""


def _refuse(node: Node, problem: str) -> _Refused:
    return _Refused(problem=problem, problem_mark=node.start_mark)


class _Resolver(yaml.resolver.Resolver):
    """YAML 1.1's implicit types without timestamps: ``2024-01-01`` stays a string."""


_Resolver.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
}


class _SafeLoader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    yaml.constructor.SafeConstructor,
    _Resolver,
):
    """PyYAML's pure-Python safe loader with hainet's limits (see the module docstring).

    The C loader would be faster, but its composer cannot be bounded: it recurses.
    """

    limits: Limits = DEFAULT_LIMITS

    def __init__(self, stream: str, limits: Limits) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        _Resolver.__init__(self)
        self.limits = limits
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(yaml.AliasEvent):
            raise _refuse_event(self.peek_event(), "aliases (*name) are not allowed")  # type: ignore[no-untyped-call]
        self._depth += 1
        try:
            if self._depth > self.limits.max_depth:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise _refuse_event(event, f"nested deeper than {self.limits.max_depth} levels")
            node = super().compose_node(parent, index)
            assert node is not None  # only None at the end of the stream, never inside
        finally:
            self._depth -= 1
        return node

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)  # merge keys first, as SafeConstructor does
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise _refuse(key_node, f"key {key!r} is not a string (quote it)")
            if key in seen:
                raise _refuse(key_node, f"key {key!r} appears twice in one mapping")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: ScalarNode) -> int:
        digits = sum(c.isdigit() for c in str(node.value))
        if digits > self.limits.max_int_digits:
            raise _refuse(
                node, f"an integer of {digits:,} digits, over {self.limits.max_int_digits:,}"
            )
        return super().construct_yaml_int(node)

    def construct_yaml_float(self, node: ScalarNode) -> float:
        value = super().construct_yaml_float(node)
        if not math.isfinite(value):
            raise _refuse(node, f"{node.value!r}: NaN and infinities are not allowed")
        return value

    def construct_not_json(self, node: Node) -> None:
        raise _refuse(node, f"the tag {node.tag} is not allowed (only JSON-like values)")


# The stubs bound add_constructor's loader type to PyYAML's own loader classes.
_SafeLoader.add_constructor("tag:yaml.org,2002:int", _SafeLoader.construct_yaml_int)  # type: ignore[type-var]
_SafeLoader.add_constructor("tag:yaml.org,2002:float", _SafeLoader.construct_yaml_float)  # type: ignore[type-var]
for _tag in ("binary", "set", "omap", "pairs", "timestamp"):
    _SafeLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _SafeLoader.construct_not_json)  # type: ignore[type-var]


def _refuse_event(event: Any, problem: str) -> _Refused:
    return _Refused(problem=problem, problem_mark=event.start_mark)


def parse_yaml(
    data: bytes | str,
    *,
    where: str = "",
    error: type[HainetError] = ValidationError,
    limits: Limits = DEFAULT_LIMITS,
    locate: Locate | None = None,
) -> Any:
    """Parse one YAML document under ``limits``; errors name ``where`` and the line."""
    text = decode(data, where, error, limits)
    loader: _SafeLoader | None = None
    try:
        loader = _SafeLoader(text, limits)  # its reader refuses control characters here
        value = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
        what = exc.problem or exc.context or "malformed"
        kind = "" if isinstance(exc, _Refused) else "not valid YAML: "
        raise fail(error, where, f"{at}{kind}{what}") from None
    except yaml.YAMLError as exc:
        raise fail(error, where, f"not valid YAML: {exc}") from None
    except RecursionError:
        raise _deep(where, error, limits) from None
    finally:
        if loader is not None:
            loader.dispose()
    raise_problem(value_problem(value, limits), value, where, error, locate)
    return value


# -- TOML -------------------------------------------------------------------------------

_TOML_TOKENS = re.compile(
    r'"""(?:[^\\]|\\.)*?"""|\'\'\'.*?\'\'\'|"[^"\\\n]*(?:\\.[^"\\\n]*)*"|\'[^\'\n]*\''
    r"|#[^\n]*|[\"']|[\[\]{}]",
    re.DOTALL,
)


def parse_toml(
    data: bytes | str,
    *,
    where: str = "",
    error: type[HainetError] = ValidationError,
    limits: Limits = DEFAULT_LIMITS,
    locate: Locate | None = None,
) -> dict[str, Any]:
    """Parse a TOML document under ``limits`` (``nan`` and ``inf`` refused)."""
    text = decode(data, where, error, limits)
    if _bracket_depth(text, _TOML_TOKENS, limits.max_depth) > limits.max_depth:
        raise _deep(where, error, limits)
    try:
        value = tomllib.loads(text)
    except RecursionError:
        raise _deep(where, error, limits) from None
    except ValueError as exc:  # TOMLDecodeError, and int() past CPython's digit limit
        why = str(exc)
        if "integer string conversion" in why:
            why = f"an integer over {sys.get_int_max_str_digits():,} digits"
        raise fail(error, where, f"not valid TOML: {why}") from None
    problem = value_problem(value, limits, _scalars=_TOML_SCALARS)
    raise_problem(problem, value, where, error, locate)
    return value


# -- files ------------------------------------------------------------------------------

_PARSERS: dict[str, Callable[..., Any]] = {
    ".json": parse_json,
    ".yaml": parse_yaml,
    ".yml": parse_yaml,
    ".toml": parse_toml,
}


def load_file(
    path: str | Path | Source,
    *,
    where: str | None = None,
    error: type[HainetError] = ValidationError,
    limits: Limits = DEFAULT_LIMITS,
    locate: Locate | None = None,
    kind: str | None = None,
) -> Any:
    """Read and parse ``path`` by its suffix (or ``kind``: ``.json``, ``.yaml``,
    ``.toml``), size-checked before it is read whole."""
    name = where or str(path)
    suffix = kind or (Path(path).suffix.lower() if isinstance(path, (str, Path)) else ".json")
    parser = _PARSERS.get(suffix)
    if parser is None:
        raise fail(error, name, f"unknown file type {suffix!r} (.json, .yaml, .yml, .toml)")
    data = read_bytes(path, where=name, error=error, limits=limits)
    return parser(data, where=name, error=error, limits=limits, locate=locate)
