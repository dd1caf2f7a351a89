"""The transformers backend: the load decision logic without a model, then the real
bundled GGUF (converted once per module into a cache, then reloaded from it)."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hainet.backends import backend_class, backend_names
from hainet.backends.catalog import BUNDLED
from hainet.backends.transformers import (
    LoadPlan,
    TransformersBackend,
    _cut_at_stop,
    normalize_quantization,
    plan_load,
)
from hainet.errors import BackendError, BackendUnavailable, ModelNotFound
from hainet.types import GenerationParams, Message, ModelSpec, Request

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


def spec(path: Path | str, **updates: object) -> ModelSpec:
    # The catalog's quantization ("Q4_K_M") describes the llama.cpp file; here it is
    # the load-time choice, so it starts at None (full precision).
    fields = {"backend": "transformers", "path": str(path), "quantization": None}
    return BUNDLED.model_copy(update=fields | updates)


@pytest.fixture
def fake_gguf(tmp_path: Path) -> Path:
    path = tmp_path / "fake.gguf"
    path.write_bytes(b"GGUF" + bytes(64))
    return path


# -- registration and decisions (no model) ----------------------------------------------


def test_registered_by_name() -> None:
    assert "transformers" in backend_names()
    assert backend_class("transformers") is TransformersBackend
    assert TransformersBackend.supports_json_schema is False
    assert TransformersBackend.in_process and TransformersBackend.reports_timings


@pytest.mark.parametrize(
    ("quantization", "flash", "cuda", "device", "method", "attn"),
    [
        (None, False, False, "cpu", "fp32", None),
        ("none", False, False, "cpu", "fp32", None),
        ("NONE", False, False, "cpu", "fp32", None),
        ("8bit", False, False, "cpu", "torch-dynamic-int8", None),
        (None, False, True, "cuda", "auto", None),
        ("8bit", False, True, "cuda", "bitsandbytes-int8", None),
        ("4bit", False, True, "cuda", "bitsandbytes-nf4", None),
        ("4bit", True, True, "cuda", "bitsandbytes-nf4", "flash_attention_2"),
        (None, True, True, "cuda", "auto", "flash_attention_2"),
    ],
)
def test_plan_for_what_the_hardware_can_do(
    quantization: str | None, flash: bool, cuda: bool, device: str, method: str, attn: str | None
) -> None:
    plan = plan_load(quantization, flash, cuda=cuda)
    assert (plan.device, plan.method, plan.attn_implementation) == (device, method, attn)
    assert plan.needs_bitsandbytes == method.startswith("bitsandbytes")


@pytest.mark.parametrize(
    ("quantization", "flash", "message"),
    [
        ("4bit", False, r"^4bit needs a CUDA GPU \(bitsandbytes NF4\); none found$"),
        (
            None,
            True,
            r"^flash attention needs a CUDA GPU and the flash-attn package .*no CUDA GPU found$",
        ),
        ("8bit", True, r"^flash attention needs a CUDA GPU"),
        ("4bit", True, r"^4bit needs a CUDA GPU .*; flash attention needs a CUDA GPU"),
    ],
)
def test_what_a_cpu_cannot_do_is_an_error_not_a_fallback(
    quantization: str | None, flash: bool, message: str
) -> None:
    with pytest.raises(BackendError) as info:
        plan_load(quantization, flash, cuda=False)
    assert re.search(message, info.value.message)  # the message alone, without the hint
    assert info.value.hint is not None and "8bit" in info.value.hint


@pytest.mark.parametrize("value", ["Q4_K_M", "int4", "fp16", ""])
def test_unknown_quantization_names_the_accepted_ones(value: str) -> None:
    with pytest.raises(BackendError, match="does not know quantization") as info:
        normalize_quantization(value)
    assert "none, 8bit or 4bit" in str(info.value)


def test_cut_at_the_earliest_stop() -> None:
    assert _cut_at_stop("a. b\n c", (" c", ".")) == ("a", True)
    assert _cut_at_stop("abc", ("x",)) == ("abc", False)
    assert _cut_at_stop("abc", ()) == ("abc", False)


def test_cpu_4bit_fails_before_loading(fake_gguf: Path) -> None:
    # The fake file would fail to load: the plan is refused before anything is read.
    with pytest.raises(BackendError, match="4bit needs a CUDA GPU"):
        TransformersBackend(spec(fake_gguf, quantization="4bit"))


@pytest.mark.parametrize("quantization", ["8bit", "4bit"])
def test_cuda_quantization_goes_to_bitsandbytes_with_an_install_hint(
    quantization: str, fake_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import fails even if installed
    with pytest.raises(
        BackendUnavailable, match=f"{quantization} on CUDA needs bitsandbytes"
    ) as info:
        TransformersBackend(spec(fake_gguf, quantization=quantization))
    assert info.value.hint == "pip install bitsandbytes"


def test_cuda_flash_attention_needs_flash_attn(
    fake_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(sys.modules, "flash_attn", None)
    with pytest.raises(BackendUnavailable, match="flash-attn package") as info:
        TransformersBackend(spec(fake_gguf, flash_attn=True))
    assert info.value.hint is not None and "flash-attn" in info.value.hint


@pytest.mark.parametrize("module", ["transformers", "torch"])
def test_missing_sdk_names_the_extra(
    module: str, fake_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(BackendUnavailable, match="not installed") as info:
        TransformersBackend(spec(fake_gguf))
    assert info.value.hint == "pip install 'hainet[transformers]'"


@pytest.mark.parametrize("module", ["accelerate", "gguf"])
def test_gguf_readers_missing_names_the_extra(
    module: str, fake_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(BackendUnavailable, match=f"{module} \\(needed to read GGUF files\\)"):
        TransformersBackend(spec(fake_gguf))


def test_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="not found"):
        TransformersBackend(spec(tmp_path / "none.gguf"))
    with pytest.raises(ModelNotFound, match="not found"):
        TransformersBackend(spec(tmp_path / "no-such-dir"))
    with pytest.raises(ModelNotFound, match="without config.json"):
        TransformersBackend(spec(tmp_path))
    html = tmp_path / "page.gguf"
    html.write_bytes(b"<html>404</html>")
    with pytest.raises(BackendError, match="not a GGUF"):
        TransformersBackend(spec(html))
    with pytest.raises(ModelNotFound, match="has no path"):
        TransformersBackend(spec(tmp_path).model_copy(update={"path": None}))


def test_unloadable_directory_is_a_backend_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "no-such-arch"}))
    with pytest.raises(BackendError, match="transformers could not load"):
        TransformersBackend(spec(tmp_path))


# -- the real bundled model ------------------------------------------------------------

PROMPT = "The capital of France is"
# Same greedy text as llama.cpp on the bundled model (checked below).  llama.cpp
# multiplies Q4_K_M weights by 8-bit activations, transformers the same weights
# dequantized to fp32, so a near tie can flip a late token: for PROMPT the two agree
# on 15 tokens, then one says "." and the other " and".
AGREES = [(PROMPT, 12), ("def fibonacci(n):", 24)]


def model_spec(path: Path, **updates: object) -> ModelSpec:
    # One torch thread: with two on two shared cores, one busy neighbour process
    # slows decoding about 5x (threads spin at every barrier waiting for each other);
    # one thread decodes at about 10 tokens/s either way.
    return spec(path, n_threads=1, **updates)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("transformers-cache")


@pytest.fixture(scope="module")
def tf(bundled_gguf: Path, cache_dir: Path) -> Iterator[TransformersBackend]:
    # transformers reads GGUF files through these two, which come with the
    # `transformers` extra; without them these tests skip rather than fail.
    pytest.importorskip("gguf")
    pytest.importorskip("accelerate")
    threads = torch.get_num_threads()  # the backend sets torch's process-wide count
    backend = TransformersBackend(model_spec(bundled_gguf), cache_dir=cache_dir)
    yield backend
    backend.close()
    torch.set_num_threads(threads)


def greedy(n: int, prompt: str = PROMPT, **kw: object) -> Request:
    return Request(prompt=prompt, params=GenerationParams(max_tokens=n, **kw))  # type: ignore[arg-type]


@pytest.mark.model
@pytest.mark.slow
def test_first_load_converts_the_gguf_into_the_cache(
    tf: TransformersBackend, cache_dir: Path
) -> None:
    assert tf.converted and tf.load_seconds > 0
    assert tf.plan == LoadPlan("cpu", "none", "fp32", False)
    assert tf.attn_implementation == "sdpa"
    assert tf.model_dir == cache_dir / BUNDLED.sha256[:16]  # type: ignore[index]
    meta = json.loads((tf.model_dir / "hainet-source.json").read_text())
    assert meta["sha256"] == BUNDLED.sha256
    assert (tf.model_dir / "model.safetensors").is_file()
    assert [p.name for p in cache_dir.iterdir()] == [tf.model_dir.name]  # no temp dir left
    # fp32: about 4 bytes per parameter, the tied embedding counted once.
    assert 3.5 * BUNDLED.parameters < tf.memory_bytes < 4.5 * BUNDLED.parameters  # type: ignore[operator]


@pytest.mark.model
@pytest.mark.slow
async def test_timings_and_token_counts(tf: TransformersBackend) -> None:
    out = await tf.generate(greedy(16))
    assert out.text.strip()
    assert out.prompt_tokens == 6  # BOS + 5, as llama.cpp counts
    assert out.completion_tokens == 16 and out.finish_reason == "length"
    t = out.timing
    assert t.ttft_s is not None and 0 < t.ttft_s < t.wall_s
    assert t.prefill_tps is not None and t.prefill_tps > 0
    assert t.decode_tps is not None and t.decode_tps > 0


@pytest.mark.model
@pytest.mark.slow
async def test_greedy_text_matches_llama_cpp(tf: TransformersBackend, bundled_gguf: Path) -> None:
    pytest.importorskip("llama_cpp")
    from hainet.backends.llamacpp import LlamaCppBackend

    llama = LlamaCppBackend(BUNDLED.model_copy(update={"path": str(bundled_gguf)}))
    try:
        for prompt, n in AGREES:
            want = await llama.generate(greedy(n, prompt))
            got = await tf.generate(greedy(n, prompt))
            assert got.text == want.text
            assert got.prompt_tokens == want.prompt_tokens
    finally:
        llama.close()


@pytest.mark.model
@pytest.mark.slow
async def test_stop_string_halts_generation(tf: TransformersBackend) -> None:
    full = await tf.generate(greedy(12))
    assert "France" in full.text
    out = await tf.generate(greedy(12, stop=("France",)))
    assert out.text == full.text[: full.text.index("France")]
    assert out.finish_reason == "stop"
    assert out.completion_tokens < 12  # halted, not generated to the end and cut


@pytest.mark.model
@pytest.mark.slow
async def test_same_seed_same_sample(tf: TransformersBackend) -> None:
    def sample(seed: int) -> Request:
        return greedy(8, "A short poem:", temperature=1.0, seed=seed)

    a = await tf.generate(sample(42))
    b = await tf.generate(sample(42))
    assert a.text == b.text
    others = {(await tf.generate(sample(s))).text for s in (1, 2, 3)}
    assert len(others | {a.text}) > 1


@pytest.mark.model
async def test_chat_without_template_and_json_schema_are_clear_errors(
    tf: TransformersBackend,
) -> None:
    with pytest.raises(BackendError, match="no chat template"):
        await tf.generate(Request(messages=(Message("user", "hi"),)))
    with pytest.raises(BackendError, match="cannot constrain output to a JSON schema"):
        await tf.generate(greedy(4, json_schema={"type": "object"}))


@pytest.mark.model
async def test_prompt_longer_than_the_context(tf: TransformersBackend) -> None:
    with pytest.raises(BackendError, match="the context 2048"):
        await tf.generate(greedy(4, "word " * 3000))


@pytest.mark.model
@pytest.mark.slow
async def test_second_load_reads_the_cache(
    tf: TransformersBackend, bundled_gguf: Path, cache_dir: Path
) -> None:
    again = TransformersBackend(model_spec(bundled_gguf), cache_dir=cache_dir)
    try:
        assert not again.converted and again.model_dir == tf.model_dir
        assert (await again.generate(greedy(12))).text == (await tf.generate(greedy(12))).text
    finally:
        again.close()


@pytest.mark.model
@pytest.mark.slow
async def test_8bit_on_cpu_is_dynamic_int8_without_the_output_layer(
    tf: TransformersBackend, bundled_gguf: Path, cache_dir: Path
) -> None:
    q8 = TransformersBackend(model_spec(bundled_gguf, quantization="8bit"), cache_dir=cache_dir)
    try:
        assert q8.plan.method == "torch-dynamic-int8" and not q8.converted
        model = q8._model
        assert type(model.lm_head) is torch.nn.Linear  # tied to the embedding: kept fp32
        assert type(model.model.layers[0].mlp.down_proj) is not torch.nn.Linear
        assert q8.memory_bytes < tf.memory_bytes
        out = await q8.generate(greedy(8))
        assert out.text.strip() and out.completion_tokens == 8
    finally:
        q8.close()


@pytest.mark.model
def test_4bit_on_this_cpu_is_refused(bundled_gguf: Path, cache_dir: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(BackendError, match=r"4bit needs a CUDA GPU \(bitsandbytes NF4\)"):
        TransformersBackend(spec(bundled_gguf, quantization="4bit"), cache_dir=cache_dir)
