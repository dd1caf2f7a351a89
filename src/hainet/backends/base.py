"""The ``Backend`` interface and the registry of backends by name.

A backend has one abstract method, ``async generate(Request) -> Completion``, and
declares what it can do as class attributes.  Backends are found through the
``hainet.backends`` entry-point group of :mod:`hainet.registry`, built-ins included
(declared in pyproject.toml and nowhere else), so third-party backends are
first-class.  Optional SDKs are imported inside the backend module, which turns
an ``ImportError`` into :class:`~hainet.errors.BackendUnavailable` with the extra to
install.

A backend also knows itself, so nothing outside ``backends/`` names one: what a
spec of it must say (:meth:`Backend.check_spec`), how much memory a configuration
of it will take before it loads (:meth:`Backend.estimate_memory_mb`), what quantizing
it means (:meth:`Backend.normalize_quantization`, :meth:`Backend.check_quantizable`,
:meth:`Backend.prepare`), whether its model lives behind a server (``remote``), which
libraries its results depend on (``libraries``) and which kind of model reference it
is the default for (``default_for``).  The defaults suit a third-party backend that
loads from a file in this process or talks to a server: it overrides what differs
instead of getting another backend's numbers.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar, Literal

from hainet.errors import BackendUnavailable, ConfigError, HainetError
from hainet.registry import Registry
from hainet.types import Completion, ModelSpec, Request, RunConfig

__all__ = [
    "Backend",
    "Reference",
    "backend_class",
    "backend_for",
    "backend_names",
    "missing_dependency",
    "register_backend",
]

MIB = 1024 * 1024
Reference = Literal["path", "url"]
"""How a user points at a model: a file or directory, or a server's URL."""


class Backend(abc.ABC):
    """One loaded model.  Create with :meth:`load`, release with :meth:`close`."""

    name: ClassVar[str]
    supports_chat: ClassVar[bool] = False
    supports_prompt: ClassVar[bool] = True
    supports_tools: ClassVar[bool] = False
    supports_json_schema: ClassVar[bool] = False
    reports_timings: ClassVar[bool] = False
    in_process: ClassVar[bool] = False
    """Whether the model's weights live in this process (its memory is ours); such
    configurations run in worker processes when several run at once."""
    remote: ClassVar[bool] = False
    """Whether the model runs behind a server: its memory and its quantization are
    the server's, so neither is measured nor swept here."""
    libraries: ClassVar[tuple[str, ...]] = ()
    """Distributions whose versions a run records (results depend on them)."""
    default_for: ClassVar[tuple[Reference, ...]] = ()
    """Model references this backend takes by default (``hainet models add --path``)."""

    @classmethod
    def check_spec(cls, spec: ModelSpec) -> None:
        """Refuse a spec this backend could never load, with a :class:`ConfigError`
        (called when the catalog reads it, before anything loads).  Default: any."""
        return None

    @classmethod
    def weight_bytes(cls, spec: ModelSpec, quantization: str | None, home: Path) -> float:
        """Bytes the weights of ``spec`` at ``quantization`` will take once loaded.
        Default: the file's size, the best guess without knowing the format."""
        return float(spec.file_size or 0)

    @classmethod
    def estimate_memory_mb(cls, spec: ModelSpec, quantization: str | None, home: Path) -> float:
        """Resident memory a configuration will need, in MiB, before it loads (0 when
        the weights are not in this process): the weights plus a quarter and 150 MiB
        for the KV cache, compute buffers and the runtime itself."""
        if not cls.in_process:
            return 0.0
        return cls.weight_bytes(spec, quantization, home) * 1.25 / MIB + 150.0

    @classmethod
    def normalize_quantization(cls, name: str) -> str:
        """The canonical name of a quantization (what a sweep's plan records)."""
        return name.lower()

    @classmethod
    def check_quantizable(cls, spec: ModelSpec) -> None:
        """Refuse, before anything loads, a sweep of quantizations on ``spec``."""
        if cls.remote:
            raise ConfigError(
                f"model {spec.name!r} runs behind a server: its quantization is the server's",
                hint="sweep quantizations on GGUF or transformers models",
            )

    @classmethod
    def prepare(cls, config: RunConfig, home: Path, status: Callable[[str], None]) -> ModelSpec:
        """The spec a configuration loads.  Default: the model's spec with the
        configuration's quantization and flash attention setting, for the backend
        to apply when it loads; a backend that makes a variant first (a quantized
        file) does it here, reporting what it does through ``status``."""
        updates: dict[str, object] = {}
        if config.flash_attn is not None:
            updates["flash_attn"] = config.flash_attn
        if config.quantization is not None:
            updates["quantization"] = config.quantization
        return config.model.model_copy(update=updates) if updates else config.model

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.load_seconds: float = 0.0

    @abc.abstractmethod
    async def generate(self, request: Request) -> Completion:
        """Answer one request.  Must not depend on earlier requests (no shared cache)."""

    def share_prefix(self, prompts: Sequence[str]) -> int:
        """Offer the rendered prompts of one suite, so that a backend able to evaluate
        their common beginning once (the few-shot block) can reuse it for each of them.

        Returns the shared prefix's length in tokens, 0 when the backend does not
        reuse prefixes (the default) or the prompts share too little.  A backend that
        reuses one must keep each answer a function of its own prompt: the same
        whatever requests came before."""
        return 0

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


def backend_for(reference: Reference) -> str:
    """The backend that takes a model given as a file (``path``) or a server
    (``url``) by default: the first, in name order, that says so."""
    for name in backend_names():
        try:
            if reference in backend_class(name).default_for:
                return name
        except HainetError:  # a plugin that does not import cannot be the default
            continue
    raise ConfigError(f"no backend takes a model given by {reference}")


def missing_dependency(package: str, extra: str, exc: ImportError) -> BackendUnavailable:
    """The error for an optional SDK that is not installed."""
    return BackendUnavailable(
        f"{package} is not installed ({exc})",
        hint=f"pip install 'hainet[{extra}]'",
    )
