"""Quantized variants: names, the F16 base, llama.cpp's quantizer, caching, atomicity.

Unit tests use a tiny synthetic GGUF written with the gguf package; the ``model``
tests make the F16 base of the bundled model once per session (about 10 s).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import gguf
import numpy as np
import pytest

from hainet.backends import quantize
from hainet.backends.catalog import BUNDLED
from hainet.backends.llamacpp import LlamaCppBackend
from hainet.backends.quantize import (
    f16_base,
    gguf_info,
    normalize_quantization,
    quantization_names,
    quantized_variant,
    source_sha256,
)
from hainet.errors import BackendError, ConfigError, ModelNotFound
from hainet.types import GenerationParams, Request

Q = gguf.GGMLQuantizationType


# -- names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("4bit", "q4_k_m"),
        ("8bit", "q8_0"),
        ("none", "f16"),
        ("NONE", "f16"),
        ("Q4_K_M", "q4_k_m"),
        ("q5_k_m", "q5_k_m"),
        (" q6_K ", "q6_k"),
        ("q4-0", "q4_0"),
        ("BF16", "bf16"),
        ("f32", "f32"),
        ("iq4_nl", "iq4_nl"),
    ],
)
def test_normalize_quantization(given: str, expected: str) -> None:
    assert normalize_quantization(given) == expected


def test_names_come_from_llama_cpp_file_types() -> None:
    import llama_cpp

    names = quantization_names()
    assert names[:3] == ["4bit", "8bit", "none"]
    for attr in dir(llama_cpp):
        if attr.startswith("LLAMA_FTYPE_MOSTLY_"):
            assert attr.removeprefix("LLAMA_FTYPE_MOSTLY_").lower() in names
    assert "guessed" not in names


@pytest.mark.parametrize("bad", ["3bit", "q4_k_x", "", "gptq", "fp8"])
def test_unknown_quantization_lists_the_valid_names(bad: str) -> None:
    with pytest.raises(ConfigError, match="unknown quantization") as info:
        normalize_quantization(bad)
    assert info.value.hint is not None
    assert "4bit" in info.value.hint and "q4_k_m" in info.value.hint and "q8_0" in info.value.hint


def test_types_that_need_an_importance_matrix_are_refused_up_front(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="importance matrix"):
        quantized_variant(tmp_path / "never-read.gguf", "iq2_xxs", tmp_path)


@pytest.mark.parametrize(
    ("qtype", "columns", "expected"),
    [
        ("q4_k_m", 640, Q.Q5_0),  # gemma-3-270m: K-quants need rows of 256
        ("q4_k_m", 2048, Q.Q4_K),
        ("q4_0", 640, Q.Q4_0),
        ("q6_k", 640, Q.Q8_0),
        ("q3_k_m", 640, Q.Q4_0),
        ("q4_0", 100, None),  # nothing fits: llama.cpp's own choice stays
        ("bf16", 640, None),
    ],
)
def test_embedding_and_output_types_always_fit_the_rows(
    qtype: str, columns: int, expected: int | None
) -> None:
    tensors = (quantize.TensorInfo("token_embd.weight", (columns, 1000), int(Q.F16), 0),)
    info = quantize.GgufInfo(Path("x.gguf"), 3, 1, 32, 0, tensors, {})
    overrides = quantize._embedding_overrides(qtype, info)
    if expected is None:
        assert overrides == {}
    else:
        assert overrides == {"token_embedding_type": expected, "output_tensor_type": expected}


# -- a tiny synthetic GGUF -----------------------------------------------------------


def write_toy_gguf(path: Path, *, big: bool = False) -> dict[str, np.ndarray]:
    """A GGUF with a vocabulary, quantized 2-D tensors, an F32 norm and a BF16 tensor."""
    rng = np.random.default_rng(0)
    values = {
        "token_embd.weight": rng.standard_normal((8, 64)).astype(np.float32),
        "blk.0.attn_q.weight": rng.standard_normal((4, 256)).astype(np.float32),
        "blk.0.attn_norm.weight": rng.standard_normal(64).astype(np.float32),
        "blk.0.ffn_up.weight": rng.standard_normal((2, 32)).astype(np.float32),
    }
    if big:
        values["blk.0.ffn_up.weight"][0, 0] = 1e6  # fits BF16, not F16
    types = {
        "token_embd.weight": Q.Q8_0,
        "blk.0.attn_q.weight": Q.Q5_0,
        "blk.0.attn_norm.weight": Q.F32,
        "blk.0.ffn_up.weight": Q.BF16,
    }
    writer = gguf.GGUFWriter(path, arch="toy")
    writer.add_name("toy")
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    writer.add_array("tokenizer.ggml.tokens", ["<s>", "a", "bé", "ü"] * 1000)
    writer.add_array("tokenizer.ggml.scores", [0.5] * 4000)
    writer.add_uint32("toy.block_count", 1)
    for name, arr in values.items():
        qtype = types[name]
        data = arr if qtype == Q.F32 else gguf.quants.quantize(arr, qtype)
        writer.add_tensor(name, data, raw_dtype=None if qtype == Q.F32 else qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    reader = gguf.GGUFReader(path)
    return {t.name: gguf.quants.dequantize(t.data, t.tensor_type) for t in reader.tensors}


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    path = tmp_path / "toy.gguf"
    write_toy_gguf(path)
    return path


def test_gguf_info_reads_the_header(toy: Path) -> None:
    info = gguf_info(toy)
    assert info.file_type_name == "q8_0"
    assert info.tensor_types() == {
        "token_embd.weight": "Q8_0",
        "blk.0.attn_q.weight": "Q5_0",
        "blk.0.attn_norm.weight": "F32",
        "blk.0.ffn_up.weight": "BF16",
    }
    assert {"general.name", "tokenizer.ggml.tokens", "general.file_type"} <= set(info.keys)


def test_f16_base_dequantizes_every_tensor_and_keeps_the_metadata(
    toy: Path, tmp_path: Path
) -> None:
    expected = {
        t.name: gguf.quants.dequantize(t.data, t.tensor_type) for t in gguf.GGUFReader(toy).tensors
    }
    seen: list[tuple[str, float]] = []
    base = f16_base(
        toy, tmp_path / "cache", progress=lambda stage, done: seen.append((stage, done))
    )
    assert base == tmp_path / "cache" / source_sha256(toy, tmp_path / "cache")[:16] / "f16.gguf"

    src, out = gguf.GGUFReader(toy), gguf.GGUFReader(base)
    assert list(out.fields) == list(src.fields)
    for key, field in src.fields.items():
        if key.startswith("GGUF.") or key == "general.file_type":
            continue
        assert out.fields[key].types == field.types, key
        assert out.fields[key].contents() == field.contents(), key
    assert out.fields["general.file_type"].contents() == gguf.LlamaFileType.MOSTLY_F16
    got = {t.name: t for t in out.tensors}
    assert {n: t.tensor_type.name for n, t in got.items()} == {
        "token_embd.weight": "F16",
        "blk.0.attn_q.weight": "F16",
        "blk.0.attn_norm.weight": "F32",  # norms stay F32, as in llama.cpp's F16 files
        "blk.0.ffn_up.weight": "F16",
    }
    for name, values in expected.items():
        np.testing.assert_array_equal(got[name].data, values.astype(got[name].data.dtype))

    stages = [stage for stage, _ in seen]
    assert stages[0] == "sha256" and stages[-1] == "f16"
    fractions = [done for stage, done in seen if stage == "f16"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_values_beyond_the_f16_range_are_an_error_not_infinities(tmp_path: Path) -> None:
    source = tmp_path / "big.gguf"
    write_toy_gguf(source, big=True)
    with pytest.raises(BackendError, match="beyond the F16 range"):
        f16_base(source, tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*/*.gguf"))


def test_f16_base_is_cached(toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = f16_base(toy, tmp_path)
    mtime = first.stat().st_mtime_ns

    def fail(*args: object) -> None:
        raise AssertionError("the base was made twice")

    monkeypatch.setattr(quantize, "_write_f16", fail)
    assert f16_base(toy, tmp_path) == first
    assert first.stat().st_mtime_ns == mtime


def test_an_interrupted_base_leaves_no_file(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(stage: str, done: float) -> None:
        if stage == "f16":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        f16_base(toy, tmp_path, progress=interrupt)
    directory = tmp_path / source_sha256(toy, tmp_path)[:16]
    assert sorted(p.name for p in directory.iterdir()) == [".lock"]


def test_a_failed_rename_leaves_no_file_and_says_the_disk_is_full(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(quantize.os, "replace", full)
    with pytest.raises(BackendError, match="No space left") as info:
        f16_base(toy, tmp_path)
    assert info.value.hint is not None and "full" in info.value.hint
    directory = tmp_path / source_sha256(toy, tmp_path)[:16]
    assert sorted(p.name for p in directory.iterdir()) == [".lock"]


def test_stale_temporary_files_are_removed(toy: Path, tmp_path: Path) -> None:
    directory = tmp_path / source_sha256(toy, tmp_path)[:16]
    directory.mkdir(parents=True)
    (directory / ".f16.gguf.dead.tmp").write_bytes(b"half a file")
    f16_base(toy, tmp_path)
    assert sorted(p.name for p in directory.iterdir()) == [".lock", "f16.gguf"]


def test_quantizer_failure_is_a_backend_error_with_llama_cpp_reason(
    toy: Path, tmp_path: Path
) -> None:
    # A real llama.cpp failure: the toy file has no architecture llama.cpp knows.
    with pytest.raises(BackendError, match="quantizer failed.*q8_0") as info:
        quantized_variant(toy, "q8_0", tmp_path, n_threads=1)
    assert "toy" in str(info.value)
    directory = tmp_path / source_sha256(toy, tmp_path)[:16]
    assert sorted(p.name for p in directory.iterdir()) == [".lock", "f16.gguf"]


def test_quantizer_crash_is_a_backend_error(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        quantize, "_QUANTIZER", "import os, sys; sys.stderr.write('GGML_ASSERT boom'); os.abort()"
    )
    with pytest.raises(BackendError, match=r"crashed \(SIGABRT\).*GGML_ASSERT boom"):
        quantized_variant(toy, "q4_0", tmp_path)
    assert not list(tmp_path.glob("*/q4_0.gguf"))


# -- errors about the source --------------------------------------------------------


def test_missing_source(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="not found"):
        f16_base(tmp_path / "nope.gguf", tmp_path)
    with pytest.raises(ModelNotFound, match="not found"):
        quantized_variant(tmp_path / "nope.gguf", "8bit", tmp_path)


def test_source_that_is_not_gguf(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"<html>not found</html>")
    with pytest.raises(BackendError, match="not a GGUF file"):
        quantized_variant(fake, "4bit", tmp_path)


def test_truncated_gguf(toy: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(toy.read_bytes()[:200])
    with pytest.raises(BackendError, match="not a valid GGUF file"):
        f16_base(cut, tmp_path / "cache")


# -- the digest cache -----------------------------------------------------------------


def test_sha256_is_cached_by_path_size_and_mtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "m.gguf"
    source.write_bytes(b"GGUF" + b"x" * 100)
    calls: list[Path] = []
    real = quantize.sha256_file

    def counting(path: Path) -> str:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(quantize, "sha256_file", counting)
    first = source_sha256(source, tmp_path / "cache")
    assert source_sha256(source, tmp_path / "cache") == first
    assert len(calls) == 1
    source.write_bytes(b"GGUF" + b"y" * 100)  # same size, new content and mtime
    os.utime(source, ns=(1, 1))
    assert source_sha256(source, tmp_path / "cache") != first
    assert len(calls) == 2


# -- the real bundled model ----------------------------------------------------------


@pytest.fixture(scope="session")
def quant_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("quantized")


@pytest.fixture(scope="session")
def real_base(bundled_gguf: Path, quant_cache: Path) -> Path:
    return f16_base(bundled_gguf, quant_cache)


@pytest.fixture(scope="session")
def real_variants(bundled_gguf: Path, quant_cache: Path, real_base: Path) -> dict[str, Path]:
    return {q: quantized_variant(bundled_gguf, q, quant_cache) for q in ("q8_0", "q4_0")}


def generate(path: Path) -> str:
    # One thread: other test processes share the cores, and an oversubscribed
    # OpenMP team is many times slower than a single thread.
    spec = BUNDLED.model_copy(update={"path": str(path), "n_ctx": 256, "n_threads": 1})
    backend = LlamaCppBackend(spec)
    try:
        request = Request(prompt="Q: What is 2 + 3?\nA:", params=GenerationParams(max_tokens=4))
        return backend.generate_sync(request).text
    finally:
        backend.close()


@pytest.mark.model
def test_real_f16_base_loads_generates_and_keeps_the_metadata(
    bundled_gguf: Path, real_base: Path
) -> None:
    src, base = gguf_info(bundled_gguf), gguf_info(real_base)
    assert base.file_type_name == "f16" and src.file_type_name == "q4_k_m"
    assert base.keys == src.keys
    assert set(base.tensor_types().values()) == {"F16", "F32"}
    # Metadata, the 262k-token vocabulary included, is byte for byte the source's.
    with bundled_gguf.open("rb") as a, real_base.open("rb") as b:
        for key in src.keys:
            if key == "general.file_type":
                continue
            ka, kb = src._kv[key], base._kv[key]
            a.seek(ka.start)
            b.seek(kb.start)
            assert a.read(ka.end - ka.start) == b.read(kb.end - kb.start), key
    assert generate(real_base).strip()


@pytest.mark.model
def test_real_variants_load_generate_and_are_what_their_name_says(
    real_base: Path, real_variants: dict[str, Path]
) -> None:
    q8, q4 = real_variants["q8_0"], real_variants["q4_0"]
    assert q8.name == "q8_0.gguf" and q8.parent == real_base.parent
    assert gguf_info(q8).file_type_name == "q8_0"
    assert gguf_info(q4).file_type_name == "q4_0"
    # The embedding table (shared with the output) follows the variant's type.
    assert gguf_info(q8).tensor_types()["token_embd.weight"] == "Q8_0"
    assert gguf_info(q4).tensor_types()["token_embd.weight"] == "Q4_0"
    assert q4.stat().st_size < q8.stat().st_size < real_base.stat().st_size
    for path in (q8, q4):
        assert generate(path).strip()


@pytest.mark.model
def test_real_variants_are_cached(
    bundled_gguf: Path,
    quant_cache: Path,
    real_variants: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mtime = real_variants["q8_0"].stat().st_mtime_ns

    def fail(*args: object) -> None:
        raise AssertionError("made again")

    monkeypatch.setattr(quantize, "_run_quantizer", fail)
    monkeypatch.setattr(quantize, "_write_f16", fail)
    assert quantized_variant(bundled_gguf, "8bit", quant_cache) == real_variants["q8_0"]
    assert quantized_variant(bundled_gguf, "Q4_0", quant_cache) == real_variants["q4_0"]
    assert quantized_variant(bundled_gguf, "none", quant_cache) == f16_base(
        bundled_gguf, quant_cache
    )
    assert real_variants["q8_0"].stat().st_mtime_ns == mtime


@pytest.mark.model
def test_real_interrupted_variant_leaves_no_file(
    bundled_gguf: Path, quant_cache: Path, real_base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake(base: Path, out: Path, params: dict[str, object]) -> quantize._Outcome:
        assert params["allow_requantize"] is False
        # 640 columns: Q4_K does not fit, so the table falls back to Q5_0, never Q4_K
        # (llama.cpp would abort the process on a forced type that does not fit).
        assert params["token_embedding_type"] == params["output_tensor_type"] == Q.Q5_0
        out.write_bytes(b"GGUF half written")
        return quantize._Outcome(0, "")

    monkeypatch.setattr(quantize, "_run_quantizer", fake)

    def broken_disk(src: object, dst: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(quantize.os, "replace", broken_disk)
    with pytest.raises(BackendError, match="cannot write .*q4_k_m.gguf"):
        quantized_variant(bundled_gguf, "4bit", quant_cache)
    assert not (real_base.parent / "q4_k_m.gguf").exists()
    assert not list(real_base.parent.glob(".*.tmp"))
