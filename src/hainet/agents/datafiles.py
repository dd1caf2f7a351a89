"""Read a list of records (examples, test cases) from JSON, JSONL or YAML.

One reader for every user data file of the agents layer, so that every such file
accepts the same formats and every error names the file and the line (JSONL, JSON
syntax) or the item number (JSON and YAML lists, counted from 1).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from hainet.errors import ValidationError

__all__ = ["read_items"]


def read_items(path: str | Path, *, what: str, wrapper: str | None = None) -> list[tuple[Any, str]]:
    """The items of the list in ``path``, each with where it is (``"F line 3"``).

    ``what`` names the records in errors ("test cases"); ``wrapper``, if given, is a
    key under which a JSON/YAML mapping may hold the list (``{"examples": [...]}``).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    if p.suffix == ".jsonl":
        items: list[tuple[Any, str]] = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                items.append((json.loads(line), f"{p} line {n}"))
            except json.JSONDecodeError as exc:
                raise ValidationError(f"{p} line {n}: not valid JSON: {exc.msg}") from None
        return items
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"{p} line {exc.lineno} column {exc.colno}: not valid JSON: {exc.msg}"
        ) from None
    except yaml.YAMLError as exc:
        raise ValidationError(f"{p}: not valid YAML: {exc}") from None
    if wrapper is not None and isinstance(data, dict) and wrapper in data:
        data = data[wrapper]
    if not isinstance(data, list):
        raise ValidationError(f"{p}: expected a list of {what}, got {type(data).__name__}")
    return [(x, f"{p} item {i}") for i, x in enumerate(data, 1)]
