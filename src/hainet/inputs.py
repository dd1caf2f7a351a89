"""The one door for untrusted input: files and values from a user, a plugin or a hub.

Every reader of such data (suites, agent specs, data files, config.toml, the
selector's files, ``hainet report --results``) goes through here, so that each one
refuses the same things, with the same kind of message, *before* a parser or a
pydantic model can be made to crash or to eat the machine:

* **size**: the file's size (``stat``) and then the bytes actually read are checked
  against ``max_bytes`` before anything is decoded, so ``/dev/zero`` or a file that
  grows while it is read is refused too;
* **depth**: a linear pre-scan counts bracket nesting outside strings before
  ``json.loads`` (CPython's decoder recurses and raises ``RecursionError`` near
  100,000 levels); YAML's composer counts as it goes;
* **numbers**: NaN, Infinity and numbers that overflow to them (``1e999``) are
  refused, and so are integers longer than ``max_int_digits`` (CPython refuses to
  convert more than 4,300 digits with a ``ValueError`` of its own);
* **keys**: a key given twice in one object is refused (JSON and YAML would keep the
  last one silently); YAML keys must be strings, as JSON's are;
* **YAML**: aliases are refused (no "billion laughs"), and so are the tags that do not
  map to JSON (``!!binary``, ``!!set``, ``!!omap``, ``!!pairs``, ``!!timestamp``:
  an unquoted date stays a string);
* **TOML**: ``nan`` and ``inf`` are refused like JSON's.

Values built in Python (a suite from a plugin, a spec from a hub) are checked by
:func:`value_problem`, the same walk the file readers finish with: JSON types only,
finite numbers, string keys, bounded depth and, if asked, bounded string length.

Errors are raised as the caller's domain error (``error=SuiteError`` for suites,
``ValidationError`` for specs and data files, ``ConfigError`` for settings) and name
the file (``where``), then the line where the parser gives one (syntax errors, every
YAML problem), else the path of the value (``cases.3.target``), which the caller may
render better with ``locate`` (a suite names the case id).

Layer 1: imports nothing of hainet but :mod:`hainet.errors`.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from hainet.errors import HainetError, ValidationError

__all__ = [
    "CONFIG_LIMITS",
    "DATA_LIMITS",
    "DEFAULT_LIMITS",
    "RESULTS_LIMITS",
    "SPEC_LIMITS",
    "SUITE_LIMITS",
    "Limits",
    "Line",
    "Problem",
    "check_value",
    "format_path",
    "load_file",
    "parse_json",
    "parse_json_lines",
    "parse_toml",
    "parse_yaml",
    "read_bytes",
    "read_text",
    "value_problem",
]

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on one input.  The named presets below are what hainet's readers use."""

    max_bytes: int = 8 * MiB
    """Largest file (or text, encoded as UTF-8) accepted."""
    max_depth: int = 64
    """Deepest nesting of arrays and objects; the deepest built-in data is 14."""
    max_int_digits: int = 1000
    """Longest integer literal (CPython itself refuses to convert more than 4,300)."""
    max_string: int | None = None
    """Longest string anywhere in the value (None: bounded by ``max_bytes`` only)."""


# Measured: the largest built-in data file is suites/data/tool_use.json, 89,631 bytes,
# nesting 14 deep (structured_output.json), longest string 792 characters; the
# largest example agent spec is 4,848 bytes.  Each limit below leaves two orders of
# magnitude of headroom over that and still fits comfortably in memory on a laptop.
DEFAULT_LIMITS = Limits()
SUITE_LIMITS = Limits(max_bytes=16 * MiB)
"""A suite file: about 180 times the largest built-in suite (tens of thousands of cases)."""
SPEC_LIMITS = Limits(max_bytes=1 * MiB)
"""An agent spec file: about 200 times the largest example agent."""
DATA_LIMITS = Limits(max_bytes=16 * MiB)
"""A user's data file of examples or test cases (JSON, JSONL, YAML)."""
CONFIG_LIMITS = Limits(max_bytes=1 * MiB)
"""config.toml, select.json: a few hundred bytes in practice."""
RESULTS_LIMITS = Limits(max_bytes=256 * MiB)
"""Files hainet wrote itself and reads back (``bench --output``, ``analysis.json``):
every output of every case of a large sweep."""


class Problem(NamedTuple):
    """What is wrong with a value, and where in it (keys and list indexes)."""

    path: tuple[str | int, ...]
    message: str


Locate = Callable[[Any, tuple[str | int, ...]], str]
"""``locate(data, path)`` renders where a problem is (a suite names the case id)."""


class _Source(Protocol):
    """A path or an ``importlib.resources`` Traversable (built-in data files)."""

    def read_bytes(self) -> bytes: ...


