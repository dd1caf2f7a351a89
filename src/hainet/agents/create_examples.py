"""Examples for ``hainet agents create``: read, check, classify and split them.

A file of ``{input, output}`` pairs (JSON list, JSONL or YAML) becomes a few-shot
*pool* and a *test set* (:class:`~hainet.agents.spec.TestCase` with a scorer chosen
from the outputs).  Errors name the file and the line or item.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hainet.agents.datafiles import read_items
from hainet.agents.spec import TestCase
from hainet.agents.workflow import as_text
from hainet.errors import ValidationError

__all__ = [
    "LabeledExample",
    "OutputKind",
    "Split",
    "as_text",
    "load_examples",
    "output_kind",
    "shape_schema",
    "split_examples",
]

OutputKind = Literal["number", "label", "json", "text"]

MIN_EXAMPLES = 3
MAX_POOL = 8
_EXAMPLE_KEYS = {"input", "output", "id"}

# -- examples ---------------------------------------------------------------------


@dataclass(frozen=True)
class LabeledExample:
    """One user example: ``input`` (string or JSON object) and the wanted ``output``."""

    input: Any
    output: Any
    where: str
    """Where it came from ("examples.jsonl line 3"), for error messages."""


def _check_example(item: Any, where: str) -> LabeledExample:
    if not isinstance(item, dict):
        raise ValidationError(f"{where}: an example is a mapping, got {type(item).__name__}")
    missing = [k for k in ("input", "output") if k not in item]
    if missing:
        raise ValidationError(f"{where}: missing {' and '.join(repr(k) for k in missing)}")
    unknown = sorted(set(item) - _EXAMPLE_KEYS)
    if unknown:
        raise ValidationError(
            f"{where}: unknown field {unknown[0]!r} (an example has input, output, id)"
        )
    for key in ("input", "output"):
        value = item[key]
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValidationError(f"{where}: {key!r} is empty")
        if isinstance(value, list):
            raise ValidationError(f"{where}: {key!r} is a list; use a string or an object")
    inp = item["input"]
    if not isinstance(inp, str | dict):
        inp = str(inp)  # a bare number as input is just text to the prompt
    return LabeledExample(input=inp, output=item["output"], where=where)


def load_examples(path: str | Path) -> list[LabeledExample]:
    """Read examples from JSON (a list, or ``{"examples": [...]}``), JSONL or YAML.

    Errors name the file and the line (JSONL) or item number (JSON, YAML).
    """
    p = Path(path)
    items = read_items(p, what="examples", wrapper="examples")
    examples = [_check_example(x, where) for x, where in items]
    if len(examples) < MIN_EXAMPLES:
        raise ValidationError(
            f"{p}: {len(examples)} example(s); at least {MIN_EXAMPLES} are needed "
            "(some to show the model, the rest to test it)"
        )
    return examples


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if isinstance(value, str):
        try:
            float(value.replace(",", ""))
        except ValueError:
            return False
        return True
    return False


def output_kind(outputs: Sequence[Any]) -> OutputKind:
    """What the wanted outputs are, which decides the scorer and the parsers allowed."""
    if all(isinstance(o, dict) for o in outputs):
        return "json"
    if all(_is_number(o) for o in outputs):
        return "number"
    texts = [as_text(o) for o in outputs]
    labels = set(texts)
    # A label set: few distinct short answers, most of them repeated.
    few = len(labels) <= 12 and len(labels) <= max(2, len(texts) // 2)
    if few and all(len(t) <= 40 and "\n" not in t for t in labels):
        return "label"
    return "text"


def _pin_schema(target: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema only ``target`` (field for field) satisfies."""
    return {
        "type": "object",
        "properties": {k: {"const": v} for k, v in target.items()},
        "required": list(target),
    }


def shape_schema(outputs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The shape the examples' objects share: the grammar for a JSON agent."""
    names = {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object"}
    props: dict[str, Any] = {}
    for key in outputs[0]:
        types = {names.get(type(o.get(key)), "string") for o in outputs if key in o}
        if types == {"integer", "number"}:
            types = {"number"}
        props[key] = {"type": types.pop()} if len(types) == 1 else {}
    required = [k for k in props if all(k in o for o in outputs)]
    return {"type": "object", "properties": props, "required": required}


def _test_case(ex: LabeledExample, i: int, kind: OutputKind, holdout: bool) -> TestCase:
    if kind == "number":
        target: Any = float(str(ex.output).replace(",", ""))
        return TestCase(
            id=f"t{i}", input=ex.input, target=target, scorer="numeric", holdout=holdout
        )
    if kind == "json":
        return TestCase(
            id=f"t{i}",
            input=ex.input,
            target=ex.output,
            scorer="json_schema",
            options={"schema": _pin_schema(ex.output)},
            holdout=holdout,
        )
    return TestCase(
        id=f"t{i}", input=ex.input, target=as_text(ex.output), scorer="exact", holdout=holdout
    )


@dataclass(frozen=True)
class Split:
    """The examples divided: ``pool`` may be shown, ``tests`` are only measured on."""

    pool: tuple[LabeledExample, ...]
    tests: tuple[TestCase, ...]
    kind: OutputKind
    labels: tuple[str, ...]
    """The distinct outputs when ``kind`` is "label" (the choices of the parser)."""
    unused: int
    """Examples beyond ``max_tests`` (left out to bound the time)."""


def split_examples(
    examples: Sequence[LabeledExample], *, seed: int = 0, max_tests: int = 24
) -> Split:
    """Shuffle with ``seed`` and split into the few-shot pool and the test set.

    For labels the pool takes the labels in turn, so every label can be shown.
    """
    kind = output_kind([e.output for e in examples])
    order = list(examples)
    random.Random(seed).shuffle(order)
    n = len(order)
    size = max(1, min(MAX_POOL, n // 3))
    labels: tuple[str, ...] = ()
    if kind == "label":
        labels = tuple(sorted({as_text(e.output) for e in order}))
        size = max(size, min(len(labels), MAX_POOL, n - 2))
        by_label = {lab: [e for e in order if as_text(e.output) == lab] for lab in labels}
        pool: list[LabeledExample] = []
        while len(pool) < size:
            for lab in labels:
                if by_label[lab] and len(pool) < size:
                    pool.append(by_label[lab].pop(0))
        rest = [e for e in order if all(e is not p for p in pool)]
    else:
        pool, rest = order[:size], order[size:]
    unused = max(0, len(rest) - max_tests)
    rest = rest[:max_tests]
    n_holdout = len(rest) // 3 if len(rest) >= 6 else 0
    tests = tuple(
        _test_case(e, i, kind, holdout=i > len(rest) - n_holdout) for i, e in enumerate(rest, 1)
    )
    return Split(pool=tuple(pool), tests=tests, kind=kind, labels=labels, unused=unused)
