"""Backends know themselves: memory estimates, quantization, remote models, the
spec's own checks, the libraries they depend on; a plugin gets sensible defaults."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from hainet.backends import Backend, Catalog, backend_class, backend_for
from hainet.backends.quantize import source_sha256
from hainet.bench import library_versions
from hainet.config import add_model_to_config, load_settings
from hainet.errors import ConfigError
from hainet.types import Completion, ModelSpec, Request, RunConfig, Timing

MIB = 1024 * 1024
GEMMA = {"file_size": 253_113_024, "parameters": 268_098_176}


class _Plugin(Backend):
    name: ClassVar[str] = "plugin-test"
    in_process = True

    async def generate(self, request: Request) -> Completion:
        return Completion(text="", timing=Timing(wall_s=0.0))


class _RemotePlugin(_Plugin):
    in_process = False
    remote = True


def test_a_plugin_backend_gets_defaults_instead_of_another_backends_numbers(
    tmp_path: Path,
) -> None:
    spec = ModelSpec(name="p", backend="plugin-test", path="/x", **GEMMA)  # type: ignore[arg-type]
    # Its file's size, whatever the quantization: no llama.cpp bits, no F16 base.
    expected = GEMMA["file_size"] * 1.25 / MIB + 150.0
    assert _Plugin.estimate_memory_mb(spec, None, tmp_path) == pytest.approx(expected)
    assert _Plugin.estimate_memory_mb(spec, "q4_k_m", tmp_path) == pytest.approx(expected)
    assert _RemotePlugin.estimate_memory_mb(spec, None, tmp_path) == 0.0
    assert _Plugin.normalize_quantization("Q4_K_M") == "q4_k_m"
    prepared = _Plugin.prepare(
        RunConfig(model=spec, quantization="8bit", flash_attn=True), tmp_path, print
    )
    assert prepared.quantization == "8bit" and prepared.flash_attn is True
    assert prepared.path == "/x"  # no variant made: the backend applies it at load
    assert _Plugin.prepare(RunConfig(model=spec), tmp_path, print) is spec
    _Plugin.check_quantizable(spec)
    with pytest.raises(ConfigError, match="its quantization is the server's"):
        _RemotePlugin.check_quantizable(spec)
    _Plugin.check_spec(spec)


def test_built_in_memory_estimates_are_the_ones_the_sweep_used(tmp_path: Path) -> None:
    """The numbers of the estimate that lived in bench/sweep.py, for the bundled
    model's size and parameter count (base F16 not cached)."""
    spec = ModelSpec(name="m", path=str(tmp_path / "none.gguf"), **GEMMA)  # type: ignore[arg-type]
    llama = backend_class("llamacpp")
    assert llama.estimate_memory_mb(spec, None, tmp_path) == pytest.approx(451.734, abs=1e-3)
    # A variant not made yet also makes the F16 base first: it costs the most.
    assert llama.estimate_memory_mb(spec, "q8_0", tmp_path) == pytest.approx(2898.542, abs=1e-3)
    transformers = backend_class("transformers")
    t_spec = spec.model_copy(update={"backend": "transformers"})
    assert transformers.estimate_memory_mb(t_spec, None, tmp_path) == pytest.approx(
        3985.175, abs=1e-3
    )
    assert backend_class("mock").estimate_memory_mb(spec, None, tmp_path) == 0.0
    srv = ModelSpec(name="s", backend="openai", url="http://x/v1", model="m")
    assert backend_class("openai").estimate_memory_mb(srv, None, tmp_path) == 0.0


def test_a_cached_f16_base_makes_a_quantization_cost_only_its_own_size(tmp_path: Path) -> None:
    source = tmp_path / "model.gguf"
    source.write_bytes(b"GGUF" + b"\0" * 64)
    cache = tmp_path / "quantized"
    spec = ModelSpec(name="m", path=str(source), **GEMMA)  # type: ignore[arg-type]
    llama = backend_class("llamacpp")
    before = llama.estimate_memory_mb(spec, "q4_k_m", tmp_path)
    base = cache / source_sha256(source, cache)[:16] / "f16.gguf"
    base.parent.mkdir(parents=True)
    base.write_bytes(b"")
    after = llama.estimate_memory_mb(spec, "q4_k_m", tmp_path)
    assert after == pytest.approx(GEMMA["parameters"] * 4.9 / 8 * 1.25 / MIB + 150.0)
    assert after < before


def test_quantization_names_and_refusals_are_the_backends() -> None:
    llama, openai = backend_class("llamacpp"), backend_class("openai")
    assert llama.normalize_quantization("4bit") == "q4_k_m"
    assert backend_class("transformers").normalize_quantization("4BIT") == "4bit"
    with pytest.raises(ConfigError, match="no GGUF file to quantize"):
        llama.check_quantizable(ModelSpec(name="m"))
    assert openai.remote and not llama.remote and llama.in_process


def test_the_openai_spec_check_lives_in_its_backend(hainet_home: Path) -> None:
    with pytest.raises(ConfigError, match="the openai backend needs url and model"):
        backend_class("openai").check_spec(ModelSpec(name="s", backend="openai"))
    add_model_to_config(hainet_home, "srv", {"backend": "openai", "url": "http://x/v1"})
    with pytest.raises(ConfigError, match=r"'srv' in config.toml: .*needs url and model"):
        Catalog(load_settings())


def test_the_backends_say_which_takes_a_file_and_which_a_server() -> None:
    assert backend_for("path") == "llamacpp" and backend_for("url") == "openai"


def test_a_run_records_the_versions_of_every_backends_libraries() -> None:
    versions = library_versions()
    assert {"hainet", "SQLAlchemy", "pydantic", "llama_cpp_python", "openai"} <= set(versions)
    assert backend_class("transformers").libraries == ("transformers", "torch")