def format_path(path: tuple[str | int, ...]) -> str:
    """``('cases', 3, 'target')`` -> ``cases.3.target``, pydantic's way; a path of a
    too-deep value is cut after its first 8 steps."""
    shown = ".".join(str(p) for p in path[:8])
    return shown + (f"... ({len(path)} levels)" if len(path) > 8 else "")


def _fail(error: type[HainetError], where: str, message: str) -> HainetError:
    return error(f"{where}: {message}" if where else message)


# -- bytes ------------------------------------------------------------------------------


def read_bytes(
    path: str | Path | _Source,
    *,
    where: str | None = None,
    error: type[HainetError] = ValidationError,
    limits: Limits = DEFAULT_LIMITS,
) -> bytes:
    """The bytes of ``path``, refused past ``limits.max_bytes`` before they are read
    whole."""
    name = where or str(path)
    cap = limits.max_bytes
    if not isinstance(path, (str, Path)):
        data = path.read_bytes()  # packaged data: size known only once read
        if len(data) > cap:
            raise _fail(error, name, _too_big(len(data), cap))
        return data
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > cap:
                raise _fail(error, name, _too_big(size, cap))
            # stat says 0 for /dev/zero and pipes: read one byte past the cap to know.
            data = fh.read(cap + 1)
    except OSError as exc:
        raise error(f"cannot read {name}: {exc.strerror or exc}") from None
    if len(data) > cap:
        raise _fail(error, name, _too_big(len(data), cap, at_least=True))
    return data


def _too_big(size: int, cap: int, *, at_least: bool = False) -> str:
    return f"{'more than ' if at_least else ''}{size:,} bytes, over the limit of {cap:,}"


def _decode(data: bytes | str, where: str, error: type[HainetError], limits: Limits) -> str:
    if isinstance(data, str):
        # Text given directly (a CLI argument, a hub field): the same cap, on its UTF-8
        # size, which is at most 4 bytes a character: cheap to bound before encoding.
        if len(data) > limits.max_bytes or (
            len(data) * 4 > limits.max_bytes
            and len(data.encode("utf-8", "surrogatepass")) > limits.max_bytes
        ):
            raise _fail(error, where, f"text over the limit of {limits.max_bytes:,} bytes")
        return data
    if len(data) > limits.max_bytes:
        raise _fail(error, where, _too_big(len(data), limits.max_bytes))
    try:
        return data.decode("utf-8-sig")  # a BOM (Windows editors) is dropped
    except UnicodeDecodeError as exc:
        raise _fail(error, where, f"not UTF-8 (byte {exc.start})") from None


def read_text(
    path: str | Path | _Source,
    *,
    where: str | None = None,
    error: type[HainetError] = ValidationError,
    limits: Limits = DEFAULT_LIMITS,
) -> str:
    """The UTF-8 text of ``path``, size-checked first (see :func:`read_bytes`)."""
    name = where or str(path)
    return _decode(read_bytes(path, where=name, error=error, limits=limits), name, error, limits)


# -- the walk every parsed or Python-built value ends with -------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")
_OK_SCALARS: tuple[type, ...] = (str, int, float, bool, type(None))
_TOML_SCALARS: tuple[type, ...] = (*_OK_SCALARS, datetime.date, datetime.time)


class _Duplicate(dict[str, Any]):
    """An object that had a key twice; the walk reports it where it sits."""

    key: str = ""


class _LongInt:
    """An integer literal over ``max_int_digits``; reported by the walk with its path."""

    def __init__(self, digits: int) -> None:
        self.digits = digits


def _string_problem(s: str, limits: Limits) -> str | None:
    if limits.max_string is not None and len(s) > limits.max_string:
        return f"a string of {len(s):,} characters, over the limit of {limits.max_string:,}"
    if not s.isascii() and _SURROGATE.search(s):
        return "a string with a lone surrogate (not valid Unicode text)"
    return None


def _scalar_problem(value: Any, limits: Limits, scalars: tuple[type, ...]) -> str | None:
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN is not allowed"
        if math.isinf(value):
            return f"{'-' if value < 0 else ''}Infinity is not allowed (or a number too large)"
        return None
    if isinstance(value, str):
        return _string_problem(value, limits)
    if isinstance(value, _LongInt):
        return f"an integer of {value.digits:,} digits, over the limit of {limits.max_int_digits:,}"
    if isinstance(value, int) and not isinstance(value, bool):
        # Only Python-built values get here with huge ints; counting digits is cheap.
        if value.bit_length() > limits.max_int_digits * 3.33:
            return f"an integer over {limits.max_int_digits:,} digits"
        return None
    if isinstance(value, scalars):
        return None
    return f"a {type(value).__name__}, not a JSON value"


