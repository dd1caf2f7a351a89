"""The ``Backend`` interface and the registry of backends by name.

A backend has one abstract method, ``async generate(Request) -> Completion``, and
declares what it can do as class attributes.  Backends are found through the
``hainet.backends`` entry-point group of :mod:`hainet.registry`, built-ins included
(declared in pyproject.toml and nowhere else), so third-party backends are
first-class.  Optional SDKs are imported inside the backend module, which turns
an ``ImportError`` into :class:`~hainet.errors.BackendUnavailable` with the extra to
install.
"""

from __future__ import annotations

import abc
from typing import ClassVar

from hainet.errors import BackendUnavailable, ConfigError
from hainet.registry import Registry
from hainet.types import Completion, ModelSpec, Request

__all__ = ["Backend", "backend_class", "backend_names", "missing_dependency", "register_backend"]


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


def _check(name: str, obj: object) -> type[Backend]:
    if not (isinstance(obj, type) and issubclass(obj, Backend)):
        raise ConfigError(f"backend {name!r} does not name a hainet Backend class")
    return obj


BACKENDS: Registry[type[Backend]] = Registry(
    "backend",
    check=_check,
    error=lambda msg, hint: BackendUnavailable(msg, hint=hint),
    unknown=lambda name, known: ConfigError(
        f"unknown backend {name!r}", hint=f"known: {', '.join(known)}"
    ),
)
ENTRY_POINT_GROUP = BACKENDS.group


def register_backend(name: str, cls: type[Backend]) -> None:
    """Register a backend class under ``name`` (overrides an entry point)."""
    BACKENDS.register(name, cls)


def backend_names() -> list[str]:
    return BACKENDS.names()


def backend_class(name: str) -> type[Backend]:
    return BACKENDS.get(name)


def missing_dependency(package: str, extra: str, exc: ImportError) -> BackendUnavailable:
    """The error for an optional SDK that is not installed."""
    return BackendUnavailable(
        f"{package} is not installed ({exc})",
        hint=f"pip install 'hainet[{extra}]'",
    )
