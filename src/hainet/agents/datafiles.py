"""Read a list of records (examples, test cases) from JSON, JSONL or YAML.

One reader for every user data file of the agents layer, so that every such file
accepts the same formats and every error names the file and the line (JSONL, JSON
syntax, YAML) or the item number (JSON and YAML lists, counted from 1).  Files go
through :mod:`hainet.inputs` (:data:`~hainet.inputs.DATA_LIMITS`: 16 MiB, depth 64,
no NaN, no duplicate key) before anything is parsed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hainet.errors import ValidationError
from hainet.inputs import DATA_LIMITS, format_path, load_file, parse_json_lines, read_bytes

__all__ = ["read_items"]


def read_items(path: str | Path, *, what: str, wrapper: str | None = None) -> list[tuple[Any, str]]:
    """The items of the list in ``path``, each with where it is (``"F line 3"``).

    ``what`` names the records in errors ("test cases"); ``wrapper``, if given, is a
    key under which a JSON/YAML mapping may hold the list (``{"examples": [...]}``).
    """
    p = Path(path)
    where = f"{what} {p}"
    if p.suffix == ".jsonl":
        data = read_bytes(p, where=where, error=ValidationError, limits=DATA_LIMITS)
        lines = parse_json_lines(data, where=str(p), error=ValidationError, limits=DATA_LIMITS)
        return [(line.value, f"{p} line {line.number}") for line in lines]

    def locate(data: Any, loc: tuple[str | int, ...]) -> str:
        # Name the item of the list, counted from 1, as the records' own errors do.
        if wrapper is not None and isinstance(data, dict) and loc[:1] == (wrapper,):
            loc = loc[1:]
        if loc and isinstance(loc[0], int):
            rest = format_path(loc[1:])
            return f"item {loc[0] + 1}" + (f": field {rest!r}" if rest else "")
        return f"at {format_path(loc)}" if loc else ""

    kind = ".json" if p.suffix == ".json" else ".yaml"
    data = load_file(
        p, where=str(p), error=ValidationError, limits=DATA_LIMITS, locate=locate, kind=kind
    )
    if wrapper is not None and isinstance(data, dict) and wrapper in data:
        data = data[wrapper]
    if not isinstance(data, list):
        raise ValidationError(f"{p}: expected a list of {what}, got {type(data).__name__}")
    return [(x, f"{p} item {i}") for i, x in enumerate(data, 1)]
