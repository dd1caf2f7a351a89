"""Nothing non-finite reaches the store.

JSON has no NaN or infinity: Python's ``json`` writes them as bare ``NaN`` /
``Infinity`` tokens, which SQLite's ``json_extract`` (and every other JSON reader)
rejects, and a float column holding one sorts and averages wrongly.  The store checks
every value it writes (:func:`check_finite`, the error naming the field) and its
engine serializes JSON with :func:`json_dumps`, which refuses them too, for JSON
written by code that did not check (the agent and hyper tables).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from hainet.errors import StoreError

__all__ = ["NonFinite", "check_finite", "json_dumps"]


class NonFinite(ValueError):
    pass


def _non_finite(value: Any, path: str) -> tuple[str, float] | None:
    """The first NaN or infinity in ``value`` (a JSON-like tree) and where it is."""
    stack = [(path, value)]
    while stack:  # iterative: a deep value must not hit the recursion limit
        where, item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return where, item
        elif isinstance(item, Mapping):
            stack.extend((f"{where}.{k}", v) for k, v in reversed(list(item.items())))
        elif isinstance(item, list | tuple):
            stack.extend((f"{where}[{i}]", v) for i, v in reversed(list(enumerate(item))))
    return None


def check_finite(what: str, values: Mapping[str, Any]) -> None:
    for name, value in values.items():
        found = _non_finite(value, name)
        if found is not None:
            raise StoreError(
                f"cannot {what}: {found[0]} is {found[1]!r}; the store refuses NaN and infinity"
            )


def json_dumps(value: Any) -> str:
    # The backstop for JSON written by code that skipped check_finite (agents, hyper).
    found = _non_finite(value, "value")
    if found is not None:
        raise NonFinite(f"{found[0]} is {found[1]!r}; the store refuses NaN and infinity")
    return json.dumps(value, allow_nan=False)
