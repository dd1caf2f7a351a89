"""The ``Backend`` interface and the registry of backends by name.

A backend has one abstract method, ``async generate(Request) -> Completion``, and
declares what it can do as class attributes.  Backends are found through the
``hainet.backends`` entry-point group, built-ins included, so third-party backends
are first-class.  Optional SDKs are imported inside the backend module, which turns
an ``ImportError`` into :class:`~hainet.errors.BackendUnavailable` with the extra to
install.
"""

from __future__ import annotations

import abc
import importlib
from importlib.metadata import entry_points
from typing import ClassVar

from hainet.errors import BackendUnavailable, ConfigError
from hainet.types import Completion, ModelSpec, Request

__all__ = ["Backend", "backend_class", "backend_names", "missing_dependency", "register_backend"]

ENTRY_POINT_GROUP = "hainet.backends"

# Fallback for running from a source tree that was never pip-installed, where the
# package's own entry points are not visible.
_BUILTINS = {
    "llamacpp": "hainet.backends.llamacpp:LlamaCppBackend",
    "openai": "hainet.backends.openai:OpenAIBackend",
    "mock": "hainet.backends.mock:MockBackend",
    "transformers": "hainet.backends.transformers:TransformersBackend",
}
_registered: dict[str, type[Backend]] = {}


class Backend(abc.ABC):
    """One loaded model.  Create with :meth:`load`, release with :meth:`close`."""

    name: ClassVar[str]
    supports_chat: ClassVar[bool] = False
    supports_prompt: ClassVar[bool] = True
    supports_tools: ClassVar[bool] = False
    supports_json_schema: ClassVar[bool] = False
    reports_timings: ClassVar[bool] = False
    in_process: ClassVar[bool] = False
    """Whether the model's weights live in this process (its memory is ours)."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.load_seconds: float = 0.0

    @abc.abstractmethod
    async def generate(self, request: Request) -> Completion:
        """Answer one request.  Must not depend on earlier requests (no shared cache)."""

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release the model.  Safe to call twice."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def register_backend(name: str, cls: type[Backend]) -> None:
    """Register a backend class under ``name`` (overrides an entry point)."""
    _registered[name] = cls


def backend_names() -> list[str]:
    names = set(_BUILTINS) | set(_registered)
    names |= {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(names)


def backend_class(name: str) -> type[Backend]:
    if name in _registered:
        return _registered[name]
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            cls = ep.load()
            break
    else:
        target = _BUILTINS.get(name)
        if target is None:
            raise ConfigError(
                f"unknown backend {name!r}", hint=f"known: {', '.join(backend_names())}"
            )
        module, _, attr = target.partition(":")
        cls = getattr(importlib.import_module(module), attr)
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise ConfigError(f"backend {name!r} does not name a hainet Backend class")
    _registered[name] = cls
    return cls


def missing_dependency(package: str, extra: str, exc: ImportError) -> BackendUnavailable:
    """The error for an optional SDK that is not installed."""
    return BackendUnavailable(
        f"{package} is not installed ({exc})",
        hint=f"pip install 'hainet[{extra}]'",
    )
