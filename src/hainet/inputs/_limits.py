"""Limits and value checks of :mod:`hainet.inputs`: the presets, bounded reading of
bytes and text, and the walk every parsed or Python-built value ends with.

The names without an underscore here are shared with :mod:`hainet.inputs._parsers`;
users import the public ones from :mod:`hainet.inputs`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from hainet.errors import HainetError, ValidationError

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


class Source(Protocol):
    """A path or an ``importlib.resources`` Traversable (built-in data files)."""

    def read_bytes(self) -> bytes: ...


def format_path(path: tuple[str | int, ...]) -> str:
    """``('cases', 3, 'target')`` -> ``cases.3.target``, pydantic's way; a path of a
    too-deep value is cut after its first 8 steps."""
    shown = ".".join(str(p) for p in path[:8])
    return shown + (f"... ({len(path)} levels)" if len(path) > 8 else "")


def fail(error: type[HainetError], where: str, message: str) -> HainetError:
    return error(f"{where}: {message}" if where else message)


# -- bytes ------------------------------------------------------------------------------


def read_bytes(
    path: str | Path | Source,
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
            raise fail(error, name, _too_big(len(data), cap))
        return data
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > cap:
                raise fail(error, name, _too_big(size, cap))
            # stat says 0 for /dev/zero and pipes: read one byte past the cap to know.
            data = fh.read(cap + 1)
    except OSError as exc:
        raise error(f"cannot read {name}: {exc.strerror or exc}") from None
    if len(data) > cap:
        raise fail(error, name, _too_big(len(data), cap, at_least=True))
    return data


def _too_big(size: int, cap: int, *, at_least: bool = False) -> str:
    return f"{'more than ' if at_least else ''}{size:,} bytes, over the limit of {cap:,}"


def decode(data: bytes | str, where: str, error: type[HainetError], limits: Limits) -> str:
    if isinstance(data, str):
        # Text given directly (a CLI argument, a hub field): the same cap, on its UTF-8
        # size, which is at most 4 bytes a character: cheap to bound before encoding.
        if len(data) > limits.max_bytes or (
            len(data) * 4 > limits.max_bytes
            and len(data.encode("utf-8", "surrogatepass")) > limits.max_bytes
        ):
            raise fail(error, where, f"text over the limit of {limits.max_bytes:,} bytes")
        return data
    if len(data) > limits.max_bytes:
        raise fail(error, where, _too_big(len(data), limits.max_bytes))
    try:
        return data.decode("utf-8-sig")  # a BOM (Windows editors) is dropped
    except UnicodeDecodeError as exc:
        raise fail(error, where, f"not UTF-8 (byte {exc.start})") from None


def read_text(
    path: str | Path | Source,
    *,
    where: str | None = None,
    error: type[HainetError] = ValidationError,
    limits: Limits = DEFAULT_LIMITS,
) -> str:
    """The UTF-8 text of ``path``, size-checked first (see :func:`read_bytes`)."""
    name = where or str(path)
    return decode(read_bytes(path, where=name, error=error, limits=limits), name, error, limits)


# -- the walk every parsed or Python-built value ends with -------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")
OK_SCALARS: tuple[type, ...] = (str, int, float, bool, type(None))


class Duplicate(dict[str, Any]):
    """An object that had a key twice; the walk reports it where it sits."""

    key: str = ""


class LongInt:
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
    if isinstance(value, LongInt):
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
    _scalars: tuple[type, ...] = OK_SCALARS,
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
            if isinstance(item, Duplicate):
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
    raise_problem(value_problem(value, limits), value, where, error, locate)
    return value


def raise_problem(
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
