"""One registry for every extension point: backends, suites, scorers, operators, tools.

Each kind has an entry-point group, and hainet's own built-ins are declared there
too (``pyproject.toml``), so a plugin package is found exactly as a built-in is::

    [project.entry-points."hainet.scorers"]
    shouting = "my_plugin:ShoutingScorer"

    ======== ==================== ==================================================
    kind     entry-point group    what the entry point names
    ======== ==================== ==================================================
    backend  ``hainet.backends``  a :class:`~hainet.backends.Backend` subclass
    suite    ``hainet.suites``    a Suite, a dict, a JSON path, or a callable of one
    scorer   ``hainet.scorers``   a scorer class or ``factory(ScoringContext)``
    operator ``hainet.operators`` an evolution operator (name, risk, ``propose``)
    tool     ``hainet.tools``     a ``BuiltinTool`` (source run in the sandbox)
    ======== ==================== ==================================================

An entry point is imported only when its name is asked for.  An entry point whose
import fails with :class:`ImportError` (an optional SDK missing) raises the kind's
error with an install hint: the extras of the entry point (``"mod:obj [llama]"``) if
it declares any, else its distribution.  :meth:`Registry.register` adds an object in
process (tests, the mock backend, a notebook); it wins over an entry point of the
same name.

This module sits in the lowest layer: it knows names and groups, not what a backend
or a scorer is.  Each kind's owner (``backends/base.py``, ``suites/scorers.py``...)
makes its :class:`Registry` with a ``check`` that turns a loaded object into the
kind's type or refuses it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar

from hainet.errors import ConfigError, HainetError

__all__ = ["GROUPS", "Registry"]

GROUPS: dict[str, str] = {
    "backend": "hainet.backends",
    "suite": "hainet.suites",
    "scorer": "hainet.scorers",
    "operator": "hainet.operators",
    "tool": "hainet.tools",
}
"""Kind -> entry-point group."""

T = TypeVar("T")
ErrorFactory = Callable[[str, str | None], HainetError]
"""``(message, hint) -> error`` of a kind (SuiteError for scorers, ...)."""


def _unknown(kind: str) -> Callable[[str, list[str]], HainetError]:
    def error(name: str, known: list[str]) -> HainetError:
        return ConfigError(f"unknown {kind} {name!r}", hint=f"known: {', '.join(known)}")

    return error


class Registry(Generic[T]):
    """Objects of one kind by name: registered in process, else from entry points."""

    def __init__(
        self,
        kind: str,
        *,
        check: Callable[[str, object], T],
        error: ErrorFactory = lambda msg, hint: ConfigError(msg, hint=hint),
        unknown: Callable[[str, list[str]], HainetError] | None = None,
    ) -> None:
        if kind not in GROUPS:
            raise ValueError(f"unknown registry kind {kind!r}; known: {', '.join(GROUPS)}")
        self.kind = kind
        self.group = GROUPS[kind]
        self._check = check
        self._error = error
        self._unknown = unknown or _unknown(kind)
        self._registered: dict[str, T] = {}
        self._loaded: dict[str, T] = {}
        self._declared: tuple[object, tuple[EntryPoint, ...]] | None = None

    def _entry_points(self) -> tuple[EntryPoint, ...]:
        # Scanning every installed distribution costs milliseconds, and suites and
        # scorers are looked up per case: kept until sys.path changes (a package put on
        # it later is seen) or forget() is called.
        key = (entry_points, tuple(sys.path))
        if self._declared is None or self._declared[0] != key:
            self._declared = (key, tuple(entry_points(group=self.group)))
        return self._declared[1]

    def register(self, name: str, obj: object) -> None:
        """Add ``obj`` under ``name`` in this process (wins over an entry point)."""
        self._registered[name] = self._check(name, obj)
        self._loaded.pop(name, None)

    def entry_point(self, name: str) -> EntryPoint | None:
        return next((ep for ep in self._entry_points() if ep.name == name), None)

    def names(self) -> list[str]:
        """Every name known, registered and declared (nothing is imported)."""
        return sorted({*self._registered, *(ep.name for ep in self._entry_points())})

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (
            name in self._registered or name in self._loaded or self.entry_point(name) is not None
        )

    def load_raw(self, name: str) -> object | None:
        """The entry point's object as imported, unchecked; None if none has ``name``.

        For kinds whose owner converts what a plugin gives (a suite may be a path).
        """
        ep = self.entry_point(name)
        if ep is None:
            return None
        where = f"{self.kind} plugin {name!r} ({ep.value})"
        try:
            loaded: object = ep.load()
        except ImportError as exc:
            raise self._error(f"{where} failed to load: {exc}", _install_hint(ep)) from None
        except Exception as exc:  # a broken plugin must not look like a missing one
            raise self._error(f"{where} failed to load: {exc}", None) from None
        return loaded

    def get(self, name: str) -> T:
        """The object named ``name``, imported on first use and then kept."""
        if name in self._registered:
            return self._registered[name]
        if name in self._loaded:
            return self._loaded[name]
        obj = self.load_raw(name)
        if obj is None:
            if not self.names():
                raise self._error(
                    f"no {self.kind} is registered (entry-point group {self.group!r} is empty)",
                    "install hainet (pip install -e .) so that its entry points are visible",
                )
            raise self._unknown(name, self.names())
        checked = self._check(name, obj)
        self._loaded[name] = checked
        return checked

    def forget(self, name: str | None = None) -> None:
        """Drop what was registered or loaded under ``name`` (all names if None, and
        the entry points read, so that a package installed since is seen)."""
        self._declared = None
        if name is None:
            self._registered.clear()
            self._loaded.clear()
        else:
            self._registered.pop(name, None)
            self._loaded.pop(name, None)


def _install_hint(ep: EntryPoint) -> str | None:
    dist = ep.dist.name if ep.dist is not None else None
    if ep.extras and dist:
        return f"pip install '{dist}[{','.join(ep.extras)}]'"
    return f"reinstall {dist}" if dist else None
