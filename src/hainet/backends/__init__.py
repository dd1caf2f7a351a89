"""Backends (talk to models) and the model catalog."""

from __future__ import annotations

from hainet.backends.base import (
    Backend,
    backend_class,
    backend_for,
    backend_names,
    register_backend,
)
from hainet.backends.catalog import BUNDLED, Catalog, ensure_bundled_model
from hainet.types import ModelSpec

__all__ = [
    "BUNDLED",
    "Backend",
    "Catalog",
    "backend_class",
    "backend_for",
    "backend_names",
    "ensure_bundled_model",
    "open_backend",
    "register_backend",
]


def open_backend(spec: ModelSpec) -> Backend:
    """Load the model ``spec`` names with its registered backend."""
    return backend_class(spec.backend)(spec)