def value_problem(
    value: Any,
    limits: Limits = DEFAULT_LIMITS,
    *,
    strict: bool = True,
    _scalars: tuple[type, ...] = _OK_SCALARS,
) -> Problem | None:
    """The first thing wrong with a JSON-like ``value``, or None.

    ``strict=False`` checks the depth only: for free-form options that a plugin's own
    check reads (a code test may expect ``float("inf")``, built in Python).
    Iterative (a value built in Python may nest deeper than the interpreter's
    recursion limit) and linear in the size of the value.
    """
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, (dict, list, tuple)):
            if len(path) >= limits.max_depth:
                return Problem(path, f"nested deeper than {limits.max_depth} levels")
            if isinstance(item, _Duplicate):
                return Problem(path, f"key {item.key!r} appears twice in one object")
            if isinstance(item, dict):
                children: Iterator[tuple[str | int, Any]] = iter(item.items())
                for key in item if strict else ():
                    if not isinstance(key, str):
                        return Problem(path, f"key {key!r} is not a string")
                    why = _string_problem(key, limits)
                    if why:
                        return Problem(path, f"key: {why}")
            else:
                children = enumerate(item)
            # Reversed, so that the first problem in document order is the one reported.
            stack.extend((child, (*path, k)) for k, child in reversed(list(children)))
            continue
        why = _scalar_problem(item, limits, _scalars) if strict else None
        if why:
            return Problem(path, why)
    return None


def check_value(
    value: Any,
    *,
    where: str = "",
    error: type[HainetError] = ValidationError,
    limits: Limits = DEFAULT_LIMITS,
    locate: Locate | None = None,
) -> Any:
    """``value`` itself if :func:`value_problem` finds nothing, else ``error``."""
    _raise_problem(value_problem(value, limits), value, where, error, locate)
    return value


def _raise_problem(
    problem: Problem | None,
    data: Any,
    where: str,
    error: type[HainetError],
    locate: Locate | None,
) -> None:
    if problem is None:
        return
    if locate is not None:
        place = locate(data, problem.path)
    else:
        place = f"at {format_path(problem.path)}" if problem.path else ""
    parts = [p for p in (where, place, problem.message) if p]
    raise error(": ".join(parts))


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
    return _fail(error, where, f"nested deeper than {limits.max_depth} levels")


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) == len(pairs):
        return out
    seen: set[str] = set()
    dup = _Duplicate(out)
    for key, _ in pairs:
        if key in seen:
            dup.key = key
            break
        seen.add(key)
    return dup


def _json_decoder(limits: Limits) -> json.JSONDecoder:
    def parse_int(s: str) -> int | _LongInt:
        digits = len(s.lstrip("-"))
        return _LongInt(digits) if digits > limits.max_int_digits else int(s)

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
    text = _decode(data, where, error, limits)
    if _bracket_depth(text, _JSON_TOKENS, limits.max_depth) > limits.max_depth:
        raise _deep(where, error, limits)
    try:
        value = _json_decoder(limits).decode(text)
    except json.JSONDecodeError as exc:
        raise _fail(
            error, where, f"line {exc.lineno} column {exc.colno}: not valid JSON: {exc.msg}"
        ) from None
    except RecursionError:  # only if the interpreter's limit is set far below ours
        raise _deep(where, error, limits) from None
    _raise_problem(value_problem(value, limits), value, where, error, locate)
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
    text = _decode(data, where, error, limits)
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
        raise _fail(error, where, f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise _deep(where, error, limits) from None
    _raise_problem(value_problem(value, limits), value, where, error, locate)
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
    text = _decode(data, where, error, limits)
    loader: _SafeLoader | None = None
    try:
        loader = _SafeLoader(text, limits)  # its reader refuses control characters here
        value = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
        what = exc.problem or exc.context or "malformed"
        kind = "" if isinstance(exc, _Refused) else "not valid YAML: "
        raise _fail(error, where, f"{at}{kind}{what}") from None
    except yaml.YAMLError as exc:
        raise _fail(error, where, f"not valid YAML: {exc}") from None
    except RecursionError:
        raise _deep(where, error, limits) from None
    finally:
        if loader is not None:
            loader.dispose()
    _raise_problem(value_problem(value, limits), value, where, error, locate)
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
    text = _decode(data, where, error, limits)
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
        raise _fail(error, where, f"not valid TOML: {why}") from None
    problem = value_problem(value, limits, _scalars=_TOML_SCALARS)
    _raise_problem(problem, value, where, error, locate)
    return value


# -- files ------------------------------------------------------------------------------

_PARSERS: dict[str, Callable[..., Any]] = {
    ".json": parse_json,
    ".yaml": parse_yaml,
    ".yml": parse_yaml,
    ".toml": parse_toml,
}


def load_file(
    path: str | Path | _Source,
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
        raise _fail(error, name, f"unknown file type {suffix!r} (.json, .yaml, .yml, .toml)")
    data = read_bytes(path, where=name, error=error, limits=limits)
    return parser(data, where=name, error=error, limits=limits, locate=locate)
