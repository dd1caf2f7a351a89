"""Re-exports imported on first use (PEP 562), so that ``import hainet`` and the CLI's
start-up do not import every room of the house.

A package lists what it re-exports and where each name lives::

    __getattr__, __dir__ = lazy_exports(__name__, {"Store": "hainet.store", ...})

and keeps the real imports under ``TYPE_CHECKING`` for the type checker. The first
access to a name imports its module and binds the name on the package, so later
accesses cost nothing.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` for ``package`` re-exporting ``names``
    (name -> the module that defines it)."""

    def __getattr__(name: str) -> Any:
        try:
            where = names[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(where), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*names, *vars(sys.modules[package])})

    return __getattr__, __dir__
